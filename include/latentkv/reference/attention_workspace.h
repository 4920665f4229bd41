// Scratch memory of the CPU reference caches (LatentKvCache, KiviKvCache): rebuilt keys,
// dequantized values, scores. It is sized by the longest sequence seen, so one workspace is shared
// by all layers of a model (they run one after the other) instead of one per layer; never share
// one between caches that run concurrently.
#pragma once

#include <memory>
#include <vector>

#include "latentkv/model/llama.h"

namespace latentkv {

struct AttentionWorkspace {
  MatrixRM q;          ///< [n, num_qo_heads*head_dim] queries after RoPE, pre-scaled
  MatrixRM projected;  ///< [n, ...] projections of the chunk (latents, or keys/values)
  MatrixRM keys;       ///< [T, num_kv_heads*head_dim] keys after RoPE, original head order
  MatrixRM latents;    ///< [T, ...] dequantized latents (or values)
  MatrixRM mixed;      ///< [n, ...] attention-weighted values (latent space or head space)
  MatrixRM heads;      ///< [n, num_qo_heads*head_dim] per-head outputs before o_proj
  std::vector<std::vector<float>> scores;  ///< one score buffer per thread
};

}  // namespace latentkv
