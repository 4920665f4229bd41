// Statistics for sequential value calibration (design §3.5, ReCalKV OVC): the inputs X̃ that a
// compressed model feeds each layer's k_proj/v_proj, against the inputs X of the original model on
// the same tokens.
//
// One pass per window: the original model runs first and its per-layer inputs are kept; then the
// compressed model (latent cache, every layer compressed) runs the same tokens and, per layer,
// Γ̃ += X̃ᵀX̃, C += X̃ᵀX, Γ_t += XᵀX. A layer's input only depends on the layers before it, so this
// gives every layer the inputs of a model whose preceding layers are all compressed — with the
// factors given here (the initial SVD), not with the ALS-refined ones a layer-by-layer pass would
// use; that costs one compressed forward pass instead of n_layers.
#pragma once

#include <vector>

#include "latentkv/compress/value_calibration.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/progress.h"
#include "latentkv/reference/latent_kv_cache.h"

namespace latentkv {

/// Per-layer CalibrationTarget (sequential: gram_input = Γ̃, cross = C, gram_target = Γ_t) from
/// running `windows` through `weights` and through the latent cache built from `factors` (one per
/// layer) with `cache`. `progress` gets (windows done, total). Throws Error(kInvalidArgument) for
/// no windows or factors that do not fit the weights.
std::vector<CalibrationTarget> collect_sequential_targets(
    const LlamaWeights& weights, const std::vector<LatentLayerFactors>& factors,
    const LatentCacheConfig& cache, const std::vector<std::vector<TokenId>>& windows,
    const ProgressFn& progress = {});

}  // namespace latentkv
