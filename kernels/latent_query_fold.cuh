// Query folding for the MHA latent decode (design §4): the query of head h is folded into the key
// up-projection of its KV head once per decode step, so that the decode kernel never rebuilds a
// key. With rotate-half RoPE pairs (d, d + HD/2) at angle φ = θ_d·t,
//   q·RoPE_t(B·ĥ) = Σ_d cos φ·(U_d·ĥ) + sin φ·(V_d·ĥ),
//   U_d = q_d·B[d] + q_{d+HD/2}·B[d+HD/2],   V_d = q_{d+HD/2}·B[d] − q_d·B[d+HD/2],
// so the kernel's only per-token work besides the MMA H·[U|V]^T is two FMAs per pair.
// Output rows 2d / 2d+1 hold U_d / V_d (q pre-scaled by sm_scale·log2 e): fp16, and for
// quantized caches also int8 with one scale β per 16 rows (8 pairs, the rows one warp of the
// decode kernel reads; β = max|W| / 127 over them) and β·Σ_r W8 per row.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "latent_query_fold_params.h"
#include "mma_utils.cuh"

namespace latentkv::kernels {

/// One CTA per (16-row chunk ch of W, group slot gi = g·group_size + s, sequence b): RoPE pairs
/// 8·ch .. 8·ch + 7, the rows one warp of the decode kernel reads; one int8 scale per chunk.
__global__ void __launch_bounds__(kQueryFoldThreads)
    latent_query_fold_kernel(const QueryFoldParams p) {
  constexpr int kWarps = kQueryFoldThreads / 32;
  __shared__ float warp_max[kWarps];
  const int ch = blockIdx.x, gi = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int hd = p.head_dim, half = hd / 2, rank = p.rank;
  const int h = p.group_heads[gi];
  const int64_t bh = int64_t{b} * p.num_qo_heads + h;
  const __half* bk = reinterpret_cast<const __half*>(p.b_k) + int64_t{gi} * hd * rank;
  const int64_t qoff = b * p.q_sb + h * p.q_sh;
  // Warp w folds pairs 8·ch + w and 8·ch + w + kWarps (kWarps = 4): lanes run over the rank.
  auto query = [&](int d, float& ql, float& qh) {
    ql = load_q(p.q, qoff + d, p.q_bf16) * p.q_scale;
    qh = load_q(p.q, qoff + d + half, p.q_bf16) * p.q_scale;
  };
  auto fold = [&](int d, int c, float ql, float qh, float& u, float& v) {
    const float lo = __half2float(bk[int64_t{d} * rank + c]);
    const float hi = __half2float(bk[int64_t{d + half} * rank + c]);
    u = fmaf(ql, lo, qh * hi);
    v = fmaf(qh, lo, -(ql * hi));
  };
  __half* w16 = reinterpret_cast<__half*>(p.w16) + bh * hd * rank;
  float amax = 0.0f;
  for (int d = 8 * ch + warp; d < 8 * ch + 8; d += kWarps) {
    float ql, qh;
    query(d, ql, qh);
    for (int c = lane; c < rank; c += 32) {
      float u, v;
      fold(d, c, ql, qh, u, v);
      w16[int64_t{2 * d} * rank + c] = __float2half_rn(u);
      w16[int64_t{2 * d + 1} * rank + c] = __float2half_rn(v);
      amax = fmaxf(amax, fmaxf(fabsf(u), fabsf(v)));
    }
  }
  if (p.w8 == nullptr) return;
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(~0u, amax, off));
  if (lane == 0) warp_max[warp] = amax;
  __syncthreads();
  amax = 0.0f;
  for (int w = 0; w < kWarps; ++w) amax = fmaxf(amax, warp_max[w]);
  const float beta = amax > 0.0f ? amax / 127.0f : 1.0f;
  int8_t* w8 = p.w8 + bh * hd * rank;
  for (int d = 8 * ch + warp; d < 8 * ch + 8; d += kWarps) {
    int su = 0, sv = 0;
    float ql, qh;
    query(d, ql, qh);
    for (int c = lane; c < rank; c += 32) {
      float u, v;
      fold(d, c, ql, qh, u, v);
      const int iu = max(-127, min(127, __float2int_rn(u / beta)));
      const int iv = max(-127, min(127, __float2int_rn(v / beta)));
      w8[int64_t{2 * d} * rank + c] = static_cast<int8_t>(iu);
      w8[int64_t{2 * d + 1} * rank + c] = static_cast<int8_t>(iv);
      su += iu;
      sv += iv;
    }
    for (int off = 16; off > 0; off /= 2) {
      su += __shfl_xor_sync(~0u, su, off);
      sv += __shfl_xor_sync(~0u, sv, off);
    }
    if (lane == 0) {
      p.w8_zsum[bh * hd + 2 * d] = beta * static_cast<float>(su);
      p.w8_zsum[bh * hd + 2 * d + 1] = beta * static_cast<float>(sv);
    }
  }
  if (tid == 0) p.w8_beta[bh * (hd / 16) + ch] = beta;
}

}  // namespace latentkv::kernels
