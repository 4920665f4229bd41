#include "latentkv/attention/prefill_attention.h"

namespace latentkv {

Status prefill_attention_is_supported(const PrefillAttentionParams& p) {
  const auto bad = [](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("prefill_attention: ", a...));
  };
  const auto unsupported = [](auto&&... a) {
    return Status(StatusCode::kUnsupported, str_cat("prefill_attention: ", a...));
  };
  if (p.head_dim != 64 && p.head_dim != 128)
    return unsupported("head_dim ", p.head_dim, " (supported: 64, 128)");
  if (p.num_kv_heads < 1 || p.num_qo_heads < 1 || p.num_qo_heads % p.num_kv_heads != 0)
    return bad("num_qo_heads ", p.num_qo_heads, " is not a multiple of num_kv_heads ",
               p.num_kv_heads);
  const int ratio = p.num_qo_heads / p.num_kv_heads;
  if (ratio > 8) return unsupported("GQA ratio ", ratio, " > 8");
  if (p.num_queries < 1) return bad("num_queries ", p.num_queries, " < 1");
  if (p.num_keys < p.num_queries)
    return bad("num_keys ", p.num_keys, " < num_queries ", p.num_queries,
               " (the chunk's own keys must be cached)");
  if (p.num_keys > (1 << 20)) return unsupported("num_keys ", p.num_keys, " > 2^20");
  if (p.page_size < 1) return bad("page_size ", p.page_size, " < 1");
  if (!(p.sm_scale > 0.0f)) return bad("sm_scale must be > 0");
  if (!p.q || !p.k_cache || !p.v_cache || !p.pages || !p.out)
    return bad("a required pointer (q, k_cache, v_cache, pages, out) is null");
  return Status::Ok();
}

}  // namespace latentkv
