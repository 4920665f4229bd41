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
  layers_.reserve(n_layers);
  for (int l = 0; l < n_layers; ++l) {
    try {
      layers_.emplace_back(weights.config, weights.layers[l], std::move(factors[l]), config,
                           workspace);
    } catch (const Error& e) {
      LKV_THROW(e.code(), "layer ", l, ": ", e.what());
    }
  }
}

LatentKvCache& LatentAttention::layer(int l) {
  LKV_CHECK_ARG(l >= 0 && l < num_layers(), "layer ", l, " out of range [0, ", num_layers(), ")");
  return layers_[l];
}

const LatentKvCache& LatentAttention::layer(int l) const {
  LKV_CHECK_ARG(l >= 0 && l < num_layers(), "layer ", l, " out of range [0, ", num_layers(), ")");
  return layers_[l];
}

void LatentAttention::reset() {
  for (auto& c : layers_) c.reset();
}

int64_t LatentAttention::cached_tokens(int l) const { return layer(l).size(); }

void LatentAttention::reserve(int64_t num_tokens) {
  for (auto& c : layers_) c.reserve(num_tokens);
}

void LatentAttention::forward(int l, const Eigen::Ref<const MatrixRM>& x,
                              const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) {
  layer(l).forward(x, positions, out);
}

int64_t LatentAttention::bytes_per_token() const {
  int64_t bytes = 0;
  for (const auto& c : layers_) bytes += c.bytes_per_token();
  return bytes;
}

int64_t LatentAttention::residual_bytes_per_token() const {
  int64_t bytes = 0;
  for (const auto& c : layers_) bytes += c.residual_bytes_per_token();
  return bytes;
}

int64_t LatentAttention::bytes_held() const {
  int64_t bytes = 0;
  for (const auto& c : layers_) bytes += c.bytes_held();
  return bytes;
}

}  // namespace latentkv
