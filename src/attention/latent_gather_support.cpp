#include "latentkv/attention/latent_gather.h"

namespace latentkv {

Status latent_gather_is_supported(const LatentGatherParams& p) {
  const auto bad = [](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("latent_gather: ", a...));
  };
  const auto unsupported = [](auto&&... a) {
    return Status(StatusCode::kUnsupported, str_cat("latent_gather: ", a...));
  };
  const LatentCacheView& v = p.cache;
  if (p.num_groups < 1) return bad("num_groups ", p.num_groups, " < 1");
  if (v.rank < 16 || v.rank % 16)
    return unsupported("rank ", v.rank, " is not a positive multiple of 16");
  if (v.bits != 16 && v.bits != 8 && v.bits != 4 && v.bits != 3 && v.bits != 2)
    return unsupported("bits ", v.bits, " (supported: 16, 8, 4, 3, 2)");
  if (v.bits < 16 && (v.quant_group < 0 || (v.quant_group > 0 && v.rank % v.quant_group)))
    return bad("quant_group ", v.quant_group, " does not divide the rank ", v.rank);
  if (p.window.residual < 0 || p.window.chunk < 1)
    return bad("window residual must be >= 0 and chunk >= 1");
  if (p.page_size < 1) return bad("page_size ", p.page_size, " < 1");
  if (p.num_tokens < 0) return bad("num_tokens ", p.num_tokens, " < 0");
  if (p.seq_slot < 0) return bad("seq_slot ", p.seq_slot, " < 0");
  if (p.out_stride < int64_t{p.num_groups} * v.rank)
    return bad("out_stride ", p.out_stride,
               " < num_groups*rank = ", int64_t{p.num_groups} * v.rank);
  const int64_t qlen = p.window.quantized_len(p.num_tokens);
  if (qlen > 0 && (!v.codes || !p.pages))
    return bad("codes or pages is null but tokens live in pages");
  if (qlen > 0 && v.bits < 16 && !v.scale_zero) return bad("scale_zero is null (bits < 16)");
  if (p.num_tokens > qlen && !v.ring)
    return bad("ring is null but tokens live in the residual window");
  if (p.num_tokens > 0 && !p.out) return bad("out is null");
  return Status::Ok();
}

}  // namespace latentkv
