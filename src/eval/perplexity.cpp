#include "latentkv/eval/perplexity.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "latentkv/status.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace latentkv {

double token_nll(const float* logits, int64_t n, TokenId target) {
  LKV_CHECK_ARG(target >= 0 && target < n, "target token ", target, " outside [0, ", n, ")");
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, static_cast<double>(logits[j]));
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(logits[j]) - mx);
  return std::log(sum) + mx - static_cast<double>(logits[target]);
}

int64_t perplexity_windows(int64_t num_tokens, const PerplexityOptions& o,
                           const LlamaConfig& config) {
  LKV_CHECK_ARG(o.ctx >= 3, "ctx ", o.ctx,
                " leaves no token to score (the second half of a window minus its last token); "
                "use ctx >= 3");
  LKV_CHECK_ARG(o.ctx <= config.context_length, "ctx ", o.ctx,
                " exceeds the model's context length ", config.context_length);
  LKV_CHECK_ARG(!o.max_chunks || *o.max_chunks >= 1, "chunks must be >= 1, got ",
                o.max_chunks.value_or(0));
  LKV_CHECK_ARG(num_tokens >= o.ctx, "text has ", num_tokens,
                " tokens, fewer than one window of ctx ", o.ctx);
  const int64_t windows = num_tokens / o.ctx;
  return o.max_chunks ? std::min(windows, *o.max_chunks) : windows;
}

PerplexityResult evaluate_perplexity(CausalLm& model, const std::vector<TokenId>& tokens,
                                     const PerplexityOptions& o) {
  const LlamaConfig& config = model.config();
  const int64_t chunks = perplexity_windows(static_cast<int64_t>(tokens.size()), o, config);
  LKV_CHECK_ARG(o.window_start_token < config.vocab_size, "window start token ",
                o.window_start_token, " outside the vocabulary");
  const int64_t ctx = o.ctx, first = ctx / 2, scored = ctx - first - 1;
  const int64_t vocab = config.vocab_size;

  const auto t0 = std::chrono::steady_clock::now();
  PerplexityResult r;
  r.ctx = ctx;
  r.chunks = chunks;
  // The last token of a window is only a target: nothing reads its hidden state, so the window
  // runs through the model without it.
  std::vector<TokenId> window(static_cast<size_t>(ctx - 1));
  std::vector<double> nll(static_cast<size_t>(scored));
  MatrixRM logits;
  model.reserve(ctx);
  double sum = 0, sum_sq = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const TokenId* w = tokens.data() + c * ctx;
    std::copy(w, w + ctx - 1, window.begin());
    if (o.window_start_token >= 0) window[0] = o.window_start_token;
    model.reset();
    model.forward(window, &logits, first);  // logits rows: positions first .. ctx-2
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < scored; ++i)
      nll[i] = token_nll(logits.row(i).data(), vocab, w[first + 1 + i]);
    double chunk_sum = 0;
    for (const double v : nll) {
      chunk_sum += v;
      sum_sq += v * v;
    }
    sum += chunk_sum;
    r.chunk_mean_nll.push_back(chunk_sum / scored);
    if (o.progress) o.progress(c + 1, chunks);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const int64_t count = chunks * scored;
  r.tokens_scored = count;
  r.tokens_processed = chunks * (ctx - 1);
  r.tokens_per_second = r.seconds > 0 ? r.tokens_processed / r.seconds : 0.0;
  r.mean_nll = sum / count;
  r.ppl = std::exp(r.mean_nll);
  const double var = sum_sq / count - r.mean_nll * r.mean_nll;
  r.nll_stderr = count > 1 ? std::sqrt(std::max(var, 0.0) / (count - 1))
                           : std::numeric_limits<double>::quiet_NaN();
  r.ppl_stderr = r.nll_stderr * r.ppl;
  return r;
}

std::vector<TokenId> perplexity_tokens(const Tokenizer& tokenizer, std::string_view text,
                                       bool add_bos) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  EncodeOptions eo;
  eo.add_bos = add_bos;
  return tokenizer.encode(text, eo);
}

}  // namespace latentkv
