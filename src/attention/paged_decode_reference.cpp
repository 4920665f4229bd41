#include <cmath>
#include <limits>

#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/paged_decode.h"

namespace latentkv::reference {

DecodeValues paged_decode_values(const PagedDecodeParams& p) {
  const Status st = paged_decode_is_supported(p);
  if (!st.ok()) throw Error(st.code(), st.message());
  const int ratio = p.num_qo_heads / p.num_kv_heads, hd = p.head_dim;
  const auto* q = static_cast<const uint16_t*>(p.q);
  const auto* kc = static_cast<const uint16_t*>(p.k_cache);
  const auto* vc = static_cast<const uint16_t*>(p.v_cache);
  DecodeValues r;
  r.out.assign(static_cast<size_t>(p.batch_size) * p.num_qo_heads * hd, 0.0);
  r.lse.assign(static_cast<size_t>(p.batch_size) * p.num_qo_heads,
               -std::numeric_limits<double>::infinity());
  std::vector<double> s, qv(hd);
  for (int b = 0; b < p.batch_size; ++b) {
    const int len = p.pages.seq_lens[b];
    if (len == 0) continue;
    s.resize(len);
    const auto offset = [&](int t, int kv) {
      const int64_t page = p.pages.indices[p.pages.indptr[b] + t / p.pages.page_size];
      return page * p.page_stride + kv * p.head_stride + (t % p.pages.page_size) * p.token_stride;
    };
    for (int h = 0; h < p.num_qo_heads; ++h) {
      const int kv = h / ratio;
      for (int d = 0; d < hd; ++d)
        qv[d] = half_bits_to_float(q[b * p.q_stride_batch + h * p.q_stride_head + d]);
      double m = -std::numeric_limits<double>::infinity();
      for (int t = 0; t < len; ++t) {
        const uint16_t* k = kc + offset(t, kv);
        double acc = 0.0;
        for (int d = 0; d < hd; ++d) acc += qv[d] * half_bits_to_float(k[d]);
        s[t] = acc * p.sm_scale;
        m = std::max(m, s[t]);
      }
      double l = 0.0;
      double* o = &r.out[(static_cast<size_t>(b) * p.num_qo_heads + h) * hd];
      for (int t = 0; t < len; ++t) {
        const double w = std::exp(s[t] - m);
        l += w;
        const uint16_t* v = vc + offset(t, kv);
        for (int d = 0; d < hd; ++d) o[d] += w * half_bits_to_float(v[d]);
      }
      for (int d = 0; d < hd; ++d) o[d] /= l;
      r.lse[static_cast<size_t>(b) * p.num_qo_heads + h] = m + std::log(l);
    }
  }
  return r;
}

void paged_decode(const PagedDecodeParams& p) {
  const DecodeValues r = paged_decode_values(p);
  auto* out = static_cast<uint16_t*>(p.out);
  for (int b = 0; b < p.batch_size; ++b)
    for (int h = 0; h < p.num_qo_heads; ++h) {
      const size_t bh = static_cast<size_t>(b) * p.num_qo_heads + h;
      for (int d = 0; d < p.head_dim; ++d)
        out[b * p.out_stride_batch + h * p.out_stride_head + d] =
            float_to_half_bits(static_cast<float>(r.out[bh * p.head_dim + d]));
      if (p.lse) p.lse[bh] = static_cast<float>(r.lse[bh]);
    }
}

}  // namespace latentkv::reference
