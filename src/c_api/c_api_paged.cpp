// C API: the fp16 paged KV cache of one layer (the uncompressed baseline): sizing, creation,
// append and decode.
#include <limits>
#include <memory>

#include "c_api/c_api_internal.h"
#include "c_api/device_ops.h"
#include "c_api/page_check.h"
#include "latentkv/attention/paged_append.h"
#include "latentkv/attention/paged_decode.h"

namespace latentkv::capi {
namespace {

/// Validates a description; returns the view strides (elements) with null pointers and the bytes
/// of one of the K / V pools.
lkv_paged_view paged_layout(const lkv_paged_cache_desc& d, int64_t* pool_bytes) {
  LKV_CHECK_ARG(d.num_kv_heads >= 1 && d.num_kv_heads <= 4096, "num_kv_heads ", d.num_kv_heads,
                " outside [1, 4096]");
  LKV_CHECK_ARG(d.head_dim >= 8 && d.head_dim <= 1024 && d.head_dim % 8 == 0, "head_dim ",
                d.head_dim, " must be a multiple of 8 in [8, 1024] (16-byte rows)");
  LKV_CHECK_ARG(d.page_size >= 1 && d.page_size <= 65536, "page_size ", d.page_size,
                " outside [1, 65536]");
  LKV_CHECK_ARG(d.num_pages >= 0 && d.num_pages <= std::numeric_limits<int32_t>::max(),
                "num_pages ", d.num_pages, " outside [0, 2^31-1] (page ids are int32)");
  lkv_paged_view v{};
  v.token_stride = d.head_dim;
  v.head_stride = int64_t{d.page_size} * d.head_dim;
  v.page_stride = v.head_stride * d.num_kv_heads;
  LKV_CHECK_ARG(d.num_pages <= (int64_t{1} << 60) / (2 * v.page_stride), "num_pages ", d.num_pages,
                " of ", 2 * v.page_stride, " bytes exceeds 2^60 bytes per pool");
  *pool_bytes = 2 * v.page_stride * d.num_pages;
  return v;
}

int64_t align256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace
}  // namespace latentkv::capi

using latentkv::StatusCode;
using namespace latentkv::capi;  // NOLINT(build/namespaces): this file only implements capi

extern "C" {

lkv_status lkv_paged_cache_size(const lkv_paged_cache_desc* desc, lkv_cache_sizes* sizes) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(sizes, "sizes");
    int64_t pool = 0;
    const lkv_paged_view v = paged_layout(*desc, &pool);
    sizes->arena_bytes = 2 * align256(pool);
    sizes->bytes_per_page = 2 * 2 * v.page_stride;
    sizes->fixed_bytes = sizes->arena_bytes - desc->num_pages * sizes->bytes_per_page;
    sizes->bytes_per_token = int64_t{4} * desc->num_kv_heads * desc->head_dim;
    return LKV_OK;
  });
}

lkv_status lkv_paged_cache_create(const lkv_paged_cache_desc* desc, void* arena,
                                  int64_t arena_bytes, lkv_paged_cache** cache) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(cache, "cache");
    *cache = nullptr;
    int64_t pool = 0;
    lkv_paged_view v = paged_layout(*desc, &pool);
    require_non_null(arena, "arena");
    LKV_CHECK_ARG(reinterpret_cast<uintptr_t>(arena) % 16 == 0, "arena must be 16-byte aligned");
    if (arena_bytes < 2 * align256(pool))
      LKV_THROW(StatusCode::kOutOfMemory, "arena of ", arena_bytes, " bytes, the cache needs ",
                2 * align256(pool), " (", desc->num_pages, " pages)");
    v.k = arena;
    v.v = static_cast<uint8_t*>(arena) + align256(pool);
    auto c = std::make_unique<lkv_paged_cache>();
    c->desc = *desc;
    c->view = v;
    *cache = c.release();
    return LKV_OK;
  });
}

void lkv_paged_cache_destroy(lkv_paged_cache* cache) { delete cache; }

lkv_status lkv_paged_cache_view(const lkv_paged_cache* cache, lkv_paged_view* view) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(view, "view");
    *view = cache->view;
    return LKV_OK;
  });
}

lkv_status lkv_paged_cache_check_pages(const lkv_paged_cache* cache, int32_t batch_size,
                                       const int32_t* indptr, const int32_t* indices,
                                       const int32_t* seq_lens, const int32_t* new_tokens) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    check_page_table(batch_size, indptr, indices, seq_lens, new_tokens, cache->desc.num_pages,
                     cache->desc.page_size, [](int64_t tokens) { return tokens; });
    return LKV_OK;
  });
}

lkv_status lkv_paged_append_run(const lkv_paged_cache* cache, const lkv_paged_append_args* args,
                                void* stream) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(args, "args");
    const auto& a = *args;
    const int64_t row = int64_t{cache->desc.num_kv_heads} * cache->desc.head_dim;
    LKV_CHECK_ARG(a.batch_size >= 1 && a.num_tokens >= 0, "batch_size ", a.batch_size,
                  " < 1 or num_tokens ", a.num_tokens, " < 0");
    LKV_CHECK_ARG(
        a.append_indptr && a.pages.indptr && a.pages.indices && a.pages.seq_lens && a.seq_lens_out,
        "append_indptr, a page-table array or seq_lens_out is null");
    if (a.num_tokens > 0) {
      LKV_CHECK_ARG(a.k && a.v, "k or v is null");
      LKV_CHECK_ARG(a.k_stride >= row && a.v_stride >= row, "k_stride / v_stride smaller than ",
                    row, " (num_kv_heads*head_dim)");
      LKV_CHECK_ARG(a.k_stride % 8 == 0 && a.v_stride % 8 == 0 &&
                        reinterpret_cast<uintptr_t>(a.k) % 16 == 0 &&
                        reinterpret_cast<uintptr_t>(a.v) % 16 == 0,
                    "k / v must be 16-byte aligned with strides that are multiples of 8");
    }
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    latentkv::PagedAppendParams p;
    p.batch_size = a.batch_size;
    p.num_tokens = a.num_tokens;
    p.num_kv_heads = cache->desc.num_kv_heads;
    p.head_dim = cache->desc.head_dim;
    p.append_indptr = a.append_indptr;
    p.k = a.k;
    p.v = a.v;
    p.k_stride = a.k_stride;
    p.v_stride = a.v_stride;
    p.k_cache = cache->view.k;
    p.v_cache = cache->view.v;
    p.page_stride = cache->view.page_stride;
    p.head_stride = cache->view.head_stride;
    p.token_stride = cache->view.token_stride;
    p.num_pages = cache->desc.num_pages;
    p.pages = {a.pages.indptr, a.pages.indices, a.pages.seq_lens, cache->desc.page_size};
    p.seq_lens_out = a.seq_lens_out;
    return from_status(fn, latentkv::paged_append_run(p, static_cast<latentkv::GpuStream>(stream)));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

lkv_status lkv_paged_decode_plan(const lkv_paged_cache_desc* desc, int32_t num_qo_heads,
                                 int32_t batch_size, int32_t max_seq_len, int32_t num_sms,
                                 lkv_decode_plan* plan) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(plan, "plan");
    int64_t pool = 0;
    const lkv_paged_view v = paged_layout(*desc, &pool);
    LKV_CHECK_ARG(max_seq_len >= 1, "max_seq_len ", max_seq_len, " < 1");
    const int64_t need = (int64_t{max_seq_len} + desc->page_size - 1) / desc->page_size;
    LKV_CHECK_ARG(need <= desc->num_pages, "a sequence of ", max_seq_len, " tokens needs ", need,
                  " pages of ", desc->page_size, " tokens; the cache has ", desc->num_pages);
    // Plans are made before memory exists: pointers are stand-ins (see probe_address()).
    latentkv::PagedDecodeParams p;
    p.batch_size = batch_size;
    p.num_qo_heads = num_qo_heads;
    p.num_kv_heads = desc->num_kv_heads;
    p.head_dim = desc->head_dim;
    p.q = p.k_cache = p.v_cache = p.out = probe_address();
    p.q_stride_head = desc->head_dim;
    p.q_stride_batch = int64_t{num_qo_heads} * desc->head_dim;
    p.page_stride = v.page_stride;
    p.head_stride = v.head_stride;
    p.token_stride = v.token_stride;
    p.pages.indptr = p.pages.indices = p.pages.seq_lens =
        static_cast<const int32_t*>(probe_address());
    p.pages.page_size = desc->page_size;
    p.sm_scale = 1.0f;
    latentkv::DecodePlan out;
    LKV_RETURN_IF_LKV_ERROR(
        from_status(fn, latentkv::paged_decode_plan(p, max_seq_len, num_sms, &out)));
    *plan = from_plan(out, batch_size, num_qo_heads, desc->head_dim);
    return LKV_OK;
  });
}

lkv_status lkv_paged_decode_run(const lkv_paged_cache* cache, const lkv_paged_decode_args* args,
                                const lkv_decode_plan* plan, void* workspace,
                                int64_t workspace_bytes, void* stream) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(args, "args");
    require_non_null(plan, "plan");
    const auto& a = *args;
    check_plan(*plan, a.batch_size, a.num_qo_heads, cache->desc.head_dim);
    latentkv::PagedDecodeParams p;
    p.batch_size = a.batch_size;
    p.num_qo_heads = a.num_qo_heads;
    p.num_kv_heads = cache->desc.num_kv_heads;
    p.head_dim = cache->desc.head_dim;
    p.q = a.q;
    p.q_stride_batch = a.q_stride_batch;
    p.q_stride_head = a.q_stride_head;
    p.k_cache = cache->view.k;
    p.v_cache = cache->view.v;
    p.page_stride = cache->view.page_stride;
    p.head_stride = cache->view.head_stride;
    p.token_stride = cache->view.token_stride;
    p.pages = to_pages(a.pages, cache->desc.page_size);
    p.sm_scale = a.sm_scale;
    p.out = a.out;
    p.out_stride_batch = a.out_stride_batch;
    p.out_stride_head = a.out_stride_head;
    p.lse = a.lse;
    LKV_RETURN_IF_LKV_ERROR(from_status(fn, latentkv::paged_decode_is_supported(p)));
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    return from_status(fn, latentkv::paged_decode_run(p, to_plan(*plan), workspace, workspace_bytes,
                                                      static_cast<latentkv::GpuStream>(stream)));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

}  // extern "C"
