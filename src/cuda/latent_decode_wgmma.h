// Host side of the warpgroup (wgmma) form of the folded 4-bit latent decode kernel
// (kernels/latent_decode_wgmma.cuh).
#pragma once

#include <cuda_runtime.h>

#include "latent_decode.cuh"
#include "latentkv/attention/latent_decode.h"

namespace latentkv::detail {

/// Whether this build carries the sm_90a kernel and the current device is compute capability 9.0.
bool latent_wgmma_available();

/// Whether latent_decode_run takes the warpgroup kernel for `p` (folded MHA, latent_wg_takes, and
/// latent_wgmma_available).
bool latent_uses_wgmma(const LatentDecodeParams& p);

/// Launches latent_decode_wgmma_kernel: the page CTAs of `kp` and, when grid.win_x > 0, the
/// residual window's fp16 CTAs of `kpw` (mode 1, latent_wg_window_heads per CTA) in one grid,
/// with `smem` bytes of dynamic shared memory (the larger of the two layouts);
/// kp.ksteps = rank_k / 32 <= 8.
cudaError_t launch_latent_decode_wgmma(const kernels::LatentDecodeKernelParams& kp,
                                       const kernels::LatentDecodeKernelParams& kpw,
                                       const kernels::LatentWgGrid& grid, int smem,
                                       cudaStream_t stream);

}  // namespace latentkv::detail
