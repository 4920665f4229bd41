#include <algorithm>
#include <cstring>

#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_append.h"

namespace latentkv::reference {

std::vector<float> latent_append_latents(const LatentAppendParams& p) {
  const Status st = latent_append_gemm_is_supported(p);
  if (!st.ok()) throw Error(st.code(), st.message());
  const int total = p.num_groups * (p.k.rank + p.v.rank);
  std::vector<float> out(static_cast<size_t>(p.num_tokens) * total);
  std::vector<double> x(p.d_model);
  for (int t = 0; t < p.num_tokens; ++t) {
    for (int i = 0; i < p.d_model; ++i) x[i] = half_bits_to_float(p.x[t * p.x_stride + i]);
    for (int r = 0; r < total; ++r) {
      const uint16_t* a = p.a_cat + static_cast<int64_t>(r) * p.d_model;
      double acc = 0.0;
      for (int i = 0; i < p.d_model; ++i) acc += x[i] * half_bits_to_float(a[i]);
      out[static_cast<size_t>(t) * total + r] = static_cast<float>(acc);
    }
  }
  return out;
}

void latent_append_store(const LatentAppendParams& p, const float* latents, int64_t stride) {
  const Status st = latent_append_is_supported(p);
  if (!st.ok()) throw Error(st.code(), st.message());
  const int cap = p.window.ring_capacity();
  std::vector<float> row(1024);
  for (int b = 0; b < p.batch_size; ++b) {
    const int64_t t_old = p.pages.seq_lens[b];
    const int64_t n = p.append_indptr[b + 1] - p.append_indptr[b];
    const int64_t q_old = p.window.quantized_len(t_old), q_new = p.window.quantized_len(t_old + n);
    for (int kvsel = 0; kvsel < 2; ++kvsel) {
      const LatentCacheView& v = kvsel ? p.v : p.k;
      auto* codes = static_cast<uint8_t*>(v.codes);
      auto* sz = static_cast<uint8_t*>(v.scale_zero);
      auto* ring = static_cast<uint8_t*>(v.ring);
      for (int g = 0; g < p.num_groups; ++g) {
        const int col0 = kvsel ? p.num_groups * p.k.rank + g * v.rank : g * v.rank;
        const auto ring_row = [&](int64_t pos) {
          return reinterpret_cast<uint16_t*>(ring + b * v.ring_seq_stride +
                                             g * v.ring_group_stride +
                                             (pos % cap) * v.ring_token_stride);
        };
        const auto new_row = [&](int64_t pos) {
          return latents + (p.append_indptr[b] + (pos - t_old)) * stride + col0;
        };
        // Quantize the positions that leave the window (reads the ring before it is rewritten).
        for (int64_t pos = q_old; pos < q_new; ++pos) {
          for (int c = 0; c < v.rank; ++c)
            row[c] = pos < t_old ? half_bits_to_float(ring_row(pos)[c])
                                 : half_bits_to_float(float_to_half_bits(new_row(pos)[c]));
          const int64_t page = p.pages.indices[p.pages.indptr[b] + pos / p.pages.page_size];
          const int64_t slot = pos % p.pages.page_size;
          uint8_t* dst = codes + page * v.page_stride + g * v.group_stride + slot * v.token_stride;
          const int nqg = latent_num_quant_groups(v.rank, v.quant_config());
          std::vector<uint16_t> scale(nqg), zero(nqg);
          quantize_latent(row.data(), v.rank, v.quant_config(), dst, scale.data(), zero.data());
          if (nqg > 0) {
            auto* pair = reinterpret_cast<uint16_t*>(
                sz + page * v.sz_page_stride + g * v.sz_group_stride + slot * v.sz_token_stride);
            for (int i = 0; i < nqg; ++i) {
              pair[2 * i] = scale[i];
              pair[2 * i + 1] = zero[i];
            }
          }
        }
        for (int64_t pos = std::max(q_new, t_old); pos < t_old + n; ++pos) {
          uint16_t* dst = ring_row(pos);
          for (int c = 0; c < v.rank; ++c) dst[c] = float_to_half_bits(new_row(pos)[c]);
        }
      }
    }
  }
  for (int b = 0; b < p.batch_size; ++b)
    p.seq_lens_out[b] = p.pages.seq_lens[b] + p.append_indptr[b + 1] - p.append_indptr[b];
}

void latent_append(const LatentAppendParams& p) {
  const std::vector<float> latents = latent_append_latents(p);
  latent_append_store(p, latents.data(), p.num_groups * (p.k.rank + p.v.rank));
}

}  // namespace latentkv::reference
