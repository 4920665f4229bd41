// Launch configuration of the fused latent decode kernel, shared by planning (host .cpp) and the
// launcher (.cu).
#pragma once

#include "attention/split_planner.h"
#include "latent_decode_layout.h"
#include "latentkv/attention/latent_decode.h"

namespace latentkv::detail {

/// Largest KV heads per CTA in {4, 3, 2, 1} that divides group_size, keeps all query rows in one
/// m16 tile (hpc·ratio <= 16) and fits the key factors in registers; 0 when none does. 3 (a
/// group of 3 or 6) only for GQA: the key-rebuild kernel form takes any head count, the folded
/// MHA form (ratio 1) splits its quad reduction over 1, 2 or 4 heads.
inline int latent_heads_per_cta(int group_size, int ratio, int rank_k, int bits) {
  for (int hpc : {4, 3, 2, 1})
    if (group_size % hpc == 0 && (hpc != 3 || ratio > 1) &&
        hpc * ratio <= kernels::kLatentMaxRows && kernels::latent_hpc_fits(hpc, rank_k, bits))
      return hpc;
  return 0;
}

/// Whether the residual window needs fp16 CTAs of its own (bits < 16 with a non-empty ring): a
/// launch of their own, or CTAs in the warpgroup kernel's grid.
inline bool latent_has_residual_launch(const LatentDecodeParams& p) {
  return p.k.bits < 16 && p.window.ring_capacity() > 0;
}

/// Most partial-result slots of the residual window's CTAs: one per kernel tile of the ring.
inline int latent_residual_max_slots(const LatentDecodeParams& p) {
  return latent_has_residual_launch(p)
             ? (p.window.ring_capacity() + kernels::kLatentTile - 1) / kernels::kLatentTile
             : 0;
}

/// KV heads per CTA of the residual window's fp16 kernel.
inline int latent_residual_heads_per_cta(const LatentDecodeParams& p) {
  return latent_heads_per_cta(p.group_size, p.num_qo_heads / p.num_kv_heads, p.k.rank, 16);
}

/// CTAs of the residual window per slot: one per block of its heads per CTA, per sequence.
inline int64_t latent_residual_ctas_per_slot(const LatentDecodeParams& p) {
  return int64_t{p.batch_size} * (p.num_kv_heads / latent_residual_heads_per_cta(p));
}

/// Ring tiles each of `slots` residual-window slots covers.
inline int latent_residual_tiles_per_slot(const LatentDecodeParams& p, int slots) {
  return (latent_residual_max_slots(p) + slots - 1) / slots;
}

/// Slots the plan gives the residual window (fp16 CTAs, 1 per SM; on Hopper they run in the
/// warpgroup kernel's grid after the page CTAs): one per ring tile while all its CTAs fit one
/// wave, so that the tiles run side by side; fewer when they do not, so that a CTA loads its
/// folded factors once for several tiles instead of queueing behind other CTAs.
inline int latent_residual_slots(const LatentDecodeParams& p, int num_sms) {
  const int most = latent_residual_max_slots(p);
  if (most == 0) return 0;
  const int64_t ctas = latent_residual_ctas_per_slot(p);
  int slots = most;
  while (slots > 1 && ctas * slots > num_sms) --slots;
  return slots;
}

/// Whether the decode folds each query into its key factors (latent_query_fold.cuh) instead of
/// rebuilding keys: MHA, where a KV head is read by one query head only, so the fold costs no
/// more tensor work than the rebuild and removes the per-key RoPE / score epilogue.
inline bool latent_uses_fold(const LatentDecodeParams& p) {
  return p.num_kv_heads > 0 && p.num_qo_heads == p.num_kv_heads;
}

/// Whether the problem has the shape of the warpgroup form (folded MHA, latent_wg_takes); it
/// runs on it when the build and device also have sm_90a (latent_uses_wgmma).
inline bool latent_wg_shape(const LatentDecodeParams& p) {
  return latent_uses_fold(p) &&
         kernels::latent_wg_takes(p.head_dim, p.k.bits,
                                  latent_heads_per_cta(p.group_size, 1, p.k.rank, p.k.bits),
                                  p.k.rank, p.v.rank);
}

/// Byte offsets of the decode workspace regions (-1 when absent): split partials, then the
/// folded query factors.
struct LatentWorkspaceLayout {
  int64_t part_o = -1, part_lse = -1, w16 = -1, w8 = -1, w8_zsum = -1, w8_beta = -1;
  int64_t total = 0;
};

inline LatentWorkspaceLayout latent_workspace_layout(const LatentDecodeParams& p, int slots) {
  LatentWorkspaceLayout l;
  const int64_t rows = int64_t{p.batch_size} * p.num_qo_heads;
  int64_t off = 0;
  const auto take = [&](int64_t bytes) {
    const int64_t at = off;
    off += align256(bytes);
    return at;
  };
  // With b_v, a single split's result goes to part_o too (fp32), for the combine-up kernel.
  if (slots > 1 || p.b_v) {
    l.part_o = take(rows * slots * p.v.rank * 4);
    l.part_lse = take(rows * slots * 4);
  }
  if (latent_uses_fold(p)) {
    const int64_t w = rows * p.head_dim * p.k.rank;
    l.w16 = take(2 * w);
    if (p.k.bits < 16) {
      l.w8 = take(w);
      l.w8_zsum = take(rows * p.head_dim * 4);
      l.w8_beta = take(rows * (p.head_dim / 16) * 4);
    }
  }
  l.total = off;
  return l;
}

/// Shared memory limit per block on sm_90 (opt-in).
constexpr int kMaxSmemPerBlock = 227 * 1024;

}  // namespace latentkv::detail
