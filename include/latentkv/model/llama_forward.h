// CPU reference forward pass of a Llama-family decoder (Eigen, fp32, OpenMP).
//
// One LlamaForward runs one sequence: forward() appends a chunk of tokens (batched prefill: every
// projection is one GEMM over the chunk) and returns logits; calling it with one token at a time
// is incremental decoding over the cached keys/values. The attention block of every layer is an
// AttentionBackend (default: DenseKvAttention, a full fp32/fp16 KV cache); see
// attention_backend.h for the two extension points.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <vector>

#include "latentkv/model/attention_backend.h"
#include "latentkv/model/causal_lm.h"
#include "latentkv/model/dense_kv_attention.h"
#include "latentkv/model/llama.h"

namespace latentkv {

/// Sets the number of threads used by the forward pass (OpenMP and Eigen); t <= 0 keeps the
/// default (all cores). Throws nothing.
void set_num_threads(int t);

/// Llama block stack: embedding, per layer x += attn(rmsnorm(x)); x += mlp(rmsnorm(x)) with a
/// SwiGLU MLP (down(silu(gate(x)) * up(x))), final RMSNorm and LM head (tied or not).
class LlamaForward final : public CausalLm {
 public:
  /// Uses DenseKvAttention with `kv_dtype`. `weights` must outlive this object.
  explicit LlamaForward(const LlamaWeights& weights, KvDtype kv_dtype = KvDtype::kF32);
  /// Uses a caller-supplied attention backend (e.g. a latent KV cache) for every layer.
  LlamaForward(const LlamaWeights& weights, std::unique_ptr<AttentionBackend> attention);
  ~LlamaForward() override;
  LlamaForward(const LlamaForward&) = delete;
  LlamaForward& operator=(const LlamaForward&) = delete;

  /// Starts a new sequence (clears the attention backend's cache).
  void reset() override;
  /// Tokens of the current sequence processed so far (= the position of the next token).
  int64_t position() const override { return position_; }
  /// Pre-allocates the attention cache for sequences up to `num_tokens` tokens. Scratch buffers
  /// are kept between calls and only reallocated when the chunk length changes.
  void reserve(int64_t num_tokens) override;

  /// Appends `tokens` (n >= 1) at positions position()..position()+n-1 and runs all layers.
  /// When `logits` is non-null it receives the next-token logits of chunk rows
  /// [logits_from, n): shape [n - logits_from, vocab_size] (the LM head is only applied to those
  /// rows; pass logits = nullptr to skip it, e.g. for calibration).
  /// Throws Error(kInvalidArgument) for an empty chunk, a token id outside the vocabulary, a
  /// sequence longer than the model's context_length, or logits_from outside [0, n).
  void forward(const std::vector<TokenId>& tokens, MatrixRM* logits,
               int64_t logits_from = 0) override;

  /// Installs (or, with an empty function, removes) the k/v_proj input observer.
  void set_layer_input_observer(LayerInputObserver observer) { observer_ = std::move(observer); }

  AttentionBackend& attention() { return *attention_; }
  const LlamaWeights& weights() const { return weights_; }
  const LlamaConfig& config() const override { return weights_.config; }

 private:
  void mlp(const LlamaLayerWeights& lw);

  const LlamaWeights& weights_;
  std::unique_ptr<AttentionBackend> attention_;
  LayerInputObserver observer_;
  int64_t position_ = 0;
  // Scratch reused across layers and chunks: residual stream, normed input, attention output,
  // MLP gate/up. Resized only when the chunk length changes.
  MatrixRM hidden_, normed_, block_out_, gate_, up_;
  std::vector<int64_t> positions_;
};

}  // namespace latentkv
