#include "c_api/latent_arena.h"

#include <limits>

#include "c_api/c_api_internal.h"
#include "latentkv/attention/latent_append.h"

namespace latentkv::capi {
namespace {

constexpr int64_t kMaxArenaBytes = int64_t{1} << 62;

int64_t align256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

/// Rank / bits / quant_group rules of the append kernels, checked by the C++ API itself on views
/// that point nowhere (is_supported reads no memory).
void check_with_append_rules(const lkv_latent_cache_desc& d, const LatentArena& a) {
  LatentAppendParams p;
  p.batch_size = d.max_batch;
  p.num_groups = d.num_groups;
  p.d_model = 1;
  p.window = a.window;
  auto probe_view = [](LatentCacheView v) {
    v.codes = v.scale_zero = v.ring = probe_address();
    return v;
  };
  p.k = probe_view(a.k.view);
  p.v = probe_view(a.v.view);
  const auto* probe_ints = static_cast<const int32_t*>(probe_address());
  p.append_indptr = p.pages.indptr = p.pages.indices = p.pages.seq_lens = probe_ints;
  p.seq_lens_out = static_cast<int32_t*>(probe_address());
  p.pages.page_size = d.page_size;
  const Status st = latent_append_is_supported(p);
  if (!st.ok()) throw Error(st.code(), st.message());
}

}  // namespace

LatentWindowPolicy latent_window(const lkv_latent_cache_desc& d) {
  LatentWindowPolicy w;
  w.residual = d.residual;
  w.chunk = d.chunk == 0 ? 1 : d.chunk;
  return w;
}

LatentArena latent_arena(const lkv_latent_cache_desc& d, int64_t num_pages) {
  LKV_CHECK_ARG(d.num_groups >= 1 && d.num_groups <= 4096, "num_groups ", d.num_groups,
                " outside [1, 4096]");
  for (int rank : {d.rank_k, d.rank_v})
    LKV_CHECK_ARG(rank >= 16 && rank <= 1024 && rank % 16 == 0, "rank ", rank,
                  " must be a multiple of 16 in [16, 1024]");
  LKV_CHECK_ARG(d.bits == 16 || d.bits == 2 || d.bits == 3 || d.bits == 4 || d.bits == 8, "bits ",
                d.bits, " not supported (16, 4, 3, 2; 8 for append only)");
  LKV_CHECK_ARG(d.page_size >= 1 && d.page_size <= 65536, "page_size ", d.page_size,
                " outside [1, 65536]");
  LKV_CHECK_ARG(num_pages >= 0 && num_pages <= std::numeric_limits<int32_t>::max(), "num_pages ",
                num_pages, " outside [0, 2^31-1] (page ids are int32)");
  LKV_CHECK_ARG(d.max_batch >= 1 && d.max_batch <= 256, "max_batch ", d.max_batch,
                " outside [1, 256]");
  LKV_CHECK_ARG(d.residual >= 0 && d.chunk >= 0, "window residual ", d.residual, " and chunk ",
                d.chunk, " must be >= 0");
  LatentArena a;
  a.window = latent_window(d);
  QuantConfig q;
  q.bits = d.bits;
  q.quant_group = d.quant_group;
  // Strides first (one page): they bound the page-proportional bytes before any product with
  // num_pages is formed.
  a.k = make_latent_cache_layout(d.num_groups, d.rank_k, q, d.page_size, 1, a.window, d.max_batch);
  a.v = make_latent_cache_layout(d.num_groups, d.rank_v, q, d.page_size, 1, a.window, d.max_batch);
  check_with_append_rules(d, a);
  a.bytes_per_page = a.k.view.page_stride + a.v.view.page_stride + a.k.view.sz_page_stride +
                     a.v.view.sz_page_stride;
  LKV_CHECK_ARG(
      num_pages <= (kMaxArenaBytes - 8 * 256 - a.k.ring_bytes - a.v.ring_bytes) / a.bytes_per_page,
      "num_pages ", num_pages, " of ", a.bytes_per_page, " bytes exceeds 2^62 bytes");
  a.k = make_latent_cache_layout(d.num_groups, d.rank_k, q, d.page_size, num_pages, a.window,
                                 d.max_batch);
  a.v = make_latent_cache_layout(d.num_groups, d.rank_v, q, d.page_size, num_pages, a.window,
                                 d.max_batch);
  // Page-proportional segments first, then the rings; every segment starts 256-byte aligned.
  int64_t at = 0;
  const auto place = [&at](int64_t bytes) {
    const int64_t offset = at;
    at += align256(bytes);
    return offset;
  };
  a.k_codes = place(a.k.codes_bytes);
  a.v_codes = place(a.v.codes_bytes);
  a.k_sz = place(a.k.scale_zero_bytes);
  a.v_sz = place(a.v.scale_zero_bytes);
  a.k_ring = place(a.k.ring_bytes);
  a.v_ring = place(a.v.ring_bytes);
  a.total_bytes = at;
  return a;
}

}  // namespace latentkv::capi
