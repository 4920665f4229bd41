#include "latentkv/fisher/llama_backward.h"

#include <cmath>
#include <utility>

#include "fisher/window_attention.h"
#include "fisher/window_ops.h"
#include "latentkv/status.h"

namespace latentkv {

namespace {

using fisher_detail::as;
using fisher_detail::RopeTables;
using fisher_detail::Vector;

void check_window(const LlamaWeights& w, const std::vector<TokenId>& tokens, size_t min_tokens) {
  const LlamaConfig& c = w.config;
  c.validate();
  LKV_CHECK_ARG(static_cast<int>(w.layers.size()) == c.n_layers, "model has ", w.layers.size(),
                " layers, config says ", c.n_layers);
  LKV_CHECK_ARG(w.tok_embeddings.rows() == c.vocab_size && w.tok_embeddings.cols() == c.d_model,
                "token embedding matrix is [", w.tok_embeddings.rows(), ", ",
                w.tok_embeddings.cols(), "], expected [", c.vocab_size, ", ", c.d_model, "]");
  LKV_CHECK_ARG(w.lm_head().rows() == c.vocab_size && w.lm_head().cols() == c.d_model,
                "LM head matrix has the wrong shape");
  LKV_CHECK_ARG(tokens.size() >= min_tokens, "a window needs at least ", min_tokens,
                " tokens, got ", tokens.size());
  LKV_CHECK_ARG(static_cast<int64_t>(tokens.size()) <= c.context_length, "window of ",
                tokens.size(), " tokens exceeds the model's context length ", c.context_length);
  for (TokenId t : tokens) {
    LKV_CHECK_ARG(t >= 0 && t < c.vocab_size, "token id ", t, " outside the vocabulary [0, ",
                  c.vocab_size, ")");
  }
}

template <typename Scalar>
void add_bias(const Eigen::VectorXf& bias, MatrixRMT<Scalar>* y) {
  if (bias.size() > 0) y->rowwise() += as<Scalar>(bias).transpose();
}

// y = x·Wᵀ (+ b) with W an fp32 [out, in] weight.
template <typename Scalar>
void linear(const MatrixRMT<Scalar>& x, const MatrixRM& w, const Eigen::VectorXf& bias,
            MatrixRMT<Scalar>* y) {
  fisher_detail::gemm(x, as<Scalar>(w).transpose(), y);
  add_bias(bias, y);
}

// What the backward pass of one layer reads (see the memory note in llama_backward.h).
template <typename Scalar>
struct LayerActivations {
  MatrixRMT<Scalar> h_in;  // [T, d_model] residual stream entering the layer
  Vector<Scalar> inv_rms_attn;
  MatrixRMT<Scalar> q, k, v;  // post-RoPE queries and keys, values
  MatrixRMT<Scalar> h_mid;    // [T, d_model] residual stream after attention
  Vector<Scalar> inv_rms_ffn;
  MatrixRMT<Scalar> gate, up;  // [T, ffn_dim] MLP pre-activations
};

template <typename Scalar>
class WindowPass {
 public:
  WindowPass(const LlamaWeights& w, const std::vector<TokenId>& tokens)
      : w_(w), c_(w.config), tokens_(tokens), rope_(c_, static_cast<int64_t>(tokens.size())) {}

  // Runs every layer, keeping activations when `keep`; returns the final normed hidden states.
  MatrixRMT<Scalar> forward(bool keep) {
    const int64_t n = static_cast<int64_t>(tokens_.size());
    const auto& emb = as<Scalar>(w_.tok_embeddings);
    MatrixRMT<Scalar> h(n, c_.d_model);
    for (int64_t t = 0; t < n; ++t) h.row(t) = emb.row(tokens_[t]);
    if (keep) acts_.resize(c_.n_layers);
    MatrixRMT<Scalar> normed, attn, block, m;
    for (int l = 0; l < c_.n_layers; ++l) {
      const LlamaLayerWeights& lw = w_.layers[l];
      LayerActivations<Scalar> a;
      fisher_detail::rms_norm_forward(h, lw.attn_norm, c_.rms_eps, &normed, &a.inv_rms_attn);
      linear(normed, lw.wq, lw.bq, &a.q);
      linear(normed, lw.wk, lw.bk, &a.k);
      linear(normed, lw.wv, lw.bv, &a.v);
      fisher_detail::apply_rope_rows(rope_, c_.head_dim, false, &a.q);
      fisher_detail::apply_rope_rows(rope_, c_.head_dim, false, &a.k);
      fisher_detail::attention_forward(c_, a.q, a.k, a.v, &attn);
      if (keep) a.h_in = h;
      linear(attn, lw.wo, lw.bo, &block);
      h += block;
      fisher_detail::rms_norm_forward(h, lw.ffn_norm, c_.rms_eps, &normed, &a.inv_rms_ffn);
      linear(normed, lw.w_gate, Eigen::VectorXf(), &a.gate);
      linear(normed, lw.w_up, Eigen::VectorXf(), &a.up);
      fisher_detail::swiglu_forward(a.gate, a.up, &m);
      if (keep) a.h_mid = h;
      fisher_detail::gemm(m, as<Scalar>(lw.w_down).transpose(), &h, true);
      if (keep) acts_[l] = std::move(a);
    }
    MatrixRMT<Scalar> z;
    fisher_detail::rms_norm_forward(h, w_.output_norm, c_.rms_eps, &z, &inv_rms_out_);
    h_out_ = std::move(h);
    return z;
  }

  KvProjectionGradients<Scalar> backward(const MatrixRMT<Scalar>& z) {
    const int64_t n = static_cast<int64_t>(tokens_.size());
    KvProjectionGradients<Scalar> g;
    g.num_targets = n - 1;
    g.wk.resize(c_.n_layers);
    g.wv.resize(c_.n_layers);
    MatrixRMT<Scalar> dz;
    g.loss = fisher_detail::lm_head_loss_backward(z, w_.lm_head(), tokens_, &dz);
    if (!std::isfinite(g.loss)) {
      LKV_THROW(StatusCode::kNumericalError, "window loss is not finite (", g.loss, ")");
    }
    // dh: gradient with respect to the residual stream at the current depth.
    MatrixRMT<Scalar> dh = MatrixRMT<Scalar>::Zero(n, c_.d_model);
    fisher_detail::rms_norm_backward(h_out_, inv_rms_out_, w_.output_norm, dz, &dh);
    MatrixRMT<Scalar> dm, dup, dnormed, dattn, dq, dk, dv, normed;
    Vector<Scalar> unused_inv;
    for (int l = c_.n_layers - 1; l >= 0; --l) {
      const LlamaLayerWeights& lw = w_.layers[l];
      LayerActivations<Scalar>& a = acts_[l];
      // MLP: h_out = h_mid + down(silu(gate(y)) ∘ up(y)), y = rmsnorm(h_mid).
      fisher_detail::gemm(dh, as<Scalar>(lw.w_down), &dm);
      fisher_detail::swiglu_backward(a.gate, a.up, &dm, &dup);
      fisher_detail::gemm(dm, as<Scalar>(lw.w_gate), &dnormed);
      fisher_detail::gemm(dup, as<Scalar>(lw.w_up), &dnormed, true);
      fisher_detail::rms_norm_backward(a.h_mid, a.inv_rms_ffn, lw.ffn_norm, dnormed, &dh);
      // Attention: h_mid = h_in + o_proj(attention(rope(q), rope(k), v)), x = rmsnorm(h_in).
      fisher_detail::gemm(dh, as<Scalar>(lw.wo), &dattn);
      fisher_detail::attention_backward(c_, a.q, a.k, a.v, dattn, &dq, &dk, &dv);
      fisher_detail::apply_rope_rows(rope_, c_.head_dim, true, &dq);
      fisher_detail::apply_rope_rows(rope_, c_.head_dim, true, &dk);
      fisher_detail::rms_norm_forward(a.h_in, lw.attn_norm, c_.rms_eps, &normed, &unused_inv);
      fisher_detail::gemm(dk.transpose(), normed, &g.wk[l]);
      fisher_detail::gemm(dv.transpose(), normed, &g.wv[l]);
      if (l > 0) {  // the embedding gradient is not needed
        fisher_detail::gemm(dq, as<Scalar>(lw.wq), &dnormed);
        fisher_detail::gemm(dk, as<Scalar>(lw.wk), &dnormed, true);
        fisher_detail::gemm(dv, as<Scalar>(lw.wv), &dnormed, true);
        fisher_detail::rms_norm_backward(a.h_in, a.inv_rms_attn, lw.attn_norm, dnormed, &dh);
      }
      a = LayerActivations<Scalar>();  // release this layer's activations early
    }
    return g;
  }

  MatrixRMT<Scalar> logits(const MatrixRMT<Scalar>& z) const {
    MatrixRMT<Scalar> logits;
    fisher_detail::gemm(z, as<Scalar>(w_.lm_head()).transpose(), &logits);
    return logits;
  }

 private:
  const LlamaWeights& w_;
  const LlamaConfig& c_;
  const std::vector<TokenId>& tokens_;
  RopeTables<Scalar> rope_;
  std::vector<LayerActivations<Scalar>> acts_;
  MatrixRMT<Scalar> h_out_;
  Vector<Scalar> inv_rms_out_;
};

}  // namespace

template <typename Scalar>
KvProjectionGradients<Scalar> llama_kv_projection_gradients(const LlamaWeights& weights,
                                                            const std::vector<TokenId>& tokens) {
  check_window(weights, tokens, 2);
  WindowPass<Scalar> pass(weights, tokens);
  const MatrixRMT<Scalar> z = pass.forward(true);
  return pass.backward(z);
}

template <typename Scalar>
MatrixRMT<Scalar> llama_window_logits(const LlamaWeights& weights,
                                      const std::vector<TokenId>& tokens) {
  check_window(weights, tokens, 1);
  WindowPass<Scalar> pass(weights, tokens);
  return pass.logits(pass.forward(false));
}

template KvProjectionGradients<float> llama_kv_projection_gradients<float>(
    const LlamaWeights&, const std::vector<TokenId>&);
template KvProjectionGradients<double> llama_kv_projection_gradients<double>(
    const LlamaWeights&, const std::vector<TokenId>&);
template MatrixRMT<float> llama_window_logits<float>(const LlamaWeights&,
                                                     const std::vector<TokenId>&);
template MatrixRMT<double> llama_window_logits<double>(const LlamaWeights&,
                                                       const std::vector<TokenId>&);

}  // namespace latentkv
