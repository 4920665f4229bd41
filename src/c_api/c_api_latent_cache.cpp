// C API: sizing, creation and page-table checks of the latent cache of one layer.
#include <memory>

#include "c_api/c_api_internal.h"
#include "c_api/latent_arena.h"
#include "c_api/page_check.h"

using latentkv::StatusCode;
using latentkv::str_cat;
using latentkv::capi::guarded;
using latentkv::capi::require_non_null;

namespace {

void fill_sizes(const latentkv::capi::LatentArena& a, int64_t num_pages, lkv_cache_sizes* s) {
  s->arena_bytes = a.total_bytes;
  s->bytes_per_page = a.bytes_per_page;
  s->fixed_bytes = a.total_bytes - num_pages * a.bytes_per_page;
  s->bytes_per_token = a.k.bytes_per_token + a.v.bytes_per_token;
}

lkv_latent_view to_c_view(const latentkv::LatentCacheView& v) {
  lkv_latent_view c{};
  c.codes = v.codes;
  c.page_stride = v.page_stride;
  c.group_stride = v.group_stride;
  c.token_stride = v.token_stride;
  c.scale_zero = v.scale_zero;
  c.sz_page_stride = v.sz_page_stride;
  c.sz_group_stride = v.sz_group_stride;
  c.sz_token_stride = v.sz_token_stride;
  c.ring = v.ring;
  c.ring_seq_stride = v.ring_seq_stride;
  c.ring_group_stride = v.ring_group_stride;
  c.ring_token_stride = v.ring_token_stride;
  return c;
}

}  // namespace

extern "C" {

lkv_status lkv_latent_cache_size(const lkv_latent_cache_desc* desc, lkv_cache_sizes* sizes) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(sizes, "sizes");
    fill_sizes(latentkv::capi::latent_arena(*desc, desc->num_pages), desc->num_pages, sizes);
    return LKV_OK;
  });
}

lkv_status lkv_latent_cache_max_pages(const lkv_latent_cache_desc* desc, int64_t budget_bytes,
                                      int64_t* num_pages) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(num_pages, "num_pages");
    const auto empty = latentkv::capi::latent_arena(*desc, 0);
    const int64_t max_ids = 2147483647;
    // arena(n) >= arena(0) + n * bytes_per_page, so this estimate is an upper bound; walk down
    // over the (at most a few hundred bytes of) alignment padding.
    int64_t n = budget_bytes > empty.total_bytes
                    ? (budget_bytes - empty.total_bytes) / empty.bytes_per_page
                    : 0;
    if (n > max_ids) n = max_ids;
    while (n > 0 && latentkv::capi::latent_arena(*desc, n).total_bytes > budget_bytes) --n;
    if (n == 0)
      LKV_THROW(StatusCode::kOutOfMemory, "a budget of ", budget_bytes,
                " bytes holds no page (one page needs ", empty.bytes_per_page, " bytes plus ",
                empty.total_bytes, " fixed)");
    *num_pages = n;
    return LKV_OK;
  });
}

lkv_status lkv_latent_cache_create(const lkv_latent_cache_desc* desc, void* arena,
                                   int64_t arena_bytes, lkv_latent_cache** cache) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(cache, "cache");
    *cache = nullptr;
    const auto a = latentkv::capi::latent_arena(*desc, desc->num_pages);
    require_non_null(arena, "arena");
    LKV_CHECK_ARG(reinterpret_cast<uintptr_t>(arena) % 16 == 0, "arena must be 16-byte aligned");
    if (arena_bytes < a.total_bytes)
      LKV_THROW(StatusCode::kOutOfMemory, "arena of ", arena_bytes, " bytes, the cache needs ",
                a.total_bytes, " (", desc->num_pages, " pages)");
    auto c = std::make_unique<lkv_latent_cache>();
    c->desc = *desc;
    c->window = a.window;
    uint8_t* base = static_cast<uint8_t*>(arena);
    c->k = a.k.view;
    c->v = a.v.view;
    c->k.codes = base + a.k_codes;
    c->v.codes = base + a.v_codes;
    c->k.scale_zero = a.k.scale_zero_bytes > 0 ? base + a.k_sz : nullptr;
    c->v.scale_zero = a.v.scale_zero_bytes > 0 ? base + a.v_sz : nullptr;
    c->k.ring = a.k.ring_bytes > 0 ? base + a.k_ring : nullptr;
    c->v.ring = a.v.ring_bytes > 0 ? base + a.v_ring : nullptr;
    *cache = c.release();
    return LKV_OK;
  });
}

void lkv_latent_cache_destroy(lkv_latent_cache* cache) { delete cache; }

lkv_status lkv_latent_cache_views(const lkv_latent_cache* cache, lkv_latent_view* k,
                                  lkv_latent_view* v) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    if (k) *k = to_c_view(cache->k);
    if (v) *v = to_c_view(cache->v);
    return LKV_OK;
  });
}

lkv_status lkv_latent_cache_check_pages(const lkv_latent_cache* cache, int32_t batch_size,
                                        const int32_t* indptr, const int32_t* indices,
                                        const int32_t* seq_lens, const int32_t* new_tokens) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    LKV_CHECK_ARG(batch_size <= cache->desc.max_batch, "batch_size ", batch_size,
                  " exceeds the cache's max_batch ", cache->desc.max_batch);
    const latentkv::LatentWindowPolicy window = cache->window;
    // Only tokens that have left the fp16 window occupy pages.
    latentkv::capi::check_page_table(
        batch_size, indptr, indices, seq_lens, new_tokens, cache->desc.num_pages,
        cache->desc.page_size, [window](int64_t tokens) { return window.quantized_len(tokens); });
    return LKV_OK;
  });
}

}  // extern "C"
