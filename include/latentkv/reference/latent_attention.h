// The latent KV cache as the attention backend of the CPU forward pass: LlamaForward runs with
// one LatentKvCache per layer (design §4), so only latents are ever cached.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "latentkv/model/attention_backend.h"
#include "latentkv/model/llama.h"
#include "latentkv/reference/latent_kv_cache.h"

namespace latentkv {

/// AttentionBackend holding a LatentKvCache per layer for one sequence; all layers share one
/// AttentionWorkspace.
class LatentAttention final : public AttentionBackend {
 public:
  /// `factors` has one entry per layer (K/V factors and optional folded W_o); `config` applies
  /// to every layer. `weights` must outlive the backend. Throws Error(kInvalidArgument) when the
  /// layer count differs or a layer's factors are inconsistent (see LatentKvCache).
  LatentAttention(const LlamaWeights& weights, std::vector<LatentLayerFactors> factors,
                  const LatentCacheConfig& config);

  void reset() override;
  int64_t cached_tokens(int layer) const override;
  void reserve(int64_t num_tokens) override;
  void forward(int layer, const Eigen::Ref<const MatrixRM>& x,
               const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) override;

  int num_layers() const { return static_cast<int>(layers_.size()); }
  LatentKvCache& layer(int l);
  const LatentKvCache& layer(int l) const;

  /// Σ over layers of LatentKvCache::bytes_per_token() (quantized tokens, scale/zero included).
  int64_t bytes_per_token() const;
  /// Σ over layers of LatentKvCache::residual_bytes_per_token() (fp16 window tokens).
  int64_t residual_bytes_per_token() const;
  /// Σ over layers of LatentKvCache::bytes_held().
  int64_t bytes_held() const;

 private:
  std::vector<LatentKvCache> layers_;
};

}  // namespace latentkv
