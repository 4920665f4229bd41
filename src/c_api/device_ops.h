// CUDA work of the C API itself (the other ops come from the C++ engine API): the kernel-image
// probe of lkv_device_query and the fp16 paged-cache append. Declared only in CUDA builds.
#pragma once

#include "c_api/c_api_internal.h"

#if defined(LATENTKV_WITH_CUDA)
namespace latentkv::capi {

/// Ok when this library holds a kernel image the current device can run; otherwise kCudaError
/// with the CUDA message (e.g. no kernel image for the device's architecture).
Status probe_kernel_image();

/// Scatters new K/V rows into the pages of `cache` (see lkv_paged_append_run) and writes
/// seq_lens_out. Arguments are validated by the caller.
Status paged_append_launch(const lkv_paged_cache& cache, const lkv_paged_append_args& args,
                           GpuStream stream);

}  // namespace latentkv::capi
#endif
