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

/// Launches decode_gemv_kernel for p (decode_gemv_fits holds, p.n >= 1) on `stream`.
inline cudaError_t launch_decode_gemv(const kernels::DecodeGemvParams& p, cudaStream_t stream) {
  kernels::decode_gemv_kernel<<<(p.n + 15) / 16, kernels::kGemvWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace latentkv::detail
