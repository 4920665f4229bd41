// Launch of the tensor-core matrix-vector kernel (kernels/decode_gemv.cuh) for the library's
// decode-step products: the engine's projections (engine::decode_gemv_run) and the latent
// append's projection (latent_append_run).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "decode_gemv.cuh"

namespace latentkv::detail {

/// Whether decode_gemv_kernel takes X [m][ldx] · W [n][ldw]ᵀ: 1 <= m <= 8, k % 32 == 0, ldx and
/// ldw multiples of 8 and >= k, x and w 16-byte aligned.
inline bool decode_gemv_fits(const void* x, int64_t ldx, const void* w, int64_t ldw, int m, int k) {
  const auto aligned16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return m >= 1 && m <= kernels::kGemvMaxRows && k > 0 && k % 32 == 0 && ldx % 8 == 0 &&
         ldw % 8 == 0 && ldx >= k && ldw >= k && aligned16(x) && aligned16(w);
}

/// Products of up to this many rows (decode steps) run on decode_gemv_kernel rather than cuBLAS:
/// it streams the weights faster than cuBLAS's split-K kernels there (Llama-2 b1 engine steps
/// 0.2-0.4 ms faster on an H100). At 8 rows the A/B was mixed (0.1 ms faster at four points,
/// 0.5 ms slower at one), so larger products stay on cuBLAS until that is understood.
constexpr int kDecodeGemvPreferredRows = 4;

/// decode_gemv_fits and m <= kDecodeGemvPreferredRows: where callers take the kernel.
inline bool decode_gemv_preferred(const void* x, int64_t ldx, const void* w, int64_t ldw, int m,
                                  int k) {
  return m <= kDecodeGemvPreferredRows && decode_gemv_fits(x, ldx, w, ldw, m, k);
}

/// y = beta·y + x·wᵀ by decode_gemv_kernel on `stream` (decode_gemv_fits holds, n >= 1): x fp16
/// [m][ldx], w fp16 [n][ldw], y fp32 (y_f32) or fp16 [m][ldy].
inline cudaError_t launch_decode_gemv(const void* x, int64_t ldx, const void* w, int64_t ldw,
                                      void* y, int64_t ldy, bool y_f32, int m, int n, int k,
                                      float beta, cudaStream_t stream) {
  kernels::DecodeGemvParams p{};
  p.x = static_cast<const __half*>(x);
  p.ldx = ldx;
  p.w = static_cast<const __half*>(w);
  p.ldw = ldw;
  p.y = y;
  p.ldy = ldy;
  p.y_f32 = y_f32 ? 1 : 0;
  p.m = m;
  p.n = n;
  p.k = k;
  p.beta = beta;
  kernels::decode_gemv_kernel<<<(n + 15) / 16, kernels::kGemvWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace latentkv::detail
