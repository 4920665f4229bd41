// Explicit instantiation of the latent decode kernels for head_dim 128, 3-bit latents.
#include "cuda/latent_decode_launch.cuh"

namespace latentkv::detail {
template cudaError_t launch_latent_decode<128, 3, false>(const kernels::LatentDecodeKernelParams&,
                                                         int, dim3, int, cudaStream_t);
}  // namespace latentkv::detail
