// The shell shared by the CPU attention backends that keep one cache object per layer
// (LatentAttention, KiviAttention): layer bounds checks, reset / reserve / forward delegation and
// byte sums over the layers.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <utility>
#include <vector>

#include "latentkv/model/attention_backend.h"
#include "latentkv/status.h"

namespace latentkv {

/// AttentionBackend over a vector of per-layer caches. `Cache` provides reset(), size(),
/// reserve(n), forward(x, positions, out), residual_bytes_per_token() and bytes_held().
template <typename Cache>
class PerLayerAttention : public AttentionBackend {
 public:
  void reset() override {
    for (Cache& c : layers_) c.reset();
  }
  int64_t cached_tokens(int l) const override { return layer(l).size(); }
  void reserve(int64_t num_tokens) override {
    for (Cache& c : layers_) c.reserve(num_tokens);
  }
  void forward(int l, const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions,
               Eigen::Ref<MatrixRM> out) override {
    layer(l).forward(x, positions, out);
  }

  int num_layers() const { return static_cast<int>(layers_.size()); }
  /// Throws Error(kInvalidArgument) for a layer outside [0, num_layers()).
  Cache& layer(int l) {
    check_layer(l);
    return layers_[l];
  }
  const Cache& layer(int l) const {
    check_layer(l);
    return layers_[l];
  }
  /// Σ over layers of the cache's bytes per token while in the fp16 residual window.
  int64_t residual_bytes_per_token() const {
    return sum<int64_t>([](const Cache& c) { return c.residual_bytes_per_token(); });
  }
  /// Σ over layers of the bytes the caches hold now.
  int64_t bytes_held() const {
    return sum<int64_t>([](const Cache& c) { return c.bytes_held(); });
  }

 protected:
  /// Builds layers 0..n_layers-1 with make(l); an error names its layer.
  template <typename Make>
  void build(int n_layers, Make make) {
    layers_.reserve(n_layers);
    for (int l = 0; l < n_layers; ++l) {
      try {
        layers_.push_back(make(l));
      } catch (const Error& e) {
        LKV_THROW(e.code(), "layer ", l, ": ", e.what());
      }
    }
  }
  /// Σ over layers of f(cache), accumulated in T.
  template <typename T, typename F>
  T sum(F f) const {
    T total = 0;
    for (const Cache& c : layers_) total += f(c);
    return total;
  }

 private:
  void check_layer(int l) const {
    LKV_CHECK_ARG(l >= 0 && l < num_layers(), "layer ", l, " out of range [0, ", num_layers(), ")");
  }

  std::vector<Cache> layers_;
};

}  // namespace latentkv
