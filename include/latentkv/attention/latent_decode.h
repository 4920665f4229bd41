// Fused latent decode attention (design §4, §5): attention of one query token per sequence over a
// paged latent cache, rebuilding keys from latents on the fly.
//
// For KV head kv at (group g, slot s) of the key factors and query head h (kv = h / ratio):
//   k_t   = RoPE_t(B_k,g[s] · ĥ_k,t)          (ĥ = cached latent, dequantized; RoPE at position t)
//   p_h,t = softmax_t(sm_scale · q_h · k_t)
//   out_h = Σ_t p_h,t · ĥ_v,t                  ([rank_v], the latent-space value result)
// The value up-projection by B_v is either fused into the split combine (b_v below) or a separate
// step (value_projection.h), as is W_o or a folded W'_o. Keys and values share the grouping (same
// group_size and group_heads).
//
// Kernel (kernels/latent_decode.cuh): one CTA per (sequence, block of heads_per_cta KV heads of a
// group, token split). The key factors of those heads stay in registers for the whole CTA; every
// latent tile is loaded once into shared memory and feeds all heads of the block (tensor-core MMA,
// fp16 m16n8k16 for fp16 latents; int8 m16n8k32 on the codes for 2/3/4-bit latents with
// k = β·(s·(B_i8·c) + z·(B_i8·1)) ), RoPE in registers, scores of all query heads that read those
// KV heads by a second MMA, online softmax, P·Ĥ_v by a third MMA, split-KV combine.
// With bits < 16 the keys use int8 factors B_i8 (per RoPE-pair scale β), see LatentKeyFactorsI8.
// MHA (num_qo_heads == num_kv_heads) takes a second form of the kernel that rebuilds no keys: a
// first launch folds each query into its head's key factors (W = [U|V] with U_d = q_d·B[d] +
// q_{d+D/2}·B[d+D/2], V_d = q_{d+D/2}·B[d] − q_d·B[d+D/2], fp16, and int8 with one scale per
// 16 rows for bits < 16), and the score of token t is Σ_d cos(θ_d t)·(U_d·ĥ_t) + sin(θ_d
// t)·(V_d·ĥ_t): the same tensor work as the rebuild, without the per-key RoPE / score epilogue. W
// lives in the workspace (plan.workspace_bytes), and b_k is then required at every bit width.
#pragma once

#include <cstdint>
#include <vector>

#include "latentkv/attention/decode_common.h"
#include "latentkv/attention/latent_cache.h"

namespace latentkv {

/// Parameters of one latent decode-attention call (one layer). Pointers are device pointers for
/// the kernel and host pointers for reference::latent_decode(); nothing is owned.
struct LatentDecodeParams {
  int batch_size = 0;
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int group_size = 0;
  /// KV head at (group g, slot s) = group_heads[g*group_size + s], [num_kv_heads] int32.
  const int32_t* group_heads = nullptr;
  /// Queries after RoPE at their own position: q[b*q_stride_batch + h*q_stride_head + d].
  const void* q = nullptr;
  DType q_dtype = DType::kF16;  ///< kF16 or kBF16
  int64_t q_stride_batch = 0, q_stride_head = 0;
  /// Key up-projections, fp16 [num_groups][group_size*head_dim][rank_k] (ProjectionFactors::b).
  /// Read when k.bits = 16, for the residual window, and at every bit width for MHA (folded).
  const uint16_t* b_k = nullptr;
  /// int8 key up-projections for bits < 16 with GQA (make_key_factors_i8): values [num_groups]
  /// [group_size*head_dim][rank_k], scale β per row (equal within a RoPE pair), row sums.
  const int8_t* b_k_i8 = nullptr;
  const float* b_k_i8_scale = nullptr;     ///< [num_groups*group_size*head_dim]
  const int32_t* b_k_i8_rowsum = nullptr;  ///< [num_groups*group_size*head_dim]
  /// RoPE inverse frequencies, [head_dim/2] (rope_inv_freq()); token t sits at position t.
  const double* inv_freq = nullptr;
  float sm_scale = 0.0f;
  /// Cached latents; k.bits == v.bits, k.quant_group == v.quant_group.
  LatentCacheView k, v;
  LatentWindowPolicy window;
  /// Pages shared by K and V; pages.seq_lens[b] = tokens cached for sequence b.
  PageTableView pages;
  /// Optional value up-projections, fp16 [num_groups][group_size*head_dim][rank_v]
  /// (ProjectionFactors::b of the values, 16-byte aligned). When set, the split combine applies
  /// them: out receives o[b, h, d] = Σ_c B_v,g[s][d][c] · out_h[c], d < head_dim, in head space
  /// (what value_up_projection_run computes from the latent result), instead of out_h.
  const uint16_t* b_v = nullptr;
  /// Output, latent-space value result: out[b*out_stride_batch + h*out_stride_head + c],
  /// c < v.rank (c < head_dim with b_v). kF32, kF16 or kBF16. Heads of an empty sequence get 0.
  void* out = nullptr;
  DType out_dtype = DType::kF32;
  int64_t out_stride_batch = 0, out_stride_head = 0;
  /// Optional natural-log log-sum-exp of the scaled scores, [batch_size][num_qo_heads].
  float* lse = nullptr;
};

/// int8 key factors for the quantized-latent kernel: B ≈ β_row · B_i8 with one β for the two
/// rows of each RoPE pair (d, d + head_dim/2) of a head, so that β commutes with the rotation.
struct LatentKeyFactorsI8 {
  std::vector<int8_t> values;   ///< [num_groups][group_size*head_dim][rank]
  std::vector<float> scale;     ///< [num_groups*group_size*head_dim]
  std::vector<int32_t> rowsum;  ///< Σ_c values[row][c]
};

/// Quantizes fp32 key factors b ([num_groups][group_size*head_dim][rank], ProjectionFactors::b
/// with uniform ranks) to int8 with symmetric round-to-nearest per RoPE pair of rows. Throws
/// Error(kInvalidArgument) on a size mismatch or a non-finite value.
LatentKeyFactorsI8 make_key_factors_i8(const std::vector<float>& b, int num_groups, int group_size,
                                       int head_dim, int rank);

/// Ok, or kUnsupported / kInvalidArgument naming the first unsupported or inconsistent field:
/// head_dim 64 or 128; group_size 1, 2, 4 or 8 dividing num_kv_heads; GQA ratio 1..8; ranks
/// multiples of 16 (rank_k <= 512 / heads-per-CTA rules, rank_v <= 512); bits 16, 4, 3 or 2,
/// equal for K and V; quant_group = whole latent for bits < 16; batch 1..256; page_size >= 1;
/// 16-byte aligned rows.
Status latent_decode_is_supported(const LatentDecodeParams& params);

/// Chooses heads per CTA and the split-KV decomposition for sequences of up to max_seq_len tokens
/// (1..131072) on a GPU with num_sms multiprocessors, and sizes the workspace. Pure host code:
/// shapes the Hopper warpgroup kernel takes are planned for it (one CTA per SM, the residual
/// window's CTAs in the same grid) without asking the device, so on other GPUs such shapes may
/// get fewer splits than their mma.sync kernels would want.
Status latent_decode_plan(const LatentDecodeParams& params, int max_seq_len, int num_sms,
                          DecodePlan* plan);

#if defined(LATENTKV_WITH_CUDA)
/// Runs the decode on `stream` (query fold for MHA, main kernel, residual-window kernel when
/// bits < 16 and the window is non-empty, split combine). `workspace` (device, 16-byte aligned)
/// must hold plan.workspace_bytes; every seq_lens[b] must be <= plan.max_seq_len.
Status latent_decode_run(const LatentDecodeParams& params, const DecodePlan& plan, void* workspace,
                         int64_t workspace_bytes, GpuStream stream);
#endif

}  // namespace latentkv
