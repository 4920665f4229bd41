// Fisher-information scores of every k_proj and v_proj of a model (design §3.6), how they are
// accumulated from per-window gradients, and their text file format.
//
// For a projection with weight W ([num_kv_heads·head_dim, d_model]) and calibration windows
// s = 1..N with gradients G_s = d loss_s / dW:
//   mean_square (default): F = mean over elements (i, j) of (1/N)·Σ_s G_s(i, j)²  — the diagonal
//                          empirical Fisher, averaged over the projection;
//   rms (Palu's choice):   F = mean over elements of sqrt((1/N)·Σ_s G_s(i, j)²).
// The loss is the standard next-token cross-entropy of each window (llama_backward.h). (Palu's
// calibration passes input_ids[:, :-1] with labels input_ids[:, 1:] to a HF model that shifts
// the labels once more, so its gradients are those of predicting token t+2; we do not copy that.)
// A KV head's score is the same mean taken over the head's head_dim rows only; since every head
// has the same number of elements, the score of a group of heads is the mean of its heads' scores
// and the projection score is the mean over all heads.
//
// File format (text, UTF-8, one record per line; '#' starts a comment line; blank lines ignored):
//   latentkv-fisher 1                    format name and version (first line)
//   model <id>                           identity of the model, e.g. its SHA-256; "-" = unknown
//   reduction <mean_square|rms>
//   samples <N>                          calibration windows accumulated (0 = unknown)
//   layers <n_layers> kv_heads <num_kv_heads>
//   <layer> <k|v> <score> [<head_0 score> ... <head_{kv_heads-1} score>]
// with exactly one k line and one v line per layer (any order). Per-head columns are optional but
// all-or-none. Scores are finite and >= 0, written with 17 significant digits (exact round trip).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "latentkv/fisher/llama_backward.h"
#include "latentkv/model/llama.h"

namespace latentkv {

/// How per-element squared gradients are reduced to one score (see the top of this file).
enum class FisherReduction { kMeanSquare, kRms };

/// "mean_square" / "rms".
const char* fisher_reduction_name(FisherReduction reduction);
/// Parses the names above; throws Error(kInvalidArgument) otherwise.
FisherReduction parse_fisher_reduction(const std::string& name);

/// Fisher scores of the key and value projections of every layer.
struct FisherScores {
  std::string model_id;  ///< identity of the model they belong to; empty = unknown
  FisherReduction reduction = FisherReduction::kMeanSquare;
  int64_t num_samples = 0;  ///< calibration windows accumulated; 0 = unknown
  int num_kv_heads = 0;
  std::vector<double> key;    ///< [n_layers] score of each layer's k_proj
  std::vector<double> value;  ///< [n_layers] score of each layer's v_proj
  /// [n_layers·num_kv_heads] per-KV-head scores (layer-major), or empty when unknown.
  std::vector<double> key_heads, value_heads;

  int n_layers() const { return static_cast<int>(key.size()); }
  bool has_head_scores() const { return !key_heads.empty(); }

  /// The rank allocator's unit order: [2·n_layers], unit 2·l = k_proj of layer l, 2·l+1 = v_proj.
  std::vector<double> unit_scores() const;
  /// Score of a group of KV heads of one projection: the mean of its heads' scores. `heads` are
  /// KV head indices. Throws Error(kInvalidArgument) when per-head scores are absent or an index
  /// is out of range.
  double group_score(int layer, bool value_proj, const std::vector<int>& heads) const;

  /// Throws Error(kInvalidArgument) naming the first problem: n_layers or num_kv_heads < 1,
  /// key/value sizes differ, per-head vectors of the wrong size, a score that is negative or not
  /// finite, num_samples < 0.
  void validate() const;
  /// validate(), then throws Error(kInvalidArgument) when the scores do not fit `config` (layer or
  /// KV-head count) or, when both ids are non-empty, model_id differs from `expected_model_id`.
  void check_for(const LlamaConfig& config, const std::string& expected_model_id) const;
};

/// Sums squared gradients per weight element over calibration windows (fp64), then reduces them.
class FisherAccumulator {
 public:
  /// Empty accumulator for the k_proj/v_proj shapes of `config`.
  explicit FisherAccumulator(const LlamaConfig& config);

  /// Adds one window's gradients. Throws Error(kInvalidArgument) on a shape mismatch and
  /// Error(kNumericalError) on a non-finite gradient (checked before anything is added).
  void add(const KvProjectionGradients<float>& gradients);
  int64_t num_samples() const { return num_samples_; }

  /// Scores of everything added so far, per projection and per KV head. Throws
  /// Error(kInvalidArgument) when nothing was added.
  FisherScores scores(FisherReduction reduction, const std::string& model_id = "") const;

 private:
  int num_kv_heads_, head_dim_;
  int64_t num_samples_ = 0;
  // Σ_s G_s² per element: [2·n_layers] matrices (unit order), [num_kv_heads·head_dim, d_model].
  std::vector<Eigen::MatrixXd> sum_sq_;
};

/// Writes `scores` in the format above through a temporary file and a rename. Throws
/// Error(kInvalidArgument) for invalid scores, Error(kIoError) when the file cannot be written.
void save_fisher_scores(const FisherScores& scores, const std::string& path);

/// Reads a file in the format above. Throws Error(kNotFound) when it does not exist,
/// Error(kCorruptData) naming the line for anything malformed (unknown header, bad number,
/// non-finite or negative score, a missing/duplicate/out-of-range layer, per-head columns of the
/// wrong count), Error(kUnsupported) for a newer format version.
FisherScores load_fisher_scores(const std::string& path);

}  // namespace latentkv
