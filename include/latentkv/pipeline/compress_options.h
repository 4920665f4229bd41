// Every knob of the compression pipeline and the named presets that set them (design §3, issue 4).
//
// Presets on a model with num_kv_heads KV heads (SmolLM2-135M: 3):
//   palu     Palu (arXiv 2407.21118), faithful where the model allows: whitened SVD of groups of
//            consecutive KV heads, group_size = num_kv_heads (joint; Palu's README setting of 4
//            heads per group does not divide 3 heads, and joint is its most accurate variant),
//            Fisher allocation "fisher_uniform" with Palu's RMS reduction, Hadamard rotation and
//            per-token quantization when bits < 16.
//   recalkv  ReCalKV: head-similarity grouping of keys (moot when a group holds all KV heads or
//            one head — the case for 3 KV heads, where group_size must be 1 or 3), joint values
//            refined by ALS on sequential statistics (inputs taken from the compressed model, the
//            only case where ALS can beat the whitened SVD, design §3.5); Palu's allocation.
//   latentkv our default, chosen by measuring perplexity on a held-out slice of WikiText-2 valid
//            (bench/select_default.sh, README "Choosing the default"): whitened SVD of joint
//            groups, greedy_error allocation with each group's truncation error weighted by its
//            mean-square Fisher score divided by the layer's mean squared input
//            (ErrorWeight::kFisherPerInput, an estimate of E[(dL/dy)²]).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "latentkv/compress/hadamard.h"
#include "latentkv/compress/head_grouping.h"
#include "latentkv/compress/rank_allocation.h"
#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/quant/latent_quant.h"

namespace latentkv {

/// How much KV cache a compressed model may use per token (over all layers, K and V).
struct BudgetSpec {
  enum class Kind {
    kBytesFraction,  ///< keep this fraction of the fp16 KV bytes, quantization metadata included
    kBytesPerToken,  ///< at most this many bytes per token
    /// Palu's convention: ranks allocated as if latents were fp16 and kept this fraction of the
    /// fp16 bytes (= this fraction of the full rank), then stored with `bits`; the bytes are then
    /// about fraction·bits/16 of fp16 plus the scale/zero metadata.
    kRankFraction,
  };
  Kind kind = Kind::kBytesFraction;
  double value = 0.5;

  /// Throws Error(kInvalidArgument) for a fraction outside (0, 1] or non-positive bytes.
  void validate() const;
  /// "50 % of fp16 bytes", "4000 bytes/token", "rank fraction 0.5".
  std::string describe() const;
};

/// Rank allocators (rank_allocation.h).
enum class AllocatorKind { kUniform, kPalu, kGreedyError };
/// What multiplies a group's whitened truncation error in greedy_error.
enum class ErrorWeight {
  kFisher,          ///< the projection's (group's) Fisher score
  kFisherPerInput,  ///< Fisher score / mean squared input of the layer (tr Γ / (tokens·d_model))
  kNone,            ///< 1: plain output error
};
/// How value factors are computed.
enum class ValueMethod {
  kSvd,            ///< the same (whitened or plain) SVD as keys
  kSequentialAls,  ///< whitened SVD, then ALS on statistics of the compressed model (ReCalKV OVC)
};
/// Whether B_v is folded into W_o (design §3.8).
enum class FoldPolicy {
  kCostModel,  ///< per layer, the path with fewer weight bytes per decode step (fold_vo.h)
  kAlways,
  kNever,
};

const char* allocator_name(AllocatorKind a);
AllocatorKind parse_allocator(const std::string& name);  ///< "uniform", "palu", "greedy_error"
const char* error_weight_name(ErrorWeight w);
ErrorWeight parse_error_weight(const std::string& name);  ///< "fisher", "fisher_per_input", "none"
const char* value_method_name(ValueMethod m);
ValueMethod parse_value_method(const std::string& name);  ///< "svd", "sequential_als"
const char* fold_policy_name(FoldPolicy f);
FoldPolicy parse_fold_policy(const std::string& name);  ///< "cost", "always", "never"
const char* grouping_method_name(GroupingMethod m);
/// "consecutive", "greedy", "search", "best_error".
GroupingMethod parse_grouping_method(const std::string& name);
const char* rotation_mode_name(RotationMode m);
RotationMode parse_rotation_mode(
    const std::string& name);  ///< "hadamard", "hadamard_or_random", "random"

/// Everything compress needs to know besides the model and its statistics.
struct CompressOptions {
  std::string preset;  ///< the preset these options started from
  BudgetSpec budget;
  /// Latent storage of keys and values (bits 16 = fp16 latents; 2/3/4/8 = per-token codes).
  QuantConfig quant;
  /// KV heads per low-rank group; 0 = num_kv_heads (joint).
  int group_size = 0;
  /// Ranks are multiples of this. 16 for head_dim 64: every multiple of 16 up to 192 is a true
  /// Hadamard size (K·2^m with K in {1, 12, 20, 28, 36, 44}), so nothing falls back to a random
  /// rotation.
  int granule = 16;
  AllocatorKind allocator = AllocatorKind::kGreedyError;
  FisherReduction fisher_reduction = FisherReduction::kMeanSquare;
  ErrorWeight error_weight = ErrorWeight::kFisher;
  GroupingMethod key_grouping = GroupingMethod::kConsecutive;
  bool whiten = true;  ///< whitened SVD (design §3.2); false = plain SVD, for comparison
  ValueMethod value_method = ValueMethod::kSvd;
  RotationMode rotation = RotationMode::kHadamardOrRandom;  ///< applied when quant.bits < 16
  FoldPolicy fold = FoldPolicy::kCostModel;

  /// Whether the allocator needs Fisher scores.
  bool needs_fisher() const;
  /// Throws Error(kInvalidArgument) naming the first bad field (budget, bits, quant_group,
  /// residual, group_size < 0, granule < 1).
  void validate() const;
  /// (key, value) lines describing the method, stored in the compressed file.
  std::vector<std::pair<std::string, std::string>> describe() const;
};

/// Names of the presets, in the order of the file comment.
std::vector<std::string> preset_names();

/// The options of a preset. Throws Error(kInvalidArgument) for an unknown name (the message
/// lists the known ones).
CompressOptions preset_options(const std::string& name);

}  // namespace latentkv
