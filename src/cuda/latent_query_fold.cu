#include "cuda/latent_query_fold.h"
#include "cuda/launch_dependent.h"
#include "latent_query_fold.cuh"

namespace latentkv::detail {

cudaError_t launch_query_fold(const kernels::QueryFoldParams& p, int num_kv_heads, int batch_size,
                              cudaStream_t stream) {
  return launch_dependent(kernels::latent_query_fold_kernel,
                          dim3(p.head_dim / 16, num_kv_heads, batch_size),
                          dim3(kernels::kQueryFoldThreads), 0, stream, p);
}

}  // namespace latentkv::detail
