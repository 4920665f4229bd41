// Autoregressive text generation on a CausalLm (CPU or GPU): batched prefill of the prompt, then
// one token per forward call over the cached keys/values.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "latentkv/eval/sampler.h"
#include "latentkv/model/llama_forward.h"

namespace latentkv {

struct GenerationOptions {
  int64_t max_new_tokens = 128;  ///< must be >= 1
  SamplingOptions sampling;
  std::vector<TokenId> stop_tokens;  ///< generation ends when one is drawn (it is not emitted)
  /// Prompt tokens per prefill call; bounds the scratch memory of long prompts.
  int64_t prefill_chunk = 512;
};

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  ///< tokens passed to on_token
  double prompt_seconds = 0;     ///< prefill, up to the first sampled token
  double generate_seconds = 0;   ///< the decode steps after it
  bool hit_stop_token = false;
  bool hit_context_limit = false;  ///< stopped because the model's context is full

  double prompt_tokens_per_second() const {
    return prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0.0;
  }
  /// Decode speed: tokens fed back through the model per second.
  double generate_tokens_per_second() const {
    return generate_seconds > 0 && generated_tokens > 1 ? (generated_tokens - 1) / generate_seconds
                                                        : 0.0;
  }
};

/// Resets `model`, prefills `prompt` (non-empty) and samples up to max_new_tokens tokens, calling
/// `on_token` with each one as soon as it is drawn. Stops early at a stop token or when the
/// model's context length is reached. Throws Error(kInvalidArgument) for an empty prompt, a prompt
/// that does not fit the context, or max_new_tokens < 1.
GenerationStats generate(CausalLm& model, const std::vector<TokenId>& prompt,
                         const GenerationOptions& options,
                         const std::function<void(TokenId)>& on_token);

}  // namespace latentkv
