#if defined(LATENTKV_WITH_CUDA)
#include "engine/device_memory.h"

#include "c_api/device_ops.h"

namespace latentkv::engine {

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) LKV_THROW(StatusCode::kCudaError, what, ": ", cudaGetErrorString(err));
}

void check(const Status& status) {
  if (!status.ok()) throw Error(status.code(), status.message());
}

void require_gpu() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    LKV_THROW(StatusCode::kUnsupported, "no CUDA GPU is available");
  }
  const Status probe = capi::probe_kernel_image();
  if (!probe.ok()) {
    int device = 0, major = 0, minor = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    LKV_THROW(StatusCode::kUnsupported, "this GPU (sm_", major, minor,
              ") cannot run latentkv's kernels: ", probe.message(),
              "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=", major, minor);
  }
}

std::pair<int64_t, int64_t> device_memory_info() {
  size_t free_bytes = 0, total_bytes = 0;
  check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  return {static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes)};
}

void throw_out_of_memory(const char* what, int64_t bytes) {
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  const double mib = 1024.0 * 1024.0;
  LKV_THROW(StatusCode::kOutOfMemory, what, ": cannot allocate ", bytes / mib, " MiB on the GPU (",
            free_bytes / mib, " MiB free of ", total_bytes / mib, ")");
}

}  // namespace latentkv::engine
#endif
