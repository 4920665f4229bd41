#include <cuda_runtime.h>

#include "c_api/device_ops.h"

namespace latentkv::capi {
namespace {

__global__ void probe_kernel() {}

}  // namespace

Status probe_kernel_image() {
  // Loading the function fails when no SASS or PTX in the fat binary fits the device; every
  // kernel of the library is built for the same architecture list, so one probe stands for all.
  cudaFuncAttributes attr;
  const cudaError_t err = cudaFuncGetAttributes(&attr, probe_kernel);
  if (err != cudaSuccess) {
    cudaGetLastError();  // reset the last-error state: the caller's next check must not see it
    return Status(StatusCode::kCudaError, cudaGetErrorString(err));
  }
  return Status::Ok();
}

}  // namespace latentkv::capi
