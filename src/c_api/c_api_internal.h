// Internals of the C API (include/latentkv/c_api.h): the handle types, error recording and the
// exception guard that every entry point runs its body in.
#pragma once

#include <cstdint>
#include <string>

#include "latentkv/attention/decode_common.h"
#include "latentkv/attention/latent_cache.h"
#include "latentkv/c_api.h"
#include "latentkv/status.h"

/// One layer's latent cache: the description and the K / V views inside the caller's arena.
struct lkv_latent_cache {
  lkv_latent_cache_desc desc;
  latentkv::LatentWindowPolicy window;
  latentkv::LatentCacheView k, v;
};

/// One layer's fp16 paged cache inside the caller's arena.
struct lkv_paged_cache {
  lkv_paged_cache_desc desc;
  lkv_paged_view view;
};

namespace latentkv::capi {

/// Clears this thread's last error message (every entry point starts with it).
void clear_error();
/// Records "<fn>: <message>" as this thread's last error and returns `code`.
lkv_status fail(lkv_status code, const char* fn, const std::string& message);
/// LKV_OK for an ok Status; otherwise records its message and returns the matching code.
lkv_status from_status(const char* fn, const Status& status);

/// Runs `body(fn)` (returning lkv_status) with a cleared error message; any exception becomes a
/// status and a message, so that nothing propagates into C callers. `fn` is the entry point's
/// name for messages (the body is a lambda, whose own __func__ is "operator()").
template <typename F>
lkv_status guarded(const char* fn, F&& body) noexcept {
  clear_error();
  try {
    return body(fn);
  } catch (...) {
    return from_status(fn, status_from_exception());
  }
}

/// LKV_OK when this build has CUDA and the process sees a CUDA device (detected once); otherwise
/// LKV_ERR_NO_GPU with a message naming the reason.
lkv_status require_gpu(const char* fn);

/// A non-null, 256-byte aligned address that is never dereferenced: the is_supported / plan
/// checks of the C++ API test pointers only for null and alignment, and sizes and plans are
/// computed before any memory exists.
inline void* probe_address() { return reinterpret_cast<void*>(uintptr_t{256}); }

/// Throws Error(kInvalidArgument, "<what> is null") when p is null.
inline void require_non_null(const void* p, const char* what) {
  LKV_CHECK_ARG(p != nullptr, what, " is null");
}

/// DType from an lkv_dtype value; throws on an unknown value.
DType to_dtype(int32_t value, const char* what);
/// DecodePlan from the C plan (and back, recording the shapes the plan was made for).
DecodePlan to_plan(const lkv_decode_plan& plan);
lkv_decode_plan from_plan(const DecodePlan& plan, int batch_size, int num_qo_heads, int value_dim);
/// Throws Error(kInvalidArgument) unless a run of these shapes may use `plan`: its workspace is
/// sized for batch_size x num_qo_heads rows of value_dim.
void check_plan(const lkv_decode_plan& plan, int batch_size, int num_qo_heads, int value_dim);
/// PageTableView from the C page table and a page size.
PageTableView to_pages(const lkv_page_table& pages, int page_size);

}  // namespace latentkv::capi

/// Returns the lkv_status from the enclosing function (or lambda) when it is not LKV_OK.
#define LKV_RETURN_IF_LKV_ERROR(expr)          \
  do {                                         \
    const lkv_status lkv_code_ = (expr);       \
    if (lkv_code_ != LKV_OK) return lkv_code_; \
  } while (0)
