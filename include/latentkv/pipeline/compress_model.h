// The compression driver: calibration statistics (+ Fisher scores) + options -> CompressedModel
// (design §3.2–§3.8).
//
// Per layer: whitening of Γ; key grouping (options.key_grouping; values keep consecutive heads);
// spectra of every group; one rank allocation over all layers; factors at the allocated ranks
// (whitened or plain SVD; values optionally refined by ALS on sequential statistics); a Hadamard
// rotation folded into both factors when latents are quantized; B_v folded into W_o per the fold
// policy. The relative output error of every projection is kept for the report.
#pragma once

#include <string>
#include <vector>

#include "latentkv/compress/calib_stats.h"
#include "latentkv/compress/rank_allocation.h"
#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/pipeline/compress_options.h"
#include "latentkv/pipeline/compressed_model.h"
#include "latentkv/progress.h"

namespace latentkv {

/// What compress_model() reads besides the options.
struct CompressInputs {
  const LlamaWeights* weights = nullptr;  ///< the base model (fp32)
  std::string base_sha256;                ///< SHA-256 of its GGUF file
  const CalibStats* stats = nullptr;      ///< Γ of every layer (design §3.1)
  /// Fisher scores; required when options.needs_fisher(), ignored otherwise.
  const FisherScores* fisher = nullptr;
  /// Windows for the sequential statistics of ValueMethod::kSequentialAls; unused otherwise.
  std::vector<std::vector<TokenId>> sequential_windows;
  /// Extra recipe lines (calibration data, Fisher source, ...) recorded in the file.
  std::vector<std::pair<std::string, std::string>> recipe;
};

/// What compression did, for reports.
struct CompressReport {
  RankAllocation allocation;
  std::vector<int> damped_layers;  ///< layers whose Γ needed damping to be factorized
  int folded_layers = 0;           ///< layers with B_v folded into W_o
  double decompose_seconds = 0;    ///< whitening, spectra, allocation, factors, rotation, folding
  double sequential_seconds = 0;   ///< the sequential statistics pass (kSequentialAls only)
};

/// Progress callbacks of the two long steps (either may be empty).
struct CompressProgress {
  ProgressFn decompose;   ///< (steps done, 2·n_layers): spectra of every layer, then factors
  ProgressFn sequential;  ///< (windows done, total) of the sequential statistics pass
};

/// Compresses the key/value projections of `inputs.weights`. Throws Error(kInvalidArgument) for
/// invalid options (validate(), group_size not dividing num_kv_heads, a rank the rotation mode
/// cannot rotate), missing Fisher scores or statistics that do not fit the model,
/// kNumericalError when a factorization fails.
CompressedModel compress_model(const CompressInputs& inputs, const CompressOptions& options,
                               const CompressProgress& progress = {},
                               CompressReport* report = nullptr);

}  // namespace latentkv
