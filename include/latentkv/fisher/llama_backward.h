// Training-style forward and backward pass of a Llama-family decoder over one window of tokens
// (CPU, Eigen, OpenMP), giving the gradients that Fisher-information rank allocation needs
// (design §3.6).
//
// This is a whole-window implementation, separate from the inference path (LlamaForward with its
// KV cache): every projection is one GEMM over the window, attention is causal over the window,
// and the activations that the backward pass needs are kept per layer. The loss is the mean
// next-token cross-entropy over the window: position t predicts token t+1, t = 0..T-2.
//
// Only the gradients of every layer's W_k and W_v are produced. Gradients flow back from the loss
// through the LM head, the final norm and every later layer (MLP, attention with GQA and RoPE,
// RMSNorms) to each layer's k_proj/v_proj; the weight gradients of all other matrices are skipped.
//
// Memory: per layer the residual stream before and after attention, post-RoPE queries/keys,
// values and the MLP gate/up pre-activations are kept ((3·d_model + (num_qo_heads +
// 2·num_kv_heads)·head_dim + 2·ffn_dim) scalars per token and layer: ~10 MB per layer for
// SmolLM2-135M at 512 tokens in fp32). Attention probabilities are recomputed in the backward
// pass per head instead of being stored ([T, T] per head), and logits are formed in blocks of rows
// so that the [T, vocab_size] matrix never exists at once.
//
// Scalar: float for real models; double for finite-difference gradient checks (weights are read
// from the fp32 LlamaWeights and widened).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "latentkv/model/llama.h"
#include "latentkv/model/llama_forward.h"

namespace latentkv {

/// Row-major dynamic matrix of any scalar (MatrixRM is the float one).
template <typename Scalar>
using MatrixRMT = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Loss of one window and its gradients with respect to every layer's W_k and W_v.
template <typename Scalar>
struct KvProjectionGradients {
  /// Mean next-token cross-entropy (nats) over the window's num_targets predictions.
  double loss = 0.0;
  /// Number of predicted tokens: tokens.size() - 1.
  int64_t num_targets = 0;
  /// d loss / d W_k of each layer: [n_layers] matrices of [num_kv_heads*head_dim, d_model].
  std::vector<MatrixRMT<Scalar>> wk;
  /// d loss / d W_v of each layer, same shapes as wk.
  std::vector<MatrixRMT<Scalar>> wv;
};

/// Runs the forward pass over `tokens` (T >= 2 tokens, positions 0..T-1) and the backward pass of
/// the mean next-token cross-entropy, returning the loss and the W_k/W_v gradients of every
/// layer. Throws Error(kInvalidArgument) for fewer than 2 tokens, a token id outside the
/// vocabulary or T > context_length; Error(kNumericalError) when the loss is not finite.
template <typename Scalar>
KvProjectionGradients<Scalar> llama_kv_projection_gradients(const LlamaWeights& weights,
                                                            const std::vector<TokenId>& tokens);

/// Logits of the same training-style forward pass: [T, vocab_size], row t = next-token logits
/// after tokens 0..t. For checking this implementation against the inference path. Throws as
/// above (T >= 1 suffices here).
template <typename Scalar>
MatrixRMT<Scalar> llama_window_logits(const LlamaWeights& weights,
                                      const std::vector<TokenId>& tokens);

extern template KvProjectionGradients<float> llama_kv_projection_gradients<float>(
    const LlamaWeights&, const std::vector<TokenId>&);
extern template KvProjectionGradients<double> llama_kv_projection_gradients<double>(
    const LlamaWeights&, const std::vector<TokenId>&);
extern template MatrixRMT<float> llama_window_logits<float>(const LlamaWeights&,
                                                            const std::vector<TokenId>&);
extern template MatrixRMT<double> llama_window_logits<double>(const LlamaWeights&,
                                                              const std::vector<TokenId>&);

}  // namespace latentkv
