// CUDA work of the C API itself (the other ops come from the C++ engine API): the kernel-image
// probe of lkv_device_query. Declared only in CUDA builds.
#pragma once

#include "c_api/c_api_internal.h"

#if defined(LATENTKV_WITH_CUDA)
namespace latentkv::capi {

/// Ok when this library holds a kernel image the current device can run; otherwise kCudaError
/// with the CUDA message (e.g. no kernel image for the device's architecture).
Status probe_kernel_image();

}  // namespace latentkv::capi
#endif
