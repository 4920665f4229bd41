// Explicit instantiation of the query-folded (MHA) latent decode kernels for head_dim 64, fp16
// latents.
#include "cuda/latent_decode_launch.cuh"

namespace latentkv::detail {
template cudaError_t launch_latent_decode<64, 16, true>(const kernels::LatentDecodeKernelParams&,
                                                        int, dim3, int, cudaStream_t);
}  // namespace latentkv::detail
