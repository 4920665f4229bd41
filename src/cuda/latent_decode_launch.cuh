// Launch of one (head_dim, bits, folded) family of the latent decode kernel; each family is
// explicitly instantiated in its own translation unit (latent_decode_{hd,fold_hd}*_b*.cu) to keep
// compiles small and parallel.
#pragma once

#include <cuda_runtime.h>

#include <mutex>

#include "latent_decode.cuh"

namespace latentkv::detail {

template <int HD, int BITS, bool FOLD, int HPC, int KS>
cudaError_t launch_latent_decode_ks(const kernels::LatentDecodeKernelParams& kp, dim3 grid,
                                    int smem, cudaStream_t stream) {
  if constexpr (HPC * KS > 32) {
    return cudaErrorInvalidValue;
  } else {
    constexpr int kMinCtas = kernels::latent_min_ctas(FOLD, HPC, KS);
    static std::once_flag once;
    static cudaError_t attr = cudaSuccess;
    // Raise the dynamic shared-memory limit once per instantiation (not a stream operation, so it
    // never happens inside a graph capture after the first call).
    std::call_once(once, [] {
      attr = cudaFuncSetAttribute(kernels::latent_decode_kernel<HD, BITS, HPC, FOLD, KS, kMinCtas>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);
    });
    if (attr != cudaSuccess) return attr;
    kernels::latent_decode_kernel<HD, BITS, HPC, FOLD, KS, kMinCtas>
        <<<grid, HD / 16 * 32, smem, stream>>>(kp);
    return cudaGetLastError();
  }
}

template <int HD, int BITS, bool FOLD, int HPC>
cudaError_t launch_latent_decode_hpc(const kernels::LatentDecodeKernelParams& kp, int ks, dim3 grid,
                                     int smem, cudaStream_t stream) {
  switch (ks) {
    case 2:
      return launch_latent_decode_ks<HD, BITS, FOLD, HPC, 2>(kp, grid, smem, stream);
    case 4:
      return launch_latent_decode_ks<HD, BITS, FOLD, HPC, 4>(kp, grid, smem, stream);
    case 8:
      return launch_latent_decode_ks<HD, BITS, FOLD, HPC, 8>(kp, grid, smem, stream);
    case 16:
      return launch_latent_decode_ks<HD, BITS, FOLD, HPC, 16>(kp, grid, smem, stream);
    case 32:
      return launch_latent_decode_ks<HD, BITS, FOLD, HPC, 32>(kp, grid, smem, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

/// Dispatches heads-per-CTA 1, 2, 3 (key-rebuild form) or 4 and the k-step bucket of kp.ksteps.
template <int HD, int BITS, bool FOLD>
cudaError_t launch_latent_decode(const kernels::LatentDecodeKernelParams& kp, int hpc, dim3 grid,
                                 int smem, cudaStream_t stream) {
  const int ks = kernels::latent_key_step_bucket(kp.ksteps);
  switch (hpc) {
    case 1:
      return launch_latent_decode_hpc<HD, BITS, FOLD, 1>(kp, ks, grid, smem, stream);
    case 2:
      return launch_latent_decode_hpc<HD, BITS, FOLD, 2>(kp, ks, grid, smem, stream);
    case 3:  // groups of 3 / 6, key-rebuild form only (latent_heads_per_cta)
      if constexpr (FOLD) {
        return cudaErrorInvalidValue;
      } else {
        return launch_latent_decode_hpc<HD, BITS, FOLD, 3>(kp, ks, grid, smem, stream);
      }
    case 4:
      return launch_latent_decode_hpc<HD, BITS, FOLD, 4>(kp, ks, grid, smem, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

#define LKV_DECLARE_LATENT_DECODE(HD, BITS)                                    \
  extern template cudaError_t launch_latent_decode<HD, BITS, false>(           \
      const kernels::LatentDecodeKernelParams&, int, dim3, int, cudaStream_t); \
  extern template cudaError_t launch_latent_decode<HD, BITS, true>(            \
      const kernels::LatentDecodeKernelParams&, int, dim3, int, cudaStream_t);
LKV_DECLARE_LATENT_DECODE(64, 16)
LKV_DECLARE_LATENT_DECODE(64, 4)
LKV_DECLARE_LATENT_DECODE(64, 3)
LKV_DECLARE_LATENT_DECODE(64, 2)
LKV_DECLARE_LATENT_DECODE(128, 16)
LKV_DECLARE_LATENT_DECODE(128, 4)
LKV_DECLARE_LATENT_DECODE(128, 3)
LKV_DECLARE_LATENT_DECODE(128, 2)
#undef LKV_DECLARE_LATENT_DECODE

}  // namespace latentkv::detail
