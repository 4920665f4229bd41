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
// CTA = 16 output rows, kGemvWarps warps over disjoint k ranges, reduced in shared memory. One
// launch may hold two products of the same X (DecodeGemvParams::out): the CTAs past the first
// product's row blocks take the second.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "mma_utils.cuh"

namespace latentkv::kernels {

constexpr int kGemvMaxRows = 8;  ///< activation rows (the MMA's n)

/// One product Y = beta·Y + X·Wᵀ of a launch.
struct DecodeGemvOutput {
  const __half* w = nullptr;  ///< [n][ldw], ldw % 8 == 0, 16-byte aligned
  int64_t ldw = 0;
  void* y = nullptr;  ///< [m][ldy], fp32 when y_f32 else fp16
  int64_t ldy = 0;
  int y_f32 = 0;
  int n = 0;
  float beta = 0.0f;  ///< 0: y is overwritten; else y = beta·y + X·Wᵀ
};

/// One or two products of the same X in one launch (out[1].n == 0 for one): the latent decode
/// step projects its hidden state with W_q and the stacked latent down-projection together.
struct DecodeGemvParams {
  const __half* x = nullptr;  ///< [m][ldx], ldx % 8 == 0, 16-byte aligned
  int64_t ldx = 0;
  int m = 0, k = 0;  ///< k % 32 == 0
  DecodeGemvOutput out[2];
};

/// Warps per CTA, each over its own share of the k blocks, and 32-wide k blocks per load batch.
/// Each warp keeps two batches in flight (one loading while the other is multiplied). Measured
/// on an H100 over the Llama-2-7B projections (bench/decode_gemv_bench.cu, run 26): 4 warps ×
/// 8 blocks, double-buffered, streamed 7-12 % faster than 8 warps × 4 blocks without the second
/// buffer (the previous form) and 11-23 % faster than cuBLAS; 2, 8 or 16 warps, or 4, 6 or 12
/// blocks per batch were slower or equal.
constexpr int kGemvWarps = 4;
constexpr int kGemvUnroll = 8;
static_assert(kGemvWarps * 32 >= 16 * kGemvMaxRows,
              "the final reduction takes one thread per output");

/// grid ceil(out[0].n / 16) + ceil(out[1].n / 16), kGemvWarps warps.
// static: the header is compiled into several .cu files of one library (internal linkage per TU).
static __global__ void __launch_bounds__(kGemvWarps * 32)
    decode_gemv_kernel(const DecodeGemvParams p) {
  __shared__ float part[kGemvWarps][16][kGemvMaxRows];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 4, c = lane % 4;
  const int blocks0 = (p.out[0].n + 15) / 16;
  const bool second = static_cast<int>(blockIdx.x) >= blocks0;
  const DecodeGemvOutput o = second ? p.out[1] : p.out[0];
  const int row0 = (blockIdx.x - (second ? blocks0 : 0)) * 16;
  const int blocks = p.k / 32;
  const int kb0 = static_cast<int>(int64_t{blocks} * warp / kGemvWarps);
  const int kb1 = static_cast<int>(int64_t{blocks} * (warp + 1) / kGemvWarps);
  // Rows past n read row n - 1 (finite values, results dropped); activation rows past m are 0.
  const __half* w_lo = o.w + int64_t{min(row0 + r, o.n - 1)} * o.ldw + 8 * c;
  const __half* w_hi = o.w + int64_t{min(row0 + r + 8, o.n - 1)} * o.ldw + 8 * c;
  const bool x_in = r < p.m;
  const __half* xr = p.x + int64_t{x_in ? r : 0} * p.ldx + 8 * c;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  struct Batch {
    uint4 wl[kGemvUnroll], wh[kGemvUnroll], xv[kGemvUnroll];
  };
  // Blocks kb .. kb + kGemvUnroll - 1; those past kb1 load block kb0 again and are not used.
  // Weights and activations apart, so that the first weights can be requested before the wait
  // below.
  auto block_of = [&](int kb, int u) { return int64_t{kb + u < kb1 ? kb + u : kb0} * 32; };
  auto load_w = [&](Batch& b, int kb) {
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      // Weights are read once per step: streaming (evict-first) loads. (An L2::256B prefetch
      // hint on these loads measured 8 % slower per call.)
      b.wl[u] = __ldcs(reinterpret_cast<const uint4*>(w_lo + block_of(kb, u)));
      b.wh[u] = __ldcs(reinterpret_cast<const uint4*>(w_hi + block_of(kb, u)));
    }
  };
  auto load_x = [&](Batch& b, int kb) {
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u)
      b.xv[u] = x_in && kb + u < kb1 ? *reinterpret_cast<const uint4*>(xr + block_of(kb, u))
                                     : make_uint4(0, 0, 0, 0);
  };
  auto load = [&](Batch& b, int kb) {
    load_w(b, kb);
    load_x(b, kb);
  };
  auto multiply = [&](const Batch& b, int kb) {
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      if (kb + u < kb1) {
        const uint32_t a0[4] = {b.wl[u].x, b.wh[u].x, b.wl[u].y, b.wh[u].y};
        const uint32_t a1[4] = {b.wl[u].z, b.wh[u].z, b.wl[u].w, b.wh[u].w};
        mma_f16(acc, a0, b.xv[u].x, b.xv[u].y);
        mma_f16(acc, a1, b.xv[u].z, b.xv[u].w);
      }
    }
  };
  // Two named buffers rather than an indexed pair, so that both stay in registers.
  Batch b0, b1;
  // Launched as a programmatic dependent (launch_decode_gemv), the kernel may start while the
  // kernel before it finishes: the weights of the first batch (constant) are requested before
  // waiting for that kernel's results, the activations only after.
  if (kb0 < kb1) load_w(b0, kb0);
  grid_dependency_wait();
  if (kb0 < kb1) load_x(b0, kb0);
  for (int kb = kb0; kb < kb1; kb += 2 * kGemvUnroll) {
    if (kb + kGemvUnroll < kb1) load(b1, kb + kGemvUnroll);
    multiply(b0, kb);
    if (kb + kGemvUnroll >= kb1) break;
    if (kb + 2 * kGemvUnroll < kb1) load(b0, kb + 2 * kGemvUnroll);
    multiply(b1, kb + kGemvUnroll);
  }
  // acc: (row r, act 2c), (r, 2c+1), (r+8, 2c), (r+8, 2c+1).
  part[warp][r][2 * c] = acc[0];
  part[warp][r][2 * c + 1] = acc[1];
  part[warp][r + 8][2 * c] = acc[2];
  part[warp][r + 8][2 * c + 1] = acc[3];
  __syncthreads();
  if (threadIdx.x < 16 * kGemvMaxRows) {
    const int row = threadIdx.x / kGemvMaxRows, m = threadIdx.x % kGemvMaxRows;
    if (m < p.m && row0 + row < o.n) {
      float v = 0.0f;
#pragma unroll
      for (int w = 0; w < kGemvWarps; ++w) v += part[w][row][m];
      const int64_t at = int64_t{m} * o.ldy + row0 + row;
      if (o.y_f32) {
        float* y = static_cast<float*>(o.y) + at;
        *y = o.beta != 0.0f ? fmaf(o.beta, *y, v) : v;
      } else {
        __half* y = static_cast<__half*>(o.y) + at;
        *y = __float2half_rn(o.beta != 0.0f ? fmaf(o.beta, __half2float(*y), v) : v);
      }
    }
  }
}

}  // namespace latentkv::kernels
