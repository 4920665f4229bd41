#include "latentkv/pipeline/calibration.h"

#include "latentkv/fisher/fisher_calibration.h"
#include "latentkv/status.h"

namespace latentkv {

void CalibrationWindows::validate() const {
  LKV_CHECK_ARG(num_windows >= 1, "calibration needs at least one window, got ", num_windows);
  LKV_CHECK_ARG(window_len >= 2, "calibration window length must be >= 2, got ", window_len);
}

std::string CalibrationWindows::describe() const {
  return str_cat(num_windows, "x", window_len, bos ? "+bos" : "");
}

std::string calibration_data_key(const std::string& text_sha256, const CalibrationWindows& w) {
  return str_cat("text-sha256 ", text_sha256, " windows ", w.describe());
}

std::vector<std::vector<TokenId>> tokenize_calibration_windows(const std::vector<TokenId>& text,
                                                               const CalibrationWindows& w,
                                                               TokenId bos_id) {
  w.validate();
  LKV_CHECK_ARG(!w.bos || bos_id >= 0,
                "calibration windows start with BOS but the vocabulary has none");
  return calibration_windows(text, w.window_len, w.num_windows, w.bos ? bos_id : -1);
}

CalibStats collect_calib_stats(const LlamaWeights& weights,
                               const std::vector<std::vector<TokenId>>& windows,
                               const ProgressFn& progress) {
  LKV_CHECK_ARG(!windows.empty(), "calibration needs at least one window");
  const LlamaConfig& c = weights.config;
  CalibStats stats = CalibStats::empty(c.n_layers, c.d_model);
  LlamaForward model(weights, KvDtype::kF32);
  model.set_layer_input_observer([&stats](int layer, const Eigen::Ref<const MatrixRM>& x) {
    stats.layers[layer].accumulate(x);
  });
  const int64_t total = static_cast<int64_t>(windows.size());
  for (int64_t i = 0; i < total; ++i) {
    model.reset();
    model.forward(windows[i], /*logits=*/nullptr);
    if (progress) progress(i + 1, total);
  }
  return stats;
}

}  // namespace latentkv
