#include <algorithm>

#include "attention/split_planner.h"
#include "latentkv/attention/paged_decode.h"

namespace latentkv {

Status paged_decode_is_supported(const PagedDecodeParams& p) {
  const auto bad = [](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("paged_decode: ", a...));
  };
  const auto unsupported = [](auto&&... a) {
    return Status(StatusCode::kUnsupported, str_cat("paged_decode: ", a...));
  };
  if (p.batch_size < 1 || p.batch_size > 256)
    return unsupported("batch_size ", p.batch_size, " outside [1, 256]");
  if (p.head_dim != 64 && p.head_dim != 128)
    return unsupported("head_dim ", p.head_dim, " (supported: 64, 128)");
  if (p.num_kv_heads < 1 || p.num_qo_heads < 1 || p.num_qo_heads % p.num_kv_heads != 0)
    return bad("num_qo_heads ", p.num_qo_heads, " is not a multiple of num_kv_heads ",
               p.num_kv_heads);
  const int ratio = p.num_qo_heads / p.num_kv_heads;
  if (ratio > 8) return unsupported("GQA ratio ", ratio, " > 8");
  if (p.pages.page_size < 1) return bad("page_size ", p.pages.page_size, " < 1");
  if (!p.q || !p.k_cache || !p.v_cache || !p.out || !p.pages.indptr || !p.pages.indices ||
      !p.pages.seq_lens)
    return bad("a required pointer is null");
  if (p.q_stride_head % 8 || p.q_stride_batch % 8 || p.page_stride % 8 || p.head_stride % 8 ||
      p.token_stride % 8)
    return bad("q and cache strides must be multiples of 8 elements (16-byte rows)");
  if (p.token_stride < p.head_dim) return bad("token_stride ", p.token_stride, " < head_dim");
  if (!(p.sm_scale > 0.0f)) return bad("sm_scale must be > 0");
  return Status::Ok();
}

Status paged_decode_plan(const PagedDecodeParams& p, int max_seq_len, int num_sms,
                         DecodePlan* plan) {
  LKV_RETURN_IF_ERROR(paged_decode_is_supported(p));
  if (max_seq_len < 1 || max_seq_len > 131072)
    return Status(StatusCode::kUnsupported,
                  str_cat("paged_decode: max_seq_len ", max_seq_len, " outside [1, 131072]"));
  if (num_sms < 1) return Status(StatusCode::kInvalidArgument, "paged_decode: num_sms < 1");
  // Split granularity: a few 32-token tiles of the kernel.
  const int tile = 128;
  const int ratio = p.num_qo_heads / p.num_kv_heads;
  // Resident CTAs per multiprocessor (sm_90a): shared memory (48 KiB per CTA at head_dim 128,
  // 24 KiB at 64) and registers (48 / 80 / 128 / 227 per thread at ratio 1 / 2 / 4 / 8 and
  // head_dim 128; 47 / 64 / 114 / 200 at 64) of 128-thread CTAs.
  const int ctas_per_sm = ratio <= 2 ? (p.head_dim == 64 ? 8 : 4) : ratio <= 4 ? 4 : 2;
  const auto choice = detail::choose_splits(int64_t{p.batch_size} * p.num_kv_heads, max_seq_len,
                                            tile, ctas_per_sm, num_sms, 0.5);
  DecodePlan out;
  out.max_seq_len = max_seq_len;
  out.num_splits = choice.num_splits;
  out.tokens_per_split = choice.tokens_per_split;
  out.heads_per_cta = 1;
  out.extra_splits = 0;
  const int64_t rows = int64_t{p.batch_size} * p.num_qo_heads;
  out.workspace_bytes = out.num_splits == 1
                            ? 0
                            : detail::align256(rows * out.num_splits * p.head_dim * 4) +
                                  detail::align256(rows * out.num_splits * 4);
  *plan = out;
  return Status::Ok();
}

}  // namespace latentkv
