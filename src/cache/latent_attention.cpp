#include "latentkv/reference/latent_attention.h"

#include "latentkv/status.h"

namespace latentkv {

LatentAttention::LatentAttention(const LlamaWeights& weights,
                                 std::vector<LatentLayerFactors> factors,
                                 const LatentCacheConfig& config) {
  const int n_layers = weights.config.n_layers;
  LKV_CHECK_ARG(static_cast<int>(factors.size()) == n_layers, "latent attention got factors for ",
                factors.size(), " layers, the model has ", n_layers);
  LKV_CHECK_ARG(static_cast<int>(weights.layers.size()) == n_layers, "model has ",
                weights.layers.size(), " layers, config says ", n_layers);
  auto workspace = std::make_shared<AttentionWorkspace>();
  build(n_layers, [&](int l) {
    return LatentKvCache(weights.config, weights.layers[l], std::move(factors[l]), config,
                         workspace);
  });
}

}  // namespace latentkv
