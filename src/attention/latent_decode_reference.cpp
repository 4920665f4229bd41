#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_decode.h"
#include "latentkv/rope.h"

namespace latentkv::reference {
namespace {

double round_half(double x) {
  return half_bits_to_float(float_to_half_bits(static_cast<float>(x)));
}

// Nearest e4m3 value (ties to even, saturating at ±448, subnormal step 2^-9), as the device's
// __nv_fp8_e4m3 conversion rounds: 3 mantissa bits below the leading one.
double round_e4m3(double x) {
  const double a = std::fabs(x);
  if (a >= 448.0) return std::copysign(448.0, x);
  int e = 0;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  const double step = std::ldexp(1.0, std::max(e - 1, -6) - 3);
  return std::copysign(std::nearbyint(a / step) * step, x);
}

float load_query(const LatentDecodeParams& p, int64_t i) {
  const auto* q = static_cast<const uint16_t*>(p.q);
  if (p.q_dtype == DType::kBF16) {
    const uint32_t bits = static_cast<uint32_t>(q[i]) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  return half_bits_to_float(q[i]);
}

// One stored latent row as the kernel sees it.
struct Row {
  const uint8_t* codes = nullptr;  // page codes, or nullptr when the row is in the ring
  const uint16_t* sz = nullptr;    // (scale, zero) fp16 pair
  const uint16_t* ring = nullptr;  // fp16 latent
};

Row locate(const LatentCacheView& v, const LatentDecodeParams& p, int b, int g, int64_t pos,
           int64_t qlen) {
  Row r;
  if (pos < qlen) {
    const int64_t page = p.pages.indices[p.pages.indptr[b] + pos / p.pages.page_size];
    const int64_t slot = pos % p.pages.page_size;
    r.codes = static_cast<const uint8_t*>(v.codes) + page * v.page_stride + g * v.group_stride +
              slot * v.token_stride;
    if (v.bits < 16)
      r.sz = reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(v.scale_zero) +
                                               page * v.sz_page_stride + g * v.sz_group_stride +
                                               slot * v.sz_token_stride);
  } else {
    const int64_t slot = pos % p.window.ring_capacity();
    r.ring = reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(v.ring) +
                                               b * v.ring_seq_stride + g * v.ring_group_stride +
                                               slot * v.ring_token_stride);
  }
  return r;
}

// Dequantized latent (exact: fp32 x̂ of dequantize_latent, or the fp16 value).
void dequant(const LatentCacheView& v, const Row& r, float* out) {
  if (r.ring) {
    for (int c = 0; c < v.rank; ++c) out[c] = half_bits_to_float(r.ring[c]);
  } else {
    dequantize_latent(r.codes, r.sz, r.sz + 1, v.rank, v.quant_config(), out);
  }
}

// Folded query factors of one query head as the MHA kernel uses them (latent_query_fold.cuh):
// rows 2d / 2d+1 = cos / sin weights of RoPE pair d, fp16-rounded (w16) and β·int8 or β·e4m3
// (w8) with one β per 16 rows.
struct FoldedQuery {
  std::vector<double> w16, w8;  // [head_dim][rank]
};

FoldedQuery fold_query(const LatentDecodeParams& p, int64_t qoff, int64_t brow0, bool fp8) {
  const int hd = p.head_dim, half = hd / 2, rk = p.k.rank;
  const float qscale = p.sm_scale * 1.4426950408889634f;
  std::vector<float> u(static_cast<size_t>(hd) * rk);
  for (int d = 0; d < half; ++d) {
    const float ql = load_query(p, qoff + d) * qscale, qh = load_query(p, qoff + d + half) * qscale;
    for (int c = 0; c < rk; ++c) {
      const float lo = half_bits_to_float(p.b_k[(brow0 + d) * rk + c]);
      const float hi = half_bits_to_float(p.b_k[(brow0 + d + half) * rk + c]);
      u[(2 * d) * rk + c] = ql * lo + qh * hi;
      u[(2 * d + 1) * rk + c] = qh * lo - ql * hi;
    }
  }
  FoldedQuery f;
  f.w16.resize(u.size());
  f.w8.resize(u.size());
  const size_t chunk = static_cast<size_t>(16) * rk;
  for (size_t c0 = 0; c0 < u.size(); c0 += chunk) {
    float amax = 0.0f;
    for (size_t i = c0; i < c0 + chunk; ++i) amax = std::max(amax, std::fabs(u[i]));
    const float beta = amax > 0.0f ? amax / (fp8 ? 448.0f : 127.0f) : 1.0f;
    for (size_t i = c0; i < c0 + chunk; ++i) {
      f.w16[i] = round_half(u[i]);
      f.w8[i] = fp8 ? beta * round_e4m3(u[i] / beta)
                    : beta * std::max(-127.0f, std::min(127.0f, std::nearbyint(u[i] / beta)));
    }
  }
  return f;
}

// o[b, h, :head_dim] = B_v,g[s] · z[b, h, :rank_v] for KV head h / ratio at (group g, slot s).
std::vector<double> up_project(const LatentDecodeParams& p, const std::vector<double>& z) {
  const int ratio = p.num_qo_heads / p.num_kv_heads, hd = p.head_dim, rv = p.v.rank;
  std::vector<double> o(static_cast<size_t>(p.batch_size) * p.num_qo_heads * hd);
  for (int h = 0; h < p.num_qo_heads; ++h) {
    const int pos = static_cast<int>(
        std::find(p.group_heads, p.group_heads + p.num_kv_heads, h / ratio) - p.group_heads);
    const uint16_t* bv = p.b_v + static_cast<int64_t>(pos) * hd * rv;
    for (int b = 0; b < p.batch_size; ++b) {
      const double* zh = &z[(static_cast<size_t>(b) * p.num_qo_heads + h) * rv];
      double* oh = &o[(static_cast<size_t>(b) * p.num_qo_heads + h) * hd];
      for (int d = 0; d < hd; ++d) {
        double acc = 0.0;
        for (int c = 0; c < rv; ++c) acc += half_bits_to_float(bv[d * rv + c]) * zh[c];
        oh[d] = acc;
      }
    }
  }
  return o;
}

}  // namespace

DecodeValues latent_decode_values(const LatentDecodeParams& p, const LatentDecodeOptions& opt) {
  const Status st = latent_decode_is_supported(p);
  if (!st.ok()) throw Error(st.code(), st.message());
  const bool emu = opt.emulate_kernel;
  const int ratio = p.num_qo_heads / p.num_kv_heads, hd = p.head_dim;
  const int gs = p.group_size, rk = p.k.rank, rv = p.v.rank;
  const int num_groups = p.num_kv_heads / gs;
  const double log2e = 1.4426950408889634;
  DecodeValues res;
  res.out.assign(static_cast<size_t>(p.batch_size) * p.num_qo_heads * rv, 0.0);
  res.lse.assign(static_cast<size_t>(p.batch_size) * p.num_qo_heads,
                 -std::numeric_limits<double>::infinity());
  std::vector<float> hk(rk), hv(rv);
  std::vector<double> key(hd);
  for (int b = 0; b < p.batch_size; ++b) {
    const int64_t len = p.pages.seq_lens[b];
    if (len == 0) continue;
    const int64_t qlen = p.window.quantized_len(len);
    for (int g = 0; g < num_groups; ++g) {
      // Scores of every query head of the group, [slot][i][t], in natural-log units (exact) or
      // log2 units (emulation).
      std::vector<double> scores(static_cast<size_t>(gs) * ratio * len);
      // MHA kernel emulation: no keys, scores from the folded query factors (fp16 W, or β·int8 W
      // on quantized rows) and the exact latents.
      const bool folded = emu && ratio == 1;
      std::vector<FoldedQuery> fq;
      if (folded)
        for (int s = 0; s < gs; ++s)
          fq.push_back(
              fold_query(p, b * p.q_stride_batch + p.group_heads[g * gs + s] * p.q_stride_head,
                         (static_cast<int64_t>(g) * gs + s) * hd, opt.fp8_key_factors));
      for (int64_t t = 0; t < len; ++t) {
        const Row kr = locate(p.k, p, b, g, t, qlen);
        const bool int_path = emu && !folded && p.k.bits < 16 && kr.codes != nullptr;
        if (!int_path) dequant(p.k, kr, hk.data());
        if (folded) {
          for (int s = 0; s < gs; ++s) {
            const std::vector<double>& w = kr.codes && p.k.bits < 16 ? fq[s].w8 : fq[s].w16;
            double acc = 0.0;
            for (int d = 0; d < hd / 2; ++d) {
              double a = 0.0, bsum = 0.0;
              for (int c = 0; c < rk; ++c) {
                a += w[(2 * d) * rk + c] * hk[c];
                bsum += w[(2 * d + 1) * rk + c] * hk[c];
              }
              const double ang = p.inv_freq[d] * static_cast<double>(t);
              acc += std::cos(ang) * a + std::sin(ang) * bsum;
            }
            scores[static_cast<size_t>(s) * len + t] = acc;
          }
          continue;
        }
        for (int s = 0; s < gs; ++s) {
          const int kv = p.group_heads[g * gs + s];
          const int64_t row0 = (static_cast<int64_t>(g) * gs + s) * hd;
          for (int d = 0; d < hd; ++d) {
            double acc = 0.0;
            if (int_path) {
              const double sc = half_bits_to_float(kr.sz[0]), zr = half_bits_to_float(kr.sz[1]);
              const int8_t* bi = p.b_k_i8 + (row0 + d) * rk;
              int64_t dot = 0;
              for (int c = 0; c < rk; ++c)
                dot += bi[c] * static_cast<int>(unpack_code(kr.codes, c, p.k.bits));
              acc = p.b_k_i8_scale[row0 + d] * (sc * dot + zr * p.b_k_i8_rowsum[row0 + d]);
            } else {
              const uint16_t* bk = p.b_k + (row0 + d) * rk;
              for (int c = 0; c < rk; ++c)
                acc += half_bits_to_float(bk[c]) * static_cast<double>(hk[c]);
            }
            key[d] = acc;
          }
          apply_rope(key.data(), hd, t, p.inv_freq);
          if (emu)
            for (int d = 0; d < hd; ++d) key[d] = round_half(key[d]);
          for (int i = 0; i < ratio; ++i) {
            const int h = kv * ratio + i;
            const int64_t qoff = b * p.q_stride_batch + h * p.q_stride_head;
            double acc = 0.0;
            for (int d = 0; d < hd; ++d) {
              const double qd = load_query(p, qoff + d);
              acc += (emu ? round_half(static_cast<float>(qd * p.sm_scale * log2e)) : qd) * key[d];
            }
            scores[(static_cast<size_t>(s) * ratio + i) * len + t] = emu ? acc : acc * p.sm_scale;
          }
        }
      }
      for (int s = 0; s < gs; ++s)
        for (int i = 0; i < ratio; ++i) {
          const int h = p.group_heads[g * gs + s] * ratio + i;
          const double* sc = &scores[(static_cast<size_t>(s) * ratio + i) * len];
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t t = 0; t < len; ++t) m = std::max(m, sc[t]);
          double l = 0.0;
          double* o = &res.out[(static_cast<size_t>(b) * p.num_qo_heads + h) * rv];
          for (int64_t t = 0; t < len; ++t) {
            const double w = emu ? std::exp2(sc[t] - m) : std::exp(sc[t] - m);
            l += w;
            dequant(p.v, locate(p.v, p, b, g, t, qlen), hv.data());
            const double wv = emu ? round_half(w) : w;
            for (int c = 0; c < rv; ++c) o[c] += wv * (emu ? round_half(hv[c]) : hv[c]);
          }
          for (int c = 0; c < rv; ++c) o[c] /= l;
          res.lse[static_cast<size_t>(b) * p.num_qo_heads + h] =
              emu ? (m + std::log2(l)) / log2e : m + std::log(l);
        }
    }
  }
  if (p.b_v) res.out = up_project(p, res.out);
  return res;
}

void latent_decode(const LatentDecodeParams& p, const LatentDecodeOptions& opt) {
  const DecodeValues r = latent_decode_values(p, opt);
  const int rv = p.b_v ? p.head_dim : p.v.rank;
  for (int b = 0; b < p.batch_size; ++b)
    for (int h = 0; h < p.num_qo_heads; ++h) {
      const size_t bh = static_cast<size_t>(b) * p.num_qo_heads + h;
      const int64_t base = b * p.out_stride_batch + h * p.out_stride_head;
      for (int c = 0; c < rv; ++c) {
        const float v = static_cast<float>(r.out[bh * rv + c]);
        if (p.out_dtype == DType::kF32) {
          static_cast<float*>(p.out)[base + c] = v;
        } else if (p.out_dtype == DType::kF16) {
          static_cast<uint16_t*>(p.out)[base + c] = float_to_half_bits(v);
        } else {
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even (finite values)
          static_cast<uint16_t*>(p.out)[base + c] = static_cast<uint16_t>(bits >> 16);
        }
      }
      if (p.lse) p.lse[bh] = static_cast<float>(r.lse[bh]);
    }
}

}  // namespace latentkv::reference
