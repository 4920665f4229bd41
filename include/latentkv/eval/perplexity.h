// Perplexity with llama.cpp's protocol (design §6), on any CausalLm (CPU with any attention
// backend, or GPU).
//
// Protocol (llama.cpp tools/perplexity, default mode): the whole text is tokenized once (BOS first
// when the vocabulary asks for it) and cut into non-overlapping windows of `ctx` tokens; the
// first token of every window is overwritten with BOS under the same condition; each window is
// evaluated from an empty cache, and only its second half is scored: the logits at window
// positions first = ctx/2 .. ctx-2 against the tokens at first+1 .. ctx-1, i.e. ctx - ctx/2 - 1
// tokens per window. ppl = exp(mean NLL); its standard error follows llama.cpp (delta method):
// ppl · sqrt((E[nll²] − E[nll]²) / (count − 1)).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "latentkv/model/llama_forward.h"
#include "latentkv/progress.h"

namespace latentkv {

class Tokenizer;

struct PerplexityOptions {
  int64_t ctx = 512;  ///< window length in tokens
  /// Evaluate at most this many windows (must be >= 1); nullopt: every whole window of the text.
  std::optional<int64_t> max_chunks;
  /// Token written over the first token of every window (llama.cpp does so with BOS when the
  /// vocabulary's add_bos_token is set); -1 leaves the windows untouched.
  TokenId window_start_token = -1;
  ProgressFn progress;  ///< called with (windows done, windows total); may be empty
};

struct PerplexityResult {
  double ppl = 0;
  double ppl_stderr = 0;  ///< NaN when fewer than two tokens were scored
  double mean_nll = 0;
  double nll_stderr = 0;  ///< standard error of mean_nll (NaN when undefined)
  int64_t ctx = 0;
  int64_t chunks = 0;                  ///< windows evaluated
  int64_t tokens_scored = 0;           ///< chunks · (ctx - ctx/2 - 1)
  int64_t tokens_processed = 0;        ///< tokens run through the model (chunks · (ctx - 1))
  double seconds = 0;                  ///< wall time of the evaluation
  double tokens_per_second = 0;        ///< tokens_processed / seconds: prefill throughput
  std::vector<double> chunk_mean_nll;  ///< mean NLL of each window's scored tokens
};

/// Number of windows evaluate_perplexity() will run for `num_tokens` tokens, after checking the
/// options against the model: throws Error(kInvalidArgument) when ctx < 3 (no token to score),
/// ctx exceeds the model's context length, max_chunks <= 0, or the text is shorter than one
/// window.
int64_t perplexity_windows(int64_t num_tokens, const PerplexityOptions& options,
                           const LlamaConfig& config);

/// Runs the protocol above over `tokens` (see perplexity_tokens()). The model is reset before
/// every window and left holding the last one. Log-softmax is computed in double.
PerplexityResult evaluate_perplexity(CausalLm& model, const std::vector<TokenId>& tokens,
                                     const PerplexityOptions& options);

/// The token stream llama.cpp's perplexity tool builds from a text file's content: one trailing
/// newline dropped, the rest tokenized, BOS first when `add_bos`.
std::vector<TokenId> perplexity_tokens(const Tokenizer& tokenizer, std::string_view text,
                                       bool add_bos);

/// Negative log-likelihood of `target` under softmax(logits[0..n)), computed in double.
double token_nll(const float* logits, int64_t n, TokenId target);

}  // namespace latentkv
