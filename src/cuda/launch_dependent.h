// Programmatic dependent launch (sm_90) of the library's small kernels and of the decode
// matrix-vector kernel: the launched grid's CTAs may start while the previous kernel on the
// stream finishes (from its grid_dependents_launch(), or as its CTAs exit), so the launch latency
// and the kernel's own preamble overlap that kernel's tail. In CUDA-graph capture the dependency
// becomes a programmatic edge. The launched kernel must call grid_dependency_wait()
// (kernels/mma_utils.cuh) before it reads or writes memory that earlier work on the stream uses.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <utility>

namespace latentkv::detail {

/// Whether the current device has programmatic dependent launch (compute capability >= 9.0),
/// looked up once per device.
inline bool programmatic_launch_supported() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> known[kMaxDevices] = {};  // 0 unknown, 1 yes, 2 no
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return false;
  int k = known[dev].load(std::memory_order_relaxed);
  if (k == 0) {
    int major = 0;
    k = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                major >= 9
            ? 1
            : 2;
    known[dev].store(k, std::memory_order_relaxed);
  }
  return k == 1;
}

/// kernel<<<grid, block, smem, stream>>>(args...) as a programmatic dependent launch (a plain
/// launch on devices before sm_90, where the kernel's griddepcontrol calls compile to nothing).
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
  config.numAttrs = programmatic_launch_supported() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace latentkv::detail
