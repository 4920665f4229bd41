// Explicit instantiation of the query-folded (MHA) latent decode kernels for head_dim 128, 2-bit
// latents.
#include "cuda/latent_decode_launch.cuh"

namespace latentkv::detail {
template cudaError_t launch_latent_decode<128, 2, true>(const kernels::LatentDecodeKernelParams&,
                                                        int, dim3, int, cudaStream_t);
}  // namespace latentkv::detail
