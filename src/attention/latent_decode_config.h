// Launch configuration of the fused latent decode kernel, shared by planning (host .cpp) and the
// launcher (.cu).
#pragma once

#include "latent_decode_layout.h"
#include "latentkv/attention/latent_decode.h"

namespace latentkv::detail {

/// Largest KV heads per CTA in {4, 2, 1} that divides group_size, keeps all query rows in one
/// m16 tile (hpc·ratio <= 16) and fits the key factors in registers; 0 when none does.
inline int latent_heads_per_cta(int group_size, int ratio, int rank_k, int bits) {
  for (int hpc : {4, 2, 1})
    if (group_size % hpc == 0 && hpc * ratio <= kernels::kLatentMaxRows &&
        kernels::latent_hpc_fits(hpc, rank_k, bits))
      return hpc;
  return 0;
}

/// Whether the residual-window launch is needed (bits < 16 with a non-empty ring).
inline bool latent_has_residual_launch(const LatentDecodeParams& p) {
  return p.k.bits < 16 && p.window.ring_capacity() > 0;
}

/// Shared memory limit per block on sm_90 (opt-in).
constexpr int kMaxSmemPerBlock = 227 * 1024;

}  // namespace latentkv::detail
