#include <algorithm>
#include <cmath>

#include "attention/latent_decode_config.h"
#include "attention/split_planner.h"
#include "latentkv/attention/latent_decode.h"

namespace latentkv {
namespace {

Status check_cache_view(const LatentCacheView& v, const char* name, bool need_ring) {
  const auto bad = [&](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("latent_decode: ", name, ": ", a...));
  };
  if (v.rank < 16 || v.rank % 16)
    return Status(StatusCode::kUnsupported, str_cat("latent_decode: ", name, ".rank ", v.rank,
                                                    " is not a positive multiple of 16"));
  if (v.bits != 16 && v.bits != 4 && v.bits != 3 && v.bits != 2)
    return Status(StatusCode::kUnsupported,
                  str_cat("latent_decode: ", name, ".bits ", v.bits, " (supported: 16, 4, 3, 2)"));
  if (v.bits < 16 && v.quant_group != 0 && v.quant_group != v.rank)
    return Status(StatusCode::kUnsupported,
                  str_cat("latent_decode: ", name, ".quant_group ", v.quant_group,
                          " (the fused kernel needs one scale/zero per latent: 0 or rank)"));
  const int64_t row = (int64_t{v.rank} * v.bits + 7) / 8;
  if (!v.codes) return bad("codes is null");
  if (v.token_stride < (row + 15) / 16 * 16 || v.token_stride % 16 || v.group_stride % 16 ||
      v.page_stride % 16)
    return bad("code strides must be multiples of 16 bytes with token_stride >= ",
               (row + 15) / 16 * 16);
  if (reinterpret_cast<uintptr_t>(v.codes) % 16) return bad("codes must be 16-byte aligned");
  if (v.bits < 16) {
    if (!v.scale_zero) return bad("scale_zero is null");
    if (v.sz_token_stride % 4 || v.sz_group_stride % 4 || v.sz_page_stride % 4 ||
        reinterpret_cast<uintptr_t>(v.scale_zero) % 4)
      return bad("scale_zero strides and pointer must be multiples of 4 bytes");
  }
  if (need_ring) {
    if (!v.ring) return bad("ring is null but the window policy keeps tokens in fp16");
    if (v.ring_token_stride < 2 * v.rank || v.ring_token_stride % 16 || v.ring_group_stride % 16 ||
        v.ring_seq_stride % 16 || reinterpret_cast<uintptr_t>(v.ring) % 16)
      return bad("ring strides must be multiples of 16 bytes with ring_token_stride >= 2*rank");
  }
  return Status::Ok();
}

}  // namespace

Status latent_decode_is_supported(const LatentDecodeParams& p) {
  const auto bad = [](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("latent_decode: ", a...));
  };
  const auto unsupported = [](auto&&... a) {
    return Status(StatusCode::kUnsupported, str_cat("latent_decode: ", a...));
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
  // Any group of up to 8 KV heads: a CTA takes 4, 3, 2 or 1 of them (latent_heads_per_cta).
  if (p.group_size < 1 || p.group_size > 8)
    return unsupported("group_size ", p.group_size, " (supported: 1 to 8)");
  if (p.num_kv_heads % p.group_size)
    return bad("group_size ", p.group_size, " does not divide num_kv_heads ", p.num_kv_heads);
  if (p.k.bits != p.v.bits) return unsupported("key bits ", p.k.bits, " != value bits ", p.v.bits);
  if (p.window.residual < 0 || p.window.chunk < 1)
    return bad("window residual must be >= 0 and chunk >= 1");
  if (p.pages.page_size < 1) return bad("page_size ", p.pages.page_size, " < 1");
  const bool ring = p.window.ring_capacity() > 0;
  LKV_RETURN_IF_ERROR(check_cache_view(p.k, "k", ring));
  LKV_RETURN_IF_ERROR(check_cache_view(p.v, "v", ring));
  if (p.k.rank > p.group_size * p.head_dim || p.v.rank > p.group_size * p.head_dim)
    return bad("rank above group_size*head_dim = ", p.group_size * p.head_dim);
  if (p.b_v && reinterpret_cast<uintptr_t>(p.b_v) % 16)
    return bad("b_v (value up-projections) must be 16-byte aligned");
  if (p.b_v && (p.v.rank > kernels::kUpMaxRank ||
                ratio * p.v.rank > kernels::kUpMaxItems * kernels::kUpThreads))
    return unsupported(
        "rank_v ", p.v.rank, " with GQA ratio ", ratio,
        " for the fused value up-projection (b_v): needs rank_v <= ", kernels::kUpMaxRank,
        " and ratio*rank_v <= ", kernels::kUpMaxItems * kernels::kUpThreads);
  const int nw = kernels::latent_num_warps(p.head_dim);
  if (p.v.rank > 16 * kernels::kLatentMaxVPairs * nw)
    return unsupported("rank_v ", p.v.rank, " > ", 16 * kernels::kLatentMaxVPairs * nw,
                       " at head_dim ", p.head_dim);
  const int hpc = detail::latent_heads_per_cta(p.group_size, ratio, p.k.rank, p.k.bits);
  if (hpc == 0)
    return unsupported("rank_k ", p.k.rank,
                       " too large for the register-resident key factors (bits ", p.k.bits, ")");
  const auto smem = kernels::latent_smem_layout(p.k.bits, p.k.rank, p.v.rank, nw).total;
  if (smem > detail::kMaxSmemPerBlock)
    return unsupported("ranks ", p.k.rank, "/", p.v.rank, " need ", smem,
                       " bytes of shared memory (max ", detail::kMaxSmemPerBlock, ")");
  if (detail::latent_has_residual_launch(p)) {
    if (detail::latent_residual_heads_per_cta(p) == 0)
      return unsupported("rank_k ", p.k.rank, " too large for the fp16 residual-window kernel");
    const auto s16 = kernels::latent_smem_layout(16, p.k.rank, p.v.rank, nw).total;
    if (s16 > detail::kMaxSmemPerBlock)
      return unsupported("ranks ", p.k.rank, "/", p.v.rank, " need ", s16,
                         " bytes of shared memory in the residual-window kernel");
  }
  if (!p.group_heads || !p.q || !p.inv_freq || !p.out || !p.pages.indptr || !p.pages.indices ||
      !p.pages.seq_lens)
    return bad("a required pointer is null");
  if ((p.k.bits == 16 || detail::latent_has_residual_launch(p) || detail::latent_uses_fold(p)) &&
      !p.b_k)
    return bad("b_k (fp16 key factors) is null");
  if (p.k.bits < 16 && !detail::latent_uses_fold(p) &&
      (!p.b_k_i8 || !p.b_k_i8_scale || !p.b_k_i8_rowsum))
    return bad("int8 key factors (b_k_i8, scale, rowsum) are needed for bits < 16 with GQA");
  if (p.q_dtype != DType::kF16 && p.q_dtype != DType::kBF16)
    return unsupported("q_dtype ", dtype_name(p.q_dtype));
  if (!(p.sm_scale > 0.0f)) return bad("sm_scale must be > 0");
  return Status::Ok();
}

Status latent_decode_plan(const LatentDecodeParams& p, int max_seq_len, int num_sms,
                          DecodePlan* plan) {
  LKV_RETURN_IF_ERROR(latent_decode_is_supported(p));
  if (max_seq_len < 1 || max_seq_len > 131072)
    return Status(StatusCode::kUnsupported,
                  str_cat("latent_decode: max_seq_len ", max_seq_len, " outside [1, 131072]"));
  if (num_sms < 1) return Status(StatusCode::kInvalidArgument, "latent_decode: num_sms < 1");
  const int ratio = p.num_qo_heads / p.num_kv_heads;
  DecodePlan out;
  out.max_seq_len = max_seq_len;
  out.heads_per_cta = detail::latent_heads_per_cta(p.group_size, ratio, p.k.rank, p.k.bits);
  const int64_t base = int64_t{p.batch_size} * (p.num_kv_heads / out.heads_per_cta);
  // Pages hold at most max_seq_len tokens; a split's fixed cost (factor fragments, pipeline fill)
  // is about two tiles, for the window's CTAs as for the page CTAs.
  constexpr double kCtaFixedTiles = 2.0;
  const int nw = kernels::latent_num_warps(p.head_dim);
  // The warpgroup form (sm_90a; decided by shape here, the device is not asked) runs one CTA per
  // SM, with the residual window's CTAs after the page CTAs in its grid: they trail the splits.
  const bool wg = detail::latent_wg_shape(p);
  const int ctas_per_sm =
      wg ? 1
         : kernels::latent_ctas_per_sm(
               detail::latent_uses_fold(p), out.heads_per_cta,
               kernels::latent_key_steps(p.k.rank, p.k.bits),
               kernels::latent_smem_layout(p.k.bits, p.k.rank, p.v.rank, nw).total);
  out.extra_splits = detail::latent_residual_slots(p, num_sms);
  detail::TrailingCtas trailing;
  if (wg && out.extra_splits > 0) {
    trailing.ctas = out.extra_splits * detail::latent_residual_ctas_per_slot(p);
    trailing.cost_tiles =
        detail::latent_residual_tiles_per_slot(p, out.extra_splits) + kCtaFixedTiles;
  }
  const auto choice = detail::choose_splits(base, max_seq_len, kernels::kLatentTile, ctas_per_sm,
                                            num_sms, kCtaFixedTiles, trailing);
  out.num_splits = choice.num_splits;
  out.tokens_per_split = choice.tokens_per_split;
  // The fused up-projection keeps one merge weight per slot of each query head of a KV head.
  const int max_splits = kernels::kUpWeightSlots / ratio - out.extra_splits;
  if (p.b_v && out.num_splits > max_splits) {
    const int tiles = (max_seq_len + kernels::kLatentTile - 1) / kernels::kLatentTile;
    out.tokens_per_split = (tiles + max_splits - 1) / max_splits * kernels::kLatentTile;
    out.num_splits = (max_seq_len + out.tokens_per_split - 1) / out.tokens_per_split;
  }
  out.workspace_bytes = detail::latent_workspace_layout(p, out.num_splits + out.extra_splits).total;
  *plan = out;
  return Status::Ok();
}

LatentKeyFactorsI8 make_key_factors_i8(const std::vector<float>& b, int num_groups, int group_size,
                                       int head_dim, int rank) {
  LKV_CHECK_ARG(num_groups > 0 && group_size > 0 && head_dim > 0 && head_dim % 2 == 0 && rank > 0,
                "make_key_factors_i8: bad shape");
  const int64_t rows = int64_t{num_groups} * group_size * head_dim;
  LKV_CHECK_ARG(static_cast<int64_t>(b.size()) == rows * rank, "make_key_factors_i8: b has ",
                b.size(), " values, expected ", rows * rank);
  LatentKeyFactorsI8 f;
  f.values.resize(rows * rank);
  f.scale.resize(rows);
  f.rowsum.resize(rows);
  const int half = head_dim / 2;
  for (int64_t head = 0; head < rows / head_dim; ++head) {
    for (int d = 0; d < half; ++d) {
      const int64_t r0 = head * head_dim + d, r1 = r0 + half;
      float amax = 0.0f;
      for (int64_t rr : {r0, r1})
        for (int c = 0; c < rank; ++c) {
          const float x = b[rr * rank + c];
          LKV_CHECK_ARG(std::isfinite(x), "make_key_factors_i8: non-finite factor value");
          amax = std::max(amax, std::fabs(x));
        }
      const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
      for (int64_t rr : {r0, r1}) {
        int32_t sum = 0;
        for (int c = 0; c < rank; ++c) {
          const float q = std::nearbyint(b[rr * rank + c] / scale);
          const int v = static_cast<int>(std::max(-127.0f, std::min(127.0f, q)));
          f.values[rr * rank + c] = static_cast<int8_t>(v);
          sum += v;
        }
        f.scale[rr] = scale;
        f.rowsum[rr] = sum;
      }
    }
  }
  return f;
}

}  // namespace latentkv
