#include "attention/split_planner.h"
#include "latentkv/attention/latent_append.h"

namespace latentkv {
namespace {

Status check_view(const LatentCacheView& v, const char* name, bool ring) {
  const auto bad = [&](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("latent_append: ", name, ": ", a...));
  };
  if (v.rank < 16 || v.rank % 16 || v.rank > 1024)
    return Status(StatusCode::kUnsupported, str_cat("latent_append: ", name, ".rank ", v.rank,
                                                    " is not a multiple of 16 in [16, 1024]"));
  if (v.bits != 16 && v.bits != 2 && v.bits != 3 && v.bits != 4 && v.bits != 8)
    return Status(StatusCode::kUnsupported, str_cat("latent_append: ", name, ".bits ", v.bits));
  const int qg = v.quant_group ? v.quant_group : v.rank;
  if (v.bits < 16 && (qg % 8 || v.rank % qg))
    return Status(StatusCode::kUnsupported, str_cat("latent_append: ", name, ".quant_group ", qg,
                                                    " must be a multiple of 8 dividing the rank"));
  if (!v.codes || v.token_stride < (int64_t{v.rank} * v.bits + 7) / 8)
    return bad("codes null or token_stride too small");
  if (v.bits == 16 && (v.token_stride % 16 || v.group_stride % 16 || v.page_stride % 16 ||
                       reinterpret_cast<uintptr_t>(v.codes) % 16))
    return bad("fp16 rows must be 16-byte aligned");
  if (v.bits < 16 && (!v.scale_zero || v.sz_token_stride % 4 || v.sz_group_stride % 4 ||
                      v.sz_page_stride % 4 || reinterpret_cast<uintptr_t>(v.scale_zero) % 4))
    return bad("scale_zero null or not 4-byte aligned");
  if (ring && (!v.ring || v.ring_token_stride < 2 * v.rank || v.ring_token_stride % 2 ||
               v.ring_group_stride % 2 || v.ring_seq_stride % 2))
    return bad("ring null or strides too small / odd");
  return Status::Ok();
}

}  // namespace

Status latent_append_is_supported(const LatentAppendParams& p) {
  const auto bad = [](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("latent_append: ", a...));
  };
  if (p.batch_size < 1 || p.batch_size > 256)
    return Status(StatusCode::kUnsupported,
                  str_cat("latent_append: batch_size ", p.batch_size, " outside [1, 256]"));
  if (p.num_groups < 1 || p.d_model < 1 || p.num_tokens < 0)
    return bad("num_groups, d_model must be >= 1 and num_tokens >= 0");
  if (p.window.residual < 0 || p.window.chunk < 1)
    return bad("window residual must be >= 0 and chunk >= 1");
  if (p.pages.page_size < 1) return bad("page_size ", p.pages.page_size, " < 1");
  const bool ring = p.window.ring_capacity() > 0;
  LKV_RETURN_IF_ERROR(check_view(p.k, "k", ring));
  LKV_RETURN_IF_ERROR(check_view(p.v, "v", ring));
  if (!p.append_indptr || !p.pages.indptr || !p.pages.indices || !p.pages.seq_lens ||
      !p.seq_lens_out)
    return bad("a required pointer is null");
  return Status::Ok();
}

Status latent_append_gemm_is_supported(const LatentAppendParams& p) {
  LKV_RETURN_IF_ERROR(latent_append_is_supported(p));
  if (p.num_tokens > 0 && (!p.x || !p.a_cat || p.x_stride < p.d_model))
    return Status(StatusCode::kInvalidArgument,
                  "latent_append: x / a_cat null or x_stride < d_model");
  return Status::Ok();
}

int64_t latent_append_workspace_bytes(const LatentAppendParams& p, int max_tokens) {
  return detail::align256(int64_t{max_tokens} * p.num_groups * (p.k.rank + p.v.rank) * 4);
}

}  // namespace latentkv
