// Launch of the query-folding step of the MHA latent decode (kernels/latent_query_fold.cuh).
#pragma once

#include <cuda_runtime.h>

#include "latent_query_fold_params.h"

namespace latentkv::detail {

/// Folds every (sequence, query head) of p: grid (head_dim / 16, num_kv_heads, batch_size).
cudaError_t launch_query_fold(const kernels::QueryFoldParams& p, int num_kv_heads, int batch_size,
                              cudaStream_t stream);

}  // namespace latentkv::detail
