// Calibration statistics for the whitened decomposition (design §3.1).
//
// Per layer we keep the Gram matrix Γ = Σ_t x_tᵀ x_t of the k_proj/v_proj inputs x_t ([d_model],
// the RMS-normed hidden state) in fp64, plus the number of tokens. Γ is all the decomposition
// needs: ‖X(W − BA)ᵀ‖²_F = tr((W − BA) Γ (W − BA)ᵀ) for any calibration matrix X whose rows are
// the x_t. Statistics of disjoint token sets add, so chunks, windows and runs can be merged.
//
// For sequential calibration (design §3.5) CrossGram holds X̃ᵀX between the inputs X̃ that a
// compressed model feeds a layer and the inputs X of the original model.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "latentkv/model/llama.h"

namespace latentkv {

/// Γ = Σ xᵀx and the token count of one layer.
class LayerGram {
 public:
  LayerGram() = default;
  /// Empty statistics (Γ = 0, 0 tokens) for inputs of width d_model > 0.
  explicit LayerGram(int d_model);

  int d_model() const { return static_cast<int>(lower_.rows()); }
  int64_t tokens() const { return tokens_; }

  /// Adds the tokens of a chunk x ([n, d_model], fp32, row-major, any row stride): Γ += xᵀx,
  /// computed in fp64 as a symmetric rank-n update. Throws Error(kInvalidArgument) when the
  /// width differs from d_model or x holds a NaN/Inf (checked before anything is added).
  void accumulate(const Eigen::Ref<const MatrixRM>& x);
  /// Same for a contiguous row-major buffer of n rows of d_model floats.
  void accumulate(const float* x, int64_t n);

  /// Adds the statistics of another token set (the result is the statistics of the union).
  /// Throws Error(kInvalidArgument) when d_model differs.
  LayerGram& operator+=(const LayerGram& other);

  /// Γ as a full symmetric [d_model, d_model] matrix.
  Eigen::MatrixXd gram() const;

  /// Rebuilds statistics from a symmetric Γ (only its lower triangle is read) and a token count,
  /// e.g. when loading a file. Throws Error(kInvalidArgument) for a non-square Γ or tokens < 0.
  static LayerGram from_gram(const Eigen::MatrixXd& gram, int64_t tokens);

 private:
  // Only the lower triangle is maintained (rank updates touch half the matrix); gram() mirrors it.
  Eigen::MatrixXd lower_;
  int64_t tokens_ = 0;
};

/// X̃ᵀX ([d_model, d_model], fp64) between compressed-model inputs X̃ and original inputs X of the
/// same tokens, for sequential value calibration.
class CrossGram {
 public:
  CrossGram() = default;
  explicit CrossGram(int d_model);

  int d_model() const { return static_cast<int>(cross_.rows()); }
  int64_t tokens() const { return tokens_; }

  /// Adds x_tildeᵀ·x for one chunk; both [n, d_model], row i of each is the same token.
  /// Throws Error(kInvalidArgument) on a shape mismatch or non-finite input.
  void accumulate(const Eigen::Ref<const MatrixRM>& x_tilde, const Eigen::Ref<const MatrixRM>& x);
  CrossGram& operator+=(const CrossGram& other);
  const Eigen::MatrixXd& cross() const { return cross_; }

 private:
  Eigen::MatrixXd cross_;
  int64_t tokens_ = 0;
};

/// The statistics of every layer of a model, with the keys that identify what they were computed
/// from (design §3.1: a cache keyed by model hash and data hash).
struct CalibStats {
  std::string model_key;  ///< e.g. SHA-256 of the GGUF file
  std::string data_key;   ///< e.g. SHA-256 of the calibration text plus the windowing settings
  std::vector<LayerGram> layers;

  /// Statistics for n_layers layers of width d_model, all empty.
  static CalibStats empty(int n_layers, int d_model);

  int n_layers() const { return static_cast<int>(layers.size()); }
  /// Width of every layer (0 when there are none).
  int d_model() const { return layers.empty() ? 0 : layers.front().d_model(); }

  /// Adds another run over different tokens, layer by layer. Throws Error(kInvalidArgument) when
  /// the layer count or d_model differ.
  CalibStats& operator+=(const CalibStats& other);

  /// Throws Error(kInvalidArgument) unless there are n_layers layers of width d_model.
  void check_shape(int n_layers, int d_model) const;

  /// Writes the binary file (format in calib_stats.cpp) through a temporary file and a rename, so
  /// that an interrupted run never leaves a half-written cache. Throws Error(kIoError).
  void save(const std::string& path) const;
  /// Reads a file written by save(). Throws Error(kNotFound) when it does not exist, kIoError when
  /// it cannot be read, kCorruptData for a bad magic, a truncated or oversized file, a checksum
  /// mismatch or non-finite values, kUnsupported for a newer format version.
  static CalibStats load(const std::string& path);
};

}  // namespace latentkv
