// Folding the value up-projection B_v into the output projection W_o, and the decode cost of
// folding versus keeping B_v (design §3.8).
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "latentkv/factors.h"
#include "latentkv/model/llama.h"

namespace latentkv {

/// W'_{o,h} = W_{o,h} · B_{v,g(h)}[j(h)] for every query head h (GQA: h reads KV head
/// h / (num_qo_heads / num_kv_heads)), concatenated in query-head order; bias' = bias_o + W_o ·
/// bias_v (bias_v expanded to the query heads that read each KV head). `w_o` is
/// [d_model, num_qo_heads·head_dim]; `bias_o` is [d_model] or empty. Computed in fp64, stored
/// fp32. Throws Error(kInvalidArgument) when num_kv_heads does not divide num_qo_heads or shapes
/// disagree.
FoldedOutputProjection fold_value_into_output(const ProjectionFactors& value, const MatrixRM& w_o,
                                              const Eigen::VectorXf& bias_o, int num_qo_heads);

/// What one decode step of one layer looks like.
struct DecodeCostParams {
  int64_t context_len = 0;    ///< cached tokens per sequence
  int batch_size = 1;         ///< sequences decoded together (weights are read once per step)
  double weight_bytes = 2.0;  ///< bytes per weight element (2 = fp16/bf16)
  /// Bytes of one token's value latents over all groups of the layer, scale/zero included (e.g.
  /// Σ_g latent_bytes_per_token(ranks[g], quant) from latentkv/quant/latent_quant.h).
  double value_cache_bytes_per_token = 0.0;
};

/// Bytes read and FLOPs of the value/output path of one layer for one decode step (all
/// sequences). Attention scoring and the P·H_v accumulation over latents are the same in both
/// paths and not counted in `flops`.
struct OutputPathCost {
  double weight_bytes = 0.0;  ///< W'_o (folded) or B_v + W_o (unfolded)
  double cache_bytes = 0.0;   ///< value latents read: batch·context·bytes per token
  double flops = 0.0;         ///< after attention: W'_o·z (folded) or B_v per query head + W_o
  double total_bytes() const { return weight_bytes + cache_bytes; }
};

struct OutputPathCosts {
  OutputPathCost folded;
  OutputPathCost unfolded;
  /// Decode is bandwidth-bound, so fewer bytes wins. Both paths read the same value latents, so
  /// this is decided by the weight bytes alone (context length and batch only change how much of
  /// the step the difference is); ties go to the unfolded path, which keeps the original W_o.
  bool prefer_folded() const { return folded.total_bytes() < unfolded.total_bytes(); }
};

/// Costs of both paths for the value factors of one layer:
///   folded:   weights d_model·Σ_h r_{g(h)};  FLOPs 2·batch·d_model·Σ_h r_{g(h)}
///   unfolded: weights Σ_g group_size·head_dim·r_g + d_model·num_qo_heads·head_dim;
///             FLOPs 2·batch·(head_dim·Σ_h r_{g(h)} + d_model·num_qo_heads·head_dim)
/// (the unfolded path up-projects each query head's latent z_h with its slot of B_v, since z_h
/// differs per query head under GQA). Throws Error(kInvalidArgument) for inconsistent inputs.
OutputPathCosts output_path_costs(const ProjectionFactors& value, int num_qo_heads,
                                  const DecodeCostParams& params);

}  // namespace latentkv
