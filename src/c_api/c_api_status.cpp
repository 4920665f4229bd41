// Error recording, status names and the small conversions shared by the C API entry points.
#include <string>

#include "c_api/c_api_internal.h"
#include "latentkv/version.h"

#if defined(LATENTKV_WITH_CUDA)
#include <cuda_runtime.h>
#endif

namespace latentkv::capi {
namespace {

// One message per thread, so that concurrent engine threads do not see each other's errors.
thread_local std::string t_last_error;

lkv_status to_lkv_code(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return LKV_OK;
    case StatusCode::kInvalidArgument:
      return LKV_ERR_INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return LKV_ERR_NOT_FOUND;
    case StatusCode::kIoError:
      return LKV_ERR_IO;
    case StatusCode::kCorruptData:
      return LKV_ERR_CORRUPT_DATA;
    case StatusCode::kUnsupported:
      return LKV_ERR_UNSUPPORTED;
    case StatusCode::kNumericalError:
      return LKV_ERR_NUMERICAL;
    case StatusCode::kCudaError:
      return LKV_ERR_CUDA;
    case StatusCode::kOutOfMemory:
      return LKV_ERR_OUT_OF_MEMORY;
    case StatusCode::kInternal:
      return LKV_ERR_INTERNAL;
  }
  return LKV_ERR_INTERNAL;
}

}  // namespace

void clear_error() { t_last_error.clear(); }

lkv_status fail(lkv_status code, const char* fn, const std::string& message) {
  // Assigning may throw bad_alloc; the status code must still reach the caller.
  try {
    t_last_error = str_cat(fn, ": ", message);
  } catch (...) {
    t_last_error.clear();
  }
  return code;
}

lkv_status from_status(const char* fn, const Status& status) {
  if (status.ok()) return LKV_OK;
  return fail(to_lkv_code(status.code()), fn, status.message());
}

lkv_status require_gpu(const char* fn) {
#if defined(LATENTKV_WITH_CUDA)
  // Device presence does not change during a process; detect it once (thread-safe static).
  static const int devices = [] {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
  }();
  if (devices > 0) return LKV_OK;
  return fail(LKV_ERR_NO_GPU, fn, "no CUDA device is available to this process");
#else
  return fail(LKV_ERR_NO_GPU, fn, "latentkv was built without CUDA (LATENTKV_WITH_CUDA=OFF)");
#endif
}

DType to_dtype(int32_t value, const char* what) {
  LKV_CHECK_ARG(value == LKV_DTYPE_F16 || value == LKV_DTYPE_BF16 || value == LKV_DTYPE_F32, what,
                " ", value, " is not an lkv_dtype");
  return static_cast<DType>(value);
}

DecodePlan to_plan(const lkv_decode_plan& c) {
  DecodePlan p;
  p.max_seq_len = c.max_seq_len;
  p.num_splits = c.num_splits;
  p.tokens_per_split = c.tokens_per_split;
  p.heads_per_cta = c.heads_per_cta;
  p.extra_splits = c.extra_splits;
  p.workspace_bytes = c.workspace_bytes;
  return p;
}

lkv_decode_plan from_plan(const DecodePlan& p, int batch_size, int num_qo_heads, int value_dim) {
  lkv_decode_plan c{};
  c.batch_size = batch_size;
  c.num_qo_heads = num_qo_heads;
  c.value_dim = value_dim;
  c.max_seq_len = p.max_seq_len;
  c.num_splits = p.num_splits;
  c.tokens_per_split = p.tokens_per_split;
  c.heads_per_cta = p.heads_per_cta;
  c.extra_splits = p.extra_splits;
  c.workspace_bytes = p.workspace_bytes;
  return c;
}

void check_plan(const lkv_decode_plan& plan, int batch_size, int num_qo_heads, int value_dim) {
  LKV_CHECK_ARG(batch_size >= 1 && batch_size <= plan.batch_size, "batch_size ", batch_size,
                " outside [1, ", plan.batch_size, "] of the plan (re-plan for a larger batch)");
  LKV_CHECK_ARG(num_qo_heads == plan.num_qo_heads && value_dim == plan.value_dim,
                "the plan was made for num_qo_heads ", plan.num_qo_heads, " and value width ",
                plan.value_dim, ", the call has ", num_qo_heads, " and ", value_dim);
}

PageTableView to_pages(const lkv_page_table& pages, int page_size) {
  PageTableView v;
  v.indptr = pages.indptr;
  v.indices = pages.indices;
  v.seq_lens = pages.seq_lens;
  v.page_size = page_size;
  return v;
}

}  // namespace latentkv::capi

extern "C" {

const char* lkv_status_name(lkv_status status) {
  switch (status) {
    case LKV_OK:
      return "ok";
    case LKV_ERR_INVALID_ARGUMENT:
      return "invalid_argument";
    case LKV_ERR_NOT_FOUND:
      return "not_found";
    case LKV_ERR_IO:
      return "io_error";
    case LKV_ERR_CORRUPT_DATA:
      return "corrupt_data";
    case LKV_ERR_UNSUPPORTED:
      return "unsupported";
    case LKV_ERR_NUMERICAL:
      return "numerical_error";
    case LKV_ERR_CUDA:
      return "cuda_error";
    case LKV_ERR_OUT_OF_MEMORY:
      return "out_of_memory";
    case LKV_ERR_INTERNAL:
      return "internal";
    case LKV_ERR_NO_GPU:
      return "no_gpu";
  }
  return "unknown";
}

const char* lkv_last_error_message(void) { return latentkv::capi::t_last_error.c_str(); }

const char* lkv_version(void) { return latentkv::version(); }

}  // extern "C"
