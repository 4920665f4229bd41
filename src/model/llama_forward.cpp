#include "latentkv/model/llama_forward.h"

#include <omp.h>

#include <Eigen/Core>

#include "latentkv/status.h"
#include "model/forward_ops.h"

namespace latentkv {

void set_num_threads(int t) {
  if (t <= 0) return;
  omp_set_num_threads(t);
  Eigen::setNbThreads(t);
}

LlamaForward::LlamaForward(const LlamaWeights& weights, KvDtype kv_dtype)
    : LlamaForward(weights, std::make_unique<DenseKvAttention>(weights, kv_dtype)) {}

LlamaForward::LlamaForward(const LlamaWeights& weights, std::unique_ptr<AttentionBackend> attention)
    : weights_(weights), attention_(std::move(attention)) {
  LKV_CHECK_ARG(attention_ != nullptr, "LlamaForward needs an attention backend");
  const LlamaConfig& c = weights_.config;
  c.validate();
  LKV_CHECK_ARG(static_cast<int>(weights_.layers.size()) == c.n_layers, "model has ",
                weights_.layers.size(), " layers, config says ", c.n_layers);
  LKV_CHECK_ARG(
      weights_.tok_embeddings.rows() == c.vocab_size && weights_.tok_embeddings.cols() == c.d_model,
      "token embedding matrix is [", weights_.tok_embeddings.rows(), ", ",
      weights_.tok_embeddings.cols(), "], expected [", c.vocab_size, ", ", c.d_model, "]");
  LKV_CHECK_ARG(weights_.lm_head().rows() == c.vocab_size && weights_.lm_head().cols() == c.d_model,
                "LM head matrix has the wrong shape");
}

LlamaForward::~LlamaForward() = default;

void LlamaForward::reset() {
  attention_->reset();
  position_ = 0;
}

void LlamaForward::reserve(int64_t num_tokens) { attention_->reserve(num_tokens); }

void LlamaForward::forward(const std::vector<TokenId>& tokens, MatrixRM* logits,
                           int64_t logits_from) {
  const LlamaConfig& c = weights_.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  LKV_CHECK_ARG(n >= 1, "forward() needs at least one token");
  LKV_CHECK_ARG(logits_from >= 0 && logits_from < n, "logits_from ", logits_from,
                " outside the chunk [0, ", n, ")");
  LKV_CHECK_ARG(position_ + n <= c.context_length, "sequence of ", position_ + n,
                " tokens exceeds the model's context length ", c.context_length);
  for (const TokenId t : tokens)
    LKV_CHECK_ARG(t >= 0 && t < c.vocab_size, "token id ", t, " outside the vocabulary [0, ",
                  c.vocab_size, ")");

  hidden_.resize(n, c.d_model);
  normed_.resize(n, c.d_model);
  block_out_.resize(n, c.d_model);
  gate_.resize(n, c.ffn_dim);
  up_.resize(n, c.ffn_dim);
  positions_.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    hidden_.row(i) = weights_.tok_embeddings.row(tokens[i]);
    positions_[i] = position_ + i;
  }

  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayerWeights& lw = weights_.layers[l];
    detail::rms_norm(hidden_, lw.attn_norm, c.rms_eps, normed_);
    if (observer_) observer_(l, normed_);
    attention_->forward(l, normed_, positions_, block_out_);
    hidden_ += block_out_;
    detail::rms_norm(hidden_, lw.ffn_norm, c.rms_eps, normed_);
    mlp(lw);
  }
  position_ += n;

  if (logits == nullptr) return;
  const int64_t rows = n - logits_from;
  auto last = hidden_.bottomRows(rows);
  auto normed = normed_.bottomRows(rows);
  detail::rms_norm(last, weights_.output_norm, c.rms_eps, normed);
  logits->resize(rows, c.vocab_size);
  detail::linear(normed, weights_.lm_head(), *logits);
}

// hidden_ += down(silu(gate(normed_)) * up(normed_)).
void LlamaForward::mlp(const LlamaLayerWeights& lw) {
  detail::linear(normed_, lw.w_gate, gate_);
  detail::linear(normed_, lw.w_up, up_);
  detail::silu_mul(gate_, up_);
  detail::linear(gate_, lw.w_down, hidden_, /*accumulate=*/true);
}

}  // namespace latentkv
