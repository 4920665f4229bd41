// Query folding for the MHA latent decode (design §4): the query of head h is folded into the key
// up-projection of its KV head once per decode step, so that the decode kernel never rebuilds a
// key. With rotate-half RoPE pairs (d, d + HD/2) at angle φ = θ_d·t,
//   q·RoPE_t(B·ĥ) = Σ_d cos φ·(U_d·ĥ) + sin φ·(V_d·ĥ),
//   U_d = q_d·B[d] + q_{d+HD/2}·B[d+HD/2],   V_d = q_{d+HD/2}·B[d] − q_d·B[d+HD/2],
// so the kernel's only per-token work besides the MMA H·[U|V]^T is two FMAs per pair.
// Output rows 2d / 2d+1 hold U_d / V_d (q pre-scaled by sm_scale·log2 e): fp16, and for
// quantized caches also an 8-bit W8 with one scale β per 16 rows (8 pairs, the rows one warp of
// the decode kernel reads) and β·Σ_r W8 per row. W8 is int8 with β = max|W| / 127 for the
// mma.sync kernel, e4m3 with β = max|W| / 448 for the warpgroup kernel (its e4m3 MMA).
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "latent_query_fold_params.h"
#include "mma_utils.cuh"

namespace latentkv::kernels {

/// One CTA per (16-row chunk ch of W, group slot gi = g·group_size + s, sequence b): RoPE pairs
/// 8·ch .. 8·ch + 7, the rows one warp of the decode kernel reads; one int8 scale per chunk.
/// Lanes run over the rank 8 elements at a time (16-byte loads of B, rank % 16 == 0).
__global__ void __launch_bounds__(kQueryFoldThreads)
    latent_query_fold_kernel(const QueryFoldParams p) {
  grid_dependency_wait();  // launched as a programmatic dependent (launch_dependent)
  grid_dependents_launch();
  constexpr int kWarps = kQueryFoldThreads / 32;
  __shared__ float warp_max[kWarps];
  const int ch = blockIdx.x, gi = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int hd = p.head_dim, half = hd / 2, rank = p.rank, vecs = rank / 8;
  const int h = p.group_heads[gi];
  const int64_t bh = int64_t{b} * p.num_qo_heads + h;
  const __half* bk = reinterpret_cast<const __half*>(p.b_k) + int64_t{gi} * hd * rank;
  const int64_t qoff = b * p.q_sb + h * p.q_sh;
  // Warp w folds pairs 8·ch + w and 8·ch + w + kWarps (kWarps = 4).
  auto query = [&](int d, float& ql, float& qh) {
    ql = load_q(p.q, qoff + d, p.q_bf16) * p.q_scale;
    qh = load_q(p.q, qoff + d + half, p.q_bf16) * p.q_scale;
  };
  // U_d, V_d at rank elements 8·c8 .. 8·c8 + 7.
  auto fold = [&](int d, int c8, float ql, float qh, float(&u)[8], float(&v)[8]) {
    const uint4 lo = *reinterpret_cast<const uint4*>(bk + int64_t{d} * rank + 8 * c8);
    const uint4 hi = *reinterpret_cast<const uint4*>(bk + int64_t{d + half} * rank + 8 * c8);
    const __half* l = reinterpret_cast<const __half*>(&lo);
    const __half* r = reinterpret_cast<const __half*>(&hi);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float a = __half2float(l[k]), c = __half2float(r[k]);
      u[k] = fmaf(ql, a, qh * c);
      v[k] = fmaf(qh, a, -(ql * c));
    }
  };
  auto pack8_f16 = [](const float(&x)[8]) {
    uint4 o;
    uint32_t* w = reinterpret_cast<uint32_t*>(&o);
#pragma unroll
    for (int k = 0; k < 4; ++k) w[k] = pack_half2(x[2 * k], x[2 * k + 1]);
    return o;
  };
  __half* w16 = reinterpret_cast<__half*>(p.w16) + bh * hd * rank;
  float amax = 0.0f;
  for (int d = 8 * ch + warp; d < 8 * ch + 8; d += kWarps) {
    float ql, qh;
    query(d, ql, qh);
    for (int c8 = lane; c8 < vecs; c8 += 32) {
      float u[8], v[8];
      fold(d, c8, ql, qh, u, v);
      *reinterpret_cast<uint4*>(w16 + int64_t{2 * d} * rank + 8 * c8) = pack8_f16(u);
      *reinterpret_cast<uint4*>(w16 + int64_t{2 * d + 1} * rank + 8 * c8) = pack8_f16(v);
#pragma unroll
      for (int k = 0; k < 8; ++k) amax = fmaxf(amax, fmaxf(fabsf(u[k]), fabsf(v[k])));
    }
  }
  if (p.w8 == nullptr) return;
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(~0u, amax, off));
  if (lane == 0) warp_max[warp] = amax;
  __syncthreads();
  amax = 0.0f;
  for (int w = 0; w < kWarps; ++w) amax = fmaxf(amax, warp_max[w]);
  const float beta = amax > 0.0f ? amax / (p.w8_e4m3 ? 448.0f : 127.0f) : 1.0f;
  int8_t* w8 = p.w8 + bh * hd * rank;
  // Second pass over the same B rows (L1 hits): 8-bit codes and their row sums.
  auto quantize8 = [&](const float(&x)[8], float& sum) {
    uint32_t w[2] = {0u, 0u};
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      uint32_t byte;
      if (p.w8_e4m3) {
        const __nv_fp8_e4m3 q(x[k] / beta);  // round to nearest, saturating to ±448
        sum += static_cast<float>(q);
        byte = q.__x;
      } else {
        const int q = max(-127, min(127, __float2int_rn(x[k] / beta)));
        sum += static_cast<float>(q);
        byte = static_cast<uint32_t>(q) & 0xFFu;
      }
      w[k / 4] |= byte << (8 * (k % 4));
    }
    return make_uint2(w[0], w[1]);
  };
  for (int d = 8 * ch + warp; d < 8 * ch + 8; d += kWarps) {
    float su = 0.0f, sv = 0.0f;
    float ql, qh;
    query(d, ql, qh);
    for (int c8 = lane; c8 < vecs; c8 += 32) {
      float u[8], v[8];
      fold(d, c8, ql, qh, u, v);
      *reinterpret_cast<uint2*>(w8 + int64_t{2 * d} * rank + 8 * c8) = quantize8(u, su);
      *reinterpret_cast<uint2*>(w8 + int64_t{2 * d + 1} * rank + 8 * c8) = quantize8(v, sv);
    }
    for (int off = 16; off > 0; off /= 2) {
      su += __shfl_xor_sync(~0u, su, off);
      sv += __shfl_xor_sync(~0u, sv, off);
    }
    if (lane == 0) {
      p.w8_zsum[bh * hd + 2 * d] = beta * su;
      p.w8_zsum[bh * hd + 2 * d + 1] = beta * sv;
    }
  }
  if (tid == 0) p.w8_beta[bh * (hd / 16) + ch] = beta;
}

}  // namespace latentkv::kernels
