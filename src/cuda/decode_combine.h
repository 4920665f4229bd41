// Launch helper for the split-KV combine kernel (kernels/decode_combine.cuh).
#pragma once

#include <cuda_runtime.h>

#include "cuda/launch_dependent.h"
#include "decode_combine.cuh"

namespace latentkv::detail {

/// One CTA per (sequence, head); returns the launch error.
inline cudaError_t launch_decode_combine(const kernels::DecodeCombineParams& p, int64_t rows,
                                         cudaStream_t stream) {
  if (p.num_slots > kernels::kMaxCombineSlots) return cudaErrorInvalidValue;
  return launch_dependent(kernels::decode_combine_kernel, dim3(static_cast<unsigned>(rows)),
                          dim3(kernels::kCombineThreads), 0, stream, p);
}

}  // namespace latentkv::detail
