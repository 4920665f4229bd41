#include "latentkv/eval/generate.h"

#include <algorithm>
#include <chrono>

#include "latentkv/status.h"

namespace latentkv {

GenerationStats generate(CausalLm& model, const std::vector<TokenId>& prompt,
                         const GenerationOptions& o, const std::function<void(TokenId)>& on_token) {
  const LlamaConfig& c = model.config();
  const int64_t n = static_cast<int64_t>(prompt.size());
  LKV_CHECK_ARG(n >= 1, "the prompt is empty");
  LKV_CHECK_ARG(n < c.context_length, "the prompt has ", n,
                " tokens and leaves no room in the model's context length ", c.context_length);
  LKV_CHECK_ARG(o.max_new_tokens >= 1, "the number of tokens to generate must be >= 1, got ",
                o.max_new_tokens);
  LKV_CHECK_ARG(o.prefill_chunk >= 1, "prefill_chunk must be >= 1");
  Sampler sampler(o.sampling);
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };

  GenerationStats s;
  s.prompt_tokens = n;
  model.reset();
  model.reserve(std::min<int64_t>(c.context_length, n + o.max_new_tokens));
  MatrixRM logits;
  const auto t0 = Clock::now();
  for (int64_t at = 0; at < n; at += o.prefill_chunk) {
    const int64_t len = std::min(o.prefill_chunk, n - at);
    const bool last = at + len == n;
    model.forward({prompt.begin() + at, prompt.begin() + at + len}, last ? &logits : nullptr,
                  len - 1);
  }
  TokenId next = sampler.sample(logits.row(0).data(), logits.cols());
  s.prompt_seconds = seconds_since(t0);

  const auto t1 = Clock::now();
  while (true) {
    if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), next) != o.stop_tokens.end()) {
      s.hit_stop_token = true;
      break;
    }
    on_token(next);
    if (++s.generated_tokens == o.max_new_tokens) break;
    if (model.position() == c.context_length) {
      s.hit_context_limit = true;
      break;
    }
    model.forward({next}, &logits);
    next = sampler.sample(logits.row(0).data(), logits.cols());
  }
  s.generate_seconds = seconds_since(t1);
  return s;
}

}  // namespace latentkv
