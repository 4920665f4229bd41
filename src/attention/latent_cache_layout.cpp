#include "latentkv/attention/latent_cache.h"

namespace latentkv {

LatentCacheLayout make_latent_cache_layout(int num_groups, int rank, const QuantConfig& config,
                                           int page_size, int64_t num_pages,
                                           const LatentWindowPolicy& window, int max_batch) {
  LKV_CHECK_ARG(num_groups >= 1, "latent cache: num_groups must be >= 1");
  LKV_CHECK_ARG(page_size >= 1 && num_pages >= 0 && max_batch >= 0,
                "latent cache: page_size >= 1, num_pages >= 0, max_batch >= 0 required");
  LKV_CHECK_ARG(window.residual >= 0 && window.chunk >= 1,
                "latent cache: window residual >= 0 and chunk >= 1 required");
  LKV_CHECK_ARG(config.bits == 16 || config.bits == 2 || config.bits == 3 || config.bits == 4 ||
                    config.bits == 8,
                "latent cache: bits ", config.bits, " not supported");
  validate_quant_config(config, rank);
  LatentCacheLayout l;
  LatentCacheView& v = l.view;
  v.rank = rank;
  v.bits = config.bits;
  v.quant_group = config.quant_group;
  const auto round16 = [](int64_t x) { return (x + 15) / 16 * 16; };
  l.code_row_bytes = latent_code_bytes(rank, config.bits);
  v.token_stride = round16(l.code_row_bytes);
  v.group_stride = v.token_stride * page_size;
  v.page_stride = round16(v.group_stride * num_groups);
  l.codes_bytes = v.page_stride * num_pages;
  const int nqg = latent_num_quant_groups(rank, config);
  if (nqg > 0) {
    v.sz_token_stride = 4 * nqg;
    v.sz_group_stride = v.sz_token_stride * page_size;
    v.sz_page_stride = round16(v.sz_group_stride * num_groups);
    l.scale_zero_bytes = v.sz_page_stride * num_pages;
  }
  const int cap = window.ring_capacity();
  if (cap > 0) {
    v.ring_token_stride = round16(2 * int64_t{rank});
    v.ring_group_stride = v.ring_token_stride * cap;
    v.ring_seq_stride = round16(v.ring_group_stride * num_groups);
    l.ring_bytes = v.ring_seq_stride * max_batch;
  }
  l.bytes_per_token = int64_t{num_groups} * latent_bytes_per_token(rank, config);
  return l;
}

}  // namespace latentkv
