// C API: the current CUDA device and whether this build can run kernels on it.
#include "c_api/c_api_internal.h"
#include "c_api/device_ops.h"

#if defined(LATENTKV_WITH_CUDA)
#include <cuda_runtime.h>

#include "cuda/cuda_status.h"
#endif

// Set by src/CMakeLists.txt for this file only (CMAKE_CUDA_ARCHITECTURES, comma-separated).
#if defined(LATENTKV_WITH_CUDA) && !defined(LATENTKV_CUDA_ARCHITECTURES)
#error "LATENTKV_CUDA_ARCHITECTURES must be defined for c_api_device.cpp"
#endif

namespace {

#if defined(LATENTKV_WITH_CUDA)
latentkv::Status query(lkv_device_info* info) {
  using latentkv::Status;
  using latentkv::StatusCode;
  int device = 0, major = 0, minor = 0, sms = 0;
  LKV_CUDA_RETURN(cudaGetDevice(&device));
  LKV_CUDA_RETURN(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  LKV_CUDA_RETURN(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  LKV_CUDA_RETURN(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  size_t free_bytes = 0, total_bytes = 0;
  LKV_CUDA_RETURN(cudaMemGetInfo(&free_bytes, &total_bytes));
  info->compute_capability = major * 10 + minor;
  info->num_sms = sms;
  info->total_bytes = static_cast<int64_t>(total_bytes);
  info->free_bytes = static_cast<int64_t>(free_bytes);
  const Status probe = latentkv::capi::probe_kernel_image();
  if (!probe.ok())
    return Status(StatusCode::kUnsupported,
                  latentkv::str_cat("device ", device, " is sm_", major, minor,
                                    "; this latentkv build has kernels for CUDA architectures ",
                                    LATENTKV_CUDA_ARCHITECTURES, " (", probe.message(), ")"));
  return Status::Ok();
}
#endif

}  // namespace

extern "C" {

lkv_status lkv_device_query(lkv_device_info* info) {
  using namespace latentkv::capi;  // NOLINT(build/namespaces)
  return guarded(__func__, [&](const char* fn) {
    require_non_null(info, "info");
    *info = lkv_device_info{};
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    return from_status(fn, query(info));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

}  // extern "C"
