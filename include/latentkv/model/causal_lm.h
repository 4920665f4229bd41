// What perplexity and generation need from a model: a causal language model over one sequence.
// The CPU reference (LlamaForward) and the GPU engine (GpuLlama) both implement it, so the
// evaluation protocols exist once.
#pragma once

#include <cstdint>
#include <vector>

#include "latentkv/model/llama.h"

namespace latentkv {

/// Token id in the model vocabulary.
using TokenId = int32_t;

/// One sequence of a causal LM with its own KV cache.
class CausalLm {
 public:
  virtual ~CausalLm() = default;

  virtual const LlamaConfig& config() const = 0;
  /// Starts a new sequence (empties the cache).
  virtual void reset() = 0;
  /// Tokens of the current sequence processed so far (= the position of the next token).
  virtual int64_t position() const = 0;
  /// Prepares the cache for sequences up to `num_tokens` tokens (optional for the model).
  virtual void reserve(int64_t num_tokens) = 0;
  /// Appends `tokens` (n >= 1) at positions position()..position()+n-1. When `logits` is non-null
  /// it receives the next-token logits of chunk rows [logits_from, n): [n - logits_from,
  /// vocab_size]. Throws Error(kInvalidArgument) for an empty chunk, a token id outside the
  /// vocabulary, a sequence longer than the model's context, or logits_from outside [0, n).
  virtual void forward(const std::vector<TokenId>& tokens, MatrixRM* logits,
                       int64_t logits_from = 0) = 0;
};

}  // namespace latentkv
