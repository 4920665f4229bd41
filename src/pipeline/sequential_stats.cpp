#include "latentkv/pipeline/sequential_stats.h"

#include <memory>

#include "latentkv/reference/latent_attention.h"
#include "latentkv/status.h"

namespace latentkv {

std::vector<CalibrationTarget> collect_sequential_targets(
    const LlamaWeights& weights, const std::vector<LatentLayerFactors>& factors,
    const LatentCacheConfig& cache, const std::vector<std::vector<TokenId>>& windows,
    const ProgressFn& progress) {
  LKV_CHECK_ARG(!windows.empty(), "sequential calibration needs at least one window");
  const LlamaConfig& c = weights.config;
  const int d = c.d_model;
  std::vector<CalibrationTarget> targets(c.n_layers);
  for (CalibrationTarget& t : targets) {
    t.gram_input = Eigen::MatrixXd::Zero(d, d);
    t.cross = Eigen::MatrixXd::Zero(d, d);
    t.gram_target = Eigen::MatrixXd::Zero(d, d);
  }

  LlamaForward original(weights, KvDtype::kF32);
  LlamaForward compressed(weights, std::make_unique<LatentAttention>(weights, factors, cache));
  std::vector<Eigen::MatrixXd> x_orig(c.n_layers);  // this window's original inputs, fp64
  original.set_layer_input_observer(
      [&](int layer, const Eigen::Ref<const MatrixRM>& x) { x_orig[layer] = x.cast<double>(); });
  compressed.set_layer_input_observer([&](int layer, const Eigen::Ref<const MatrixRM>& x) {
    const Eigen::MatrixXd xt = x.cast<double>();
    const Eigen::MatrixXd& xo = x_orig[layer];
    CalibrationTarget& t = targets[layer];
    t.gram_input.selfadjointView<Eigen::Lower>().rankUpdate(xt.transpose());
    t.gram_target.selfadjointView<Eigen::Lower>().rankUpdate(xo.transpose());
    t.cross.noalias() += xt.transpose() * xo;
  });
  const int64_t total = static_cast<int64_t>(windows.size());
  for (int64_t i = 0; i < total; ++i) {
    original.reset();
    original.forward(windows[i], nullptr);
    compressed.reset();
    compressed.forward(windows[i], nullptr);
    if (progress) progress(i + 1, total);
  }
  for (CalibrationTarget& t : targets) {  // rankUpdate filled the lower triangles only
    t.gram_input = t.gram_input.selfadjointView<Eigen::Lower>();
    t.gram_target = t.gram_target.selfadjointView<Eigen::Lower>();
  }
  return targets;
}

}  // namespace latentkv
