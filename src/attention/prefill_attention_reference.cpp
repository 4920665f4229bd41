#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/prefill_attention.h"

namespace latentkv::reference {

void prefill_attention(const PrefillAttentionParams& p) {
  const Status st = prefill_attention_is_supported(p);
  if (!st.ok()) throw Error(st.code(), st.message());
  const int ratio = p.num_qo_heads / p.num_kv_heads, hd = p.head_dim;
  const int n = p.num_queries, T = p.num_keys;
  const auto* q = static_cast<const uint16_t*>(p.q);
  const auto* kc = static_cast<const uint16_t*>(p.k_cache);
  const auto* vc = static_cast<const uint16_t*>(p.v_cache);
  auto* out = static_cast<uint16_t*>(p.out);
  std::vector<float> qv(hd), o(hd), s(T);
  for (int h = 0; h < p.num_qo_heads; ++h) {
    const int kv = h / ratio;
    const int64_t buf_head = p.kv_head_index ? p.kv_head_index[kv] : kv;
    const auto offset = [&](int t) {
      return int64_t{p.pages[t / p.page_size]} * p.page_stride + buf_head * p.head_stride +
             int64_t{t % p.page_size} * p.token_stride;
    };
    for (int i = 0; i < n; ++i) {
      const int last = T - n + i;  // causal: keys [0, last]
      for (int d = 0; d < hd; ++d)
        qv[d] = half_bits_to_float(q[i * p.q_stride_token + h * p.q_stride_head + d]);
      float m = -std::numeric_limits<float>::infinity();
      for (int t = 0; t <= last; ++t) {
        const uint16_t* k = kc + offset(t);
        float acc = 0.0f;
        for (int d = 0; d < hd; ++d) acc += qv[d] * half_bits_to_float(k[d]);
        s[t] = acc * p.sm_scale;
        m = std::max(m, s[t]);
      }
      std::fill(o.begin(), o.end(), 0.0f);
      float l = 0.0f;
      for (int t = 0; t <= last; ++t) {
        const float w = std::exp(s[t] - m);
        l += w;
        const uint16_t* v = vc + offset(t);
        for (int d = 0; d < hd; ++d) o[d] += w * half_bits_to_float(v[d]);
      }
      for (int d = 0; d < hd; ++d)
        out[i * p.out_stride_token + h * p.out_stride_head + d] = float_to_half_bits(o[d] / l);
    }
  }
}

}  // namespace latentkv::reference
