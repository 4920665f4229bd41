// The calibration pass of the compression pipeline (design §3.1): the uncompressed model runs over
// windows of calibration text and every layer's k_proj/v_proj input Gram Γ = Σ xᵀx is collected
// through LlamaForward's layer-input observer.
#pragma once

#include <string>
#include <vector>

#include "latentkv/compress/calib_stats.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/progress.h"

namespace latentkv {

/// Which tokens calibrate: `num_windows` windows of `window_len` tokens spread evenly over the
/// tokenized text (calibration_windows() in fisher/fisher_calibration.h), BOS first when `bos`.
struct CalibrationWindows {
  /// 32 × 512 = 16 K tokens: the Gram of a 576-wide layer is well conditioned from ~2 K tokens
  /// on, and the pass takes a few minutes on 2 CPU cores (design §3.1's 64 windows double it).
  int num_windows = 32;
  int window_len = 512;
  bool bos = false;

  /// Throws Error(kInvalidArgument) for num_windows < 1 or window_len < 2.
  void validate() const;
  /// "32x512" or "32x512+bos": the part of a cache key that the windowing decides.
  std::string describe() const;
};

/// Cache key of calibration data: the text's SHA-256 and the window settings.
std::string calibration_data_key(const std::string& text_sha256, const CalibrationWindows& w);

/// Tokenized calibration windows of `text` (tokenized without BOS; `bos_id` is put first in every
/// window when w.bos). Throws Error(kInvalidArgument) when the text is too short (the message
/// gives the largest possible window count) or w.bos is set and bos_id < 0.
std::vector<std::vector<TokenId>> tokenize_calibration_windows(const std::vector<TokenId>& text,
                                                               const CalibrationWindows& w,
                                                               TokenId bos_id);

/// Runs `weights` (uncompressed, fp32 KV cache) over every window from an empty cache and returns
/// the Gram statistics of every layer's k/v_proj input. `progress` gets (windows done, total).
/// Throws Error(kInvalidArgument) for no windows or a window the model rejects.
CalibStats collect_calib_stats(const LlamaWeights& weights,
                               const std::vector<std::vector<TokenId>>& windows,
                               const ProgressFn& progress = {});

}  // namespace latentkv
