// Test fixture: a paged latent cache of one layer built on the host with the CPU reference store
// (reference::latent_append_store), and its device mirror. Used by the latent decode and append
// GPU tests.
#pragma once

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "latentkv/attention/latent_cache.h"
#include "latentkv/reference/latent_append.h"

namespace latentkv::testing {

struct HostLatentCache {
  int batch = 0, num_groups = 0;
  LatentWindowPolicy window;
  LatentCacheLayout kl, vl;
  std::vector<uint8_t> k_codes, k_sz, k_ring, v_codes, v_sz, v_ring;
  std::vector<int32_t> indptr, indices, seq_lens;
  int page_size = 1;

  LatentCacheView view(bool v, uint8_t* codes, uint8_t* sz, uint8_t* ring) const {
    LatentCacheView out = v ? vl.view : kl.view;
    out.codes = codes;
    out.scale_zero = sz;
    out.ring = ring;
    return out;
  }
  LatentCacheView kview() { return view(false, k_codes.data(), k_sz.data(), k_ring.data()); }
  LatentCacheView vview() { return view(true, v_codes.data(), v_sz.data(), v_ring.data()); }
  PageTableView pages() const {
    PageTableView p;
    p.indptr = indptr.data();
    p.indices = indices.data();
    p.seq_lens = seq_lens.data();
    p.page_size = page_size;
    return p;
  }
};

/// Allocates pages for `capacity[b]` tokens per sequence (shuffled page ids, a few spare pages)
/// and an empty cache. Buffers are filled with a byte pattern (never read as data).
inline HostLatentCache make_empty_cache(const std::vector<int>& capacity, int num_groups,
                                        int rank_k, int rank_v, const QuantConfig& quant,
                                        int page_size, const LatentWindowPolicy& window,
                                        std::mt19937& rng) {
  HostLatentCache c;
  c.batch = static_cast<int>(capacity.size());
  c.num_groups = num_groups;
  c.window = window;
  c.page_size = page_size;
  c.indptr.push_back(0);
  int64_t pages = 0;
  for (int len : capacity) {
    pages += (len + page_size - 1) / page_size;
    c.indptr.push_back(static_cast<int32_t>(pages));
  }
  const int64_t pool = pages + 3;
  std::vector<int32_t> ids(pool);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  c.indices.assign(ids.begin(), ids.begin() + pages);
  c.kl = make_latent_cache_layout(num_groups, rank_k, quant, page_size, pool, window, c.batch);
  c.vl = make_latent_cache_layout(num_groups, rank_v, quant, page_size, pool, window, c.batch);
  c.k_codes.assign(c.kl.codes_bytes, 0x5A);
  c.k_sz.assign(std::max<int64_t>(c.kl.scale_zero_bytes, 4), 0x5A);
  c.k_ring.assign(std::max<int64_t>(c.kl.ring_bytes, 16), 0x5A);
  c.v_codes.assign(c.vl.codes_bytes, 0x5A);
  c.v_sz.assign(std::max<int64_t>(c.vl.scale_zero_bytes, 4), 0x5A);
  c.v_ring.assign(std::max<int64_t>(c.vl.ring_bytes, 16), 0x5A);
  c.seq_lens.assign(c.batch, 0);
  return c;
}

/// Builds a cache holding lens[b] tokens per sequence with N(0, sigma²) latents (stored with the
/// reference append, so pages and ring follow the window policy).
inline HostLatentCache make_filled_cache(const std::vector<int>& lens, int num_groups, int rank_k,
                                         int rank_v, const QuantConfig& quant, int page_size,
                                         const LatentWindowPolicy& window, float sigma,
                                         std::mt19937& rng) {
  HostLatentCache c =
      make_empty_cache(lens, num_groups, rank_k, rank_v, quant, page_size, window, rng);
  const int total = std::accumulate(lens.begin(), lens.end(), 0);
  const int width = num_groups * (rank_k + rank_v);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> latents(static_cast<size_t>(total) * width);
  for (auto& x : latents) x = nd(rng);
  std::vector<int32_t> append_indptr(1, 0);
  for (int len : lens) append_indptr.push_back(append_indptr.back() + len);
  LatentAppendParams ap;
  ap.batch_size = c.batch;
  ap.num_groups = num_groups;
  ap.d_model = 1;
  ap.num_tokens = total;
  ap.append_indptr = append_indptr.data();
  ap.k = c.kview();
  ap.v = c.vview();
  ap.window = window;
  ap.pages = c.pages();
  ap.seq_lens_out = c.seq_lens.data();
  reference::latent_append_store(ap, latents.data(), width);
  return c;
}

}  // namespace latentkv::testing
