#include "cuda/latent_query_fold.h"
#include "latent_query_fold.cuh"

namespace latentkv::detail {

cudaError_t launch_query_fold(const kernels::QueryFoldParams& p, int num_kv_heads, int batch_size,
                              cudaStream_t stream) {
  kernels::latent_query_fold_kernel<<<dim3(p.head_dim / 16, num_kv_heads, batch_size),
                                      kernels::kQueryFoldThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace latentkv::detail
