// Launch of the tensor-core matrix-vector kernel (kernels/decode_gemv.cuh) for the library's
// decode-step products: the engine's projections (engine::decode_gemv_run) and the latent
// append's projection (latent_append_run).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/launch_dependent.h"
#include "decode_gemv.cuh"

namespace latentkv::detail {

/// Whether decode_gemv_kernel takes X [m][ldx] · W [n][ldw]ᵀ: 1 <= m <= 8, k % 32 == 0, ldx and
/// ldw multiples of 8 and >= k, x and w 16-byte aligned. Callers take the kernel wherever it
/// does: on every Llama-2-7B projection it streamed the weights 11-23 % faster than cuBLAS at 1,
/// 4 and 8 rows (H100, bench/decode_gemv_bench.cu, run 26).
inline bool decode_gemv_fits(const void* x, int64_t ldx, const void* w, int64_t ldw, int m, int k) {
  const auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return m >= 1 && m <= kernels::kGemvMaxRows && k > 0 && k % 32 == 0 && ldx % 8 == 0 &&
         ldw % 8 == 0 && ldx >= k && ldw >= k && aligned16(x) && aligned16(w);
}

/// The products of `p` (decode_gemv_fits holds for x and each product's w) by one launch of
/// decode_gemv_kernel on `stream`. The weights are read before the previous kernel on the stream
/// has finished: they must not be written by work still in flight there.
inline cudaError_t launch_decode_gemv(const kernels::DecodeGemvParams& p, cudaStream_t stream) {
  const int blocks = (p.out[0].n + 15) / 16 + (p.out[1].n + 15) / 16;
  if (blocks == 0) return cudaSuccess;
  // A programmatic dependent launch: the kernel requests its first weights while the previous
  // kernel on the stream finishes, and waits for that kernel's results before reading x.
  return launch_dependent(kernels::decode_gemv_kernel, dim3(blocks), dim3(kernels::kGemvWarps * 32),
                          0, stream, p);
}

/// y = beta·y + x·wᵀ by decode_gemv_kernel on `stream` (decode_gemv_fits holds, n >= 1): x fp16
/// [m][ldx], w fp16 [n][ldw], y fp32 (y_f32) or fp16 [m][ldy].
inline cudaError_t launch_decode_gemv(const void* x, int64_t ldx, const void* w, int64_t ldw,
                                      void* y, int64_t ldy, bool y_f32, int m, int n, int k,
                                      float beta, cudaStream_t stream) {
  kernels::DecodeGemvParams p;
  p.x = static_cast<const __half*>(x);
  p.ldx = ldx;
  p.m = m;
  p.k = k;
  p.out[0].w = static_cast<const __half*>(w);
  p.out[0].ldw = ldw;
  p.out[0].y = y;
  p.out[0].ldy = ldy;
  p.out[0].y_f32 = y_f32 ? 1 : 0;
  p.out[0].n = n;
  p.out[0].beta = beta;
  return launch_decode_gemv(p, stream);
}

}  // namespace latentkv::detail
