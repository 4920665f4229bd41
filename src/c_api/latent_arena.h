// Placement of one layer's latent cache (K and V pools, scale/zero pools, residual rings) inside
// one caller-owned arena, and the validation of a cache description.
#pragma once

#include <cstdint>

#include "latentkv/attention/latent_cache.h"
#include "latentkv/c_api.h"

namespace latentkv::capi {

/// Segment offsets (bytes from the arena base, multiples of 256) and sizes of a description.
struct LatentArena {
  LatentCacheLayout k, v;  ///< views with strides filled, pointers null
  LatentWindowPolicy window;
  int64_t k_codes = 0, v_codes = 0, k_sz = 0, v_sz = 0, k_ring = 0, v_ring = 0;  ///< offsets
  int64_t total_bytes = 0;
  int64_t bytes_per_page = 0;  ///< K + V codes and scale/zero per page, padded
};

/// The window policy of a description (chunk 0 is read as 1).
LatentWindowPolicy latent_window(const lkv_latent_cache_desc& desc);

/// Validates `desc` (everything an append needs: ranks multiple of 16 in [16, 1024], bits 16, 2,
/// 3, 4 or 8, quant_group, page_size 1..65536, num_groups 1..4096, num_pages 0..2^31-1,
/// max_batch 1..256, window) and places it for `num_pages` pages. Throws Error on bad input or
/// when the arena would exceed 2^62 bytes.
LatentArena latent_arena(const lkv_latent_cache_desc& desc, int64_t num_pages);

}  // namespace latentkv::capi
