// The latent KV cache as the attention backend of the CPU forward pass: LlamaForward runs with
// one LatentKvCache per layer (design §4), so only latents are ever cached.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "latentkv/model/attention_backend.h"
#include "latentkv/model/llama.h"
#include "latentkv/reference/latent_kv_cache.h"
#include "latentkv/reference/per_layer_attention.h"

namespace latentkv {

/// AttentionBackend holding a LatentKvCache per layer for one sequence; all layers share one
/// AttentionWorkspace.
class LatentAttention final : public PerLayerAttention<LatentKvCache> {
 public:
  /// `factors` has one entry per layer (K/V factors and optional folded W_o); `config` applies
  /// to every layer. `weights` must outlive the backend. Throws Error(kInvalidArgument) when the
  /// layer count differs or a layer's factors are inconsistent (see LatentKvCache).
  LatentAttention(const LlamaWeights& weights, std::vector<LatentLayerFactors> factors,
                  const LatentCacheConfig& config);

  /// Σ over layers of LatentKvCache::bytes_per_token() (quantized tokens, scale/zero included).
  int64_t bytes_per_token() const {
    return sum<int64_t>([](const LatentKvCache& c) { return c.bytes_per_token(); });
  }
};

}  // namespace latentkv
