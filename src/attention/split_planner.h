// Split-KV planning shared by the decode ops: how many token splits per (sequence, head block).
#pragma once

#include <cstdint>

namespace latentkv::detail {

struct SplitChoice {
  int num_splits = 1;
  int tokens_per_split = 0;
};

/// CTAs of another kind that run after the split CTAs in the same grid (the residual window's
/// CTAs in the warpgroup decode kernel): `ctas` of `cost_tiles` (> 0; else ignored) each.
struct TrailingCtas {
  int64_t ctas = 0;
  double cost_tiles = 0.0;
};

/// Picks the split count minimizing a wave model: waves(ctas) × (tiles per split + fixed cost),
/// with base_ctas CTAs per split index and ctas_per_sm resident CTAs per multiprocessor.
/// Trailing CTAs first take the CTA slots the last wave leaves free (as many in turn as fit in
/// that wave's time), the rest run after it. tokens_per_split is a multiple of `tile` covering
/// max_seq_len.
SplitChoice choose_splits(int64_t base_ctas, int max_seq_len, int tile, int ctas_per_sm,
                          int num_sms, double fixed_cost_tiles, TrailingCtas trailing = {});

/// Rounds up to a multiple of 256 bytes (workspace sub-buffer alignment).
inline int64_t align256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace latentkv::detail
