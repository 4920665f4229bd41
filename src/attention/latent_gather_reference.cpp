#include <cstring>
#include <vector>

#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_gather.h"

namespace latentkv::reference {

void latent_gather(const LatentGatherParams& p) {
  const Status st = latent_gather_is_supported(p);
  if (!st.ok()) throw Error(st.code(), st.message());
  const LatentCacheView& v = p.cache;
  const int rank = v.rank;
  const size_t row_bytes = 2 * static_cast<size_t>(rank);
  const int nqg = v.num_quant_groups();
  const int64_t qlen = p.window.quantized_len(p.num_tokens);
  std::vector<uint16_t> scale(nqg), zero(nqg);
  std::vector<float> x(rank);
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    for (int g = 0; g < p.num_groups; ++g) {
      uint16_t* dst = p.out + t * p.out_stride + int64_t{g} * rank;
      if (t >= qlen) {
        const uint8_t* src = static_cast<const uint8_t*>(v.ring) + p.seq_slot * v.ring_seq_stride +
                             g * v.ring_group_stride +
                             (t % p.window.ring_capacity()) * v.ring_token_stride;
        std::memcpy(dst, src, row_bytes);
        continue;
      }
      const int64_t page = p.pages[t / p.page_size], slot = t % p.page_size;
      const uint8_t* codes = static_cast<const uint8_t*>(v.codes) + page * v.page_stride +
                             g * v.group_stride + slot * v.token_stride;
      if (v.bits == 16) {  // the stored fp16 latent (dequantize_latent is the identity on it)
        std::memcpy(dst, codes, row_bytes);
        continue;
      }
      // (scale, zero) fp16 pairs, one per quant group (latent_cache.h).
      const uint8_t* sz = static_cast<const uint8_t*>(v.scale_zero) + page * v.sz_page_stride +
                          g * v.sz_group_stride + slot * v.sz_token_stride;
      for (int i = 0; i < nqg; ++i) {
        std::memcpy(&scale[i], sz + 4 * i, 2);
        std::memcpy(&zero[i], sz + 4 * i + 2, 2);
      }
      dequantize_latent(codes, scale.data(), zero.data(), rank, v.quant_config(), x.data());
      for (int c = 0; c < rank; ++c) dst[c] = float_to_half_bits(x[c]);
    }
  }
}

}  // namespace latentkv::reference
