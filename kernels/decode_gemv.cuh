// Tensor-core matrix-vector product for the decode step's projections (issue 6): Y = X·Wᵀ for a
// few rows of activations, Y[m][n] = beta·Y[m][n] + Σ_k X[m][k]·W[n][k], X fp16 [M <= 8][K],
// W fp16 [N][K] (the engine's weight layout), Y fp16 or fp32. Host side: src/cuda/decode_gemv.h
// (used by the engine's projections and by the latent append's projection).
//
// Each decode step streams every weight once, so the product is bound by HBM bandwidth: the
// kernel keeps 16-byte weight loads in flight and lets mma.sync m16n8k16 do the fp16 -> fp32
// multiply-adds (W rows are the A operand, the M <= 8 activation rows the B operand's n). The k
// order inside each 32-wide block is permuted so that a thread's 8 consecutive weights of a row
// are its A fragments of two k16 steps; the activations are read in the same order:
//   step 0: a0 = W[r][8c..8c+1], a2 = W[r][8c+2..8c+3]; step 1: a0 = W[r][8c+4..], a2 = ..+6
//   (a1 / a3 the same for row r + 8), b0 / b1 = X[n = r][the same k] (r = lane / 4, c = lane % 4).
// CTA = 16 output rows, kGemvWarps warps over disjoint k ranges, reduced in shared memory.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "mma_utils.cuh"

namespace latentkv::kernels {

constexpr int kGemvMaxRows = 8;  ///< activation rows (the MMA's n)
constexpr int kGemvWarps = 8;    ///< warps per CTA, each over its share of the k blocks
constexpr int kGemvUnroll = 4;   ///< 32-wide k blocks per warp and step (loads in flight)

struct DecodeGemvParams {
  const __half* x;  ///< [m][ldx], ldx % 8 == 0, 16-byte aligned
  int64_t ldx;
  const __half* w;  ///< [n][ldw], ldw % 8 == 0, 16-byte aligned
  int64_t ldw;
  void* y;  ///< [m][ldy], fp32 when y_f32 else fp16
  int64_t ldy;
  int y_f32;
  int m, n, k;  ///< k % 32 == 0
  float beta;   ///< 0: y is overwritten; else y = beta·y + X·Wᵀ
};

/// grid ceil(n / 16), kGemvWarps warps.
// static: the header is compiled into several .cu files of one library (internal linkage per TU).
static __global__ void __launch_bounds__(kGemvWarps * 32)
    decode_gemv_kernel(const DecodeGemvParams p) {
  __shared__ float part[kGemvWarps][16][kGemvMaxRows];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 4, c = lane % 4;
  const int row0 = blockIdx.x * 16;
  const int blocks = p.k / 32;
  const int kb0 = static_cast<int>(int64_t{blocks} * warp / kGemvWarps);
  const int kb1 = static_cast<int>(int64_t{blocks} * (warp + 1) / kGemvWarps);
  // Rows past n read row n - 1 (finite values, results dropped); activation rows past m are 0.
  const __half* w_lo = p.w + int64_t{min(row0 + r, p.n - 1)} * p.ldw + 8 * c;
  const __half* w_hi = p.w + int64_t{min(row0 + r + 8, p.n - 1)} * p.ldw + 8 * c;
  const bool x_in = r < p.m;
  const __half* xr = p.x + int64_t{x_in ? r : 0} * p.ldx + 8 * c;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int kb = kb0; kb < kb1; kb += kGemvUnroll) {
    uint4 wl[kGemvUnroll], wh[kGemvUnroll], xv[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const bool in = kb + u < kb1;
      const int64_t off = int64_t{in ? kb + u : kb0} * 32;
      // Weights are read once per step: streaming (evict-first) loads. (An L2::256B prefetch
      // hint on these loads measured 8 % slower per call.)
      wl[u] = __ldcs(reinterpret_cast<const uint4*>(w_lo + off));
      wh[u] = __ldcs(reinterpret_cast<const uint4*>(w_hi + off));
      xv[u] = x_in && in ? *reinterpret_cast<const uint4*>(xr + off) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      if (kb + u < kb1) {
        const uint32_t a0[4] = {wl[u].x, wh[u].x, wl[u].y, wh[u].y};
        const uint32_t a1[4] = {wl[u].z, wh[u].z, wl[u].w, wh[u].w};
        mma_f16(acc, a0, xv[u].x, xv[u].y);
        mma_f16(acc, a1, xv[u].z, xv[u].w);
      }
    }
  }
  // acc: (row r, act 2c), (r, 2c+1), (r+8, 2c), (r+8, 2c+1).
  part[warp][r][2 * c] = acc[0];
  part[warp][r][2 * c + 1] = acc[1];
  part[warp][r + 8][2 * c] = acc[2];
  part[warp][r + 8][2 * c + 1] = acc[3];
  __syncthreads();
  if (threadIdx.x < 16 * kGemvMaxRows) {
    const int row = threadIdx.x / kGemvMaxRows, m = threadIdx.x % kGemvMaxRows;
    if (m < p.m && row0 + row < p.n) {
      float v = 0.0f;
#pragma unroll
      for (int w = 0; w < kGemvWarps; ++w) v += part[w][row][m];
      const int64_t at = int64_t{m} * p.ldy + row0 + row;
      if (p.y_f32) {
        float* y = static_cast<float*>(p.y) + at;
        *y = p.beta != 0.0f ? fmaf(p.beta, *y, v) : v;
      } else {
        __half* y = static_cast<__half*>(p.y) + at;
        *y = __float2half_rn(p.beta != 0.0f ? fmaf(p.beta, __half2float(*y), v) : v);
      }
    }
  }
}

}  // namespace latentkv::kernels
