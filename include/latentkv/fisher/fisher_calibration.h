// Fisher scores of a model from calibration text (design §3.6): forward + backward over windows of
// tokens, squared W_k/W_v gradients accumulated per element.
#pragma once

#include <string>
#include <vector>

#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/model/llama.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/progress.h"

namespace latentkv {

/// Cuts a tokenized text into `num_windows` windows of `window_len` tokens each, spread evenly over
/// the text (window i starts at text token i·⌊N/num_windows⌋, N = tokens.size(), so windows never
/// overlap and cover the whole text rather than its beginning). When `bos` >= 0 every window is
/// BOS followed by window_len-1 text tokens, as in perplexity evaluation. Throws
/// Error(kInvalidArgument) when window_len < 2, num_windows < 1, or the text is too short for
/// num_windows disjoint windows (the message gives the maximum possible).
std::vector<std::vector<TokenId>> calibration_windows(const std::vector<TokenId>& tokens,
                                                      int window_len, int num_windows, TokenId bos);

/// Runs llama_kv_projection_gradients<float> on every window and accumulates the squared
/// gradients; `progress` (optional) is called with (windows done, windows.size()) after each.
/// Throws as llama_kv_projection_gradients does, and Error(kInvalidArgument) for no windows.
FisherAccumulator accumulate_fisher(const LlamaWeights& weights,
                                    const std::vector<std::vector<TokenId>>& windows,
                                    const ProgressFn& progress = {});

}  // namespace latentkv
