// Programmatic dependent launch (sm_90) of the library's small kernels and of the decode
// matrix-vector kernel: the launched grid's CTAs may start while the previous kernel on the
// stream finishes (from its grid_dependents_launch(), or as its CTAs exit), so the launch latency
// and the kernel's own preamble overlap that kernel's tail. In CUDA-graph capture the dependency
// becomes a programmatic edge. The launched kernel must call grid_dependency_wait()
// (kernels/mma_utils.cuh) before it reads or writes memory that earlier work on the stream uses.
#pragma once

#include <cuda_runtime.h>

#include <utility>

namespace latentkv::detail {

/// kernel<<<grid, block, smem, stream>>>(args...) as a programmatic dependent launch.
template <class... Params, class... Args>
cudaError_t launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                             cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attr;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace latentkv::detail
