#include "latentkv/fisher/fisher_calibration.h"

#include "latentkv/fisher/llama_backward.h"
#include "latentkv/status.h"

namespace latentkv {

std::vector<std::vector<TokenId>> calibration_windows(const std::vector<TokenId>& tokens,
                                                      int window_len, int num_windows,
                                                      TokenId bos) {
  LKV_CHECK_ARG(window_len >= 2, "calibration window length must be >= 2, got ", window_len);
  LKV_CHECK_ARG(num_windows >= 1, "number of calibration windows must be >= 1, got ", num_windows);
  const int64_t text_per_window = bos >= 0 ? window_len - 1 : window_len;
  const int64_t n = static_cast<int64_t>(tokens.size());
  LKV_CHECK_ARG(n >= text_per_window * num_windows, "calibration text has ", n,
                " tokens, too few for ", num_windows, " windows of ", window_len,
                " tokens (at most ", n / text_per_window, " windows)");
  const int64_t stride = n / num_windows;  // >= text_per_window, so windows are disjoint
  std::vector<std::vector<TokenId>> windows(num_windows);
  for (int i = 0; i < num_windows; ++i) {
    std::vector<TokenId>& w = windows[i];
    w.reserve(window_len);
    if (bos >= 0) w.push_back(bos);
    const auto begin = tokens.begin() + i * stride;
    w.insert(w.end(), begin, begin + text_per_window);
  }
  return windows;
}

FisherAccumulator accumulate_fisher(const LlamaWeights& weights,
                                    const std::vector<std::vector<TokenId>>& windows,
                                    const ProgressFn& progress) {
  LKV_CHECK_ARG(!windows.empty(), "Fisher scores need at least one calibration window");
  FisherAccumulator acc(weights.config);
  const int64_t total = static_cast<int64_t>(windows.size());
  for (int64_t i = 0; i < total; ++i) {
    acc.add(llama_kv_projection_gradients<float>(weights, windows[i]));
    if (progress) progress(i + 1, total);
  }
  return acc;
}

}  // namespace latentkv
