// Llama-family model description and weights as held by the CPU reference (design §6).
//
// Weights are dequantized to fp32 and stored row-major like nn.Linear (W: [out, in], y = x·Wᵀ).
// W_q and W_k rows are in HF order (half-split RoPE, see latentkv/rope.h): the GGUF loader undoes
// llama.cpp's adjacent-pair row permutation, so every consumer sees one convention.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "latentkv/rope.h"

namespace latentkv {

using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Hyperparameters of a Llama-family decoder.
struct LlamaConfig {
  std::string architecture = "llama";  ///< GGUF general.architecture
  std::string name;                    ///< general.name, for messages
  int n_layers = 0;
  int d_model = 0;
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int ffn_dim = 0;
  int vocab_size = 0;
  int64_t context_length = 0;  ///< trained context; longer requests are rejected
  double rms_eps = 1e-5;
  RopeConfig rope;
  bool tied_embeddings = false;  ///< LM head reuses the token embedding matrix

  /// Query heads per KV head (GQA ratio).
  int gqa_ratio() const { return num_kv_heads > 0 ? num_qo_heads / num_kv_heads : 0; }
  /// Throws Error(kInvalidArgument / kUnsupported) on inconsistent values.
  void validate() const;
};

/// Weights of one decoder block. Bias vectors are empty when the model has none (Llama).
struct LlamaLayerWeights {
  Eigen::VectorXf attn_norm;  ///< [d_model]
  MatrixRM wq;                ///< [num_qo_heads*head_dim, d_model]
  MatrixRM wk;                ///< [num_kv_heads*head_dim, d_model]
  MatrixRM wv;                ///< [num_kv_heads*head_dim, d_model]
  MatrixRM wo;                ///< [d_model, num_qo_heads*head_dim]
  Eigen::VectorXf bq, bk, bv, bo;
  Eigen::VectorXf ffn_norm;   ///< [d_model]
  MatrixRM w_gate;            ///< [ffn_dim, d_model]
  MatrixRM w_up;              ///< [ffn_dim, d_model]
  MatrixRM w_down;            ///< [d_model, ffn_dim]
};

/// A whole model.
struct LlamaWeights {
  LlamaConfig config;
  MatrixRM tok_embeddings;  ///< [vocab_size, d_model]
  Eigen::VectorXf output_norm;  ///< [d_model]
  MatrixRM output;          ///< [vocab_size, d_model]; empty when config.tied_embeddings
  std::vector<LlamaLayerWeights> layers;

  /// The LM head matrix ([vocab_size, d_model]): `output`, or the embeddings when tied.
  const MatrixRM& lm_head() const { return config.tied_embeddings ? tok_embeddings : output; }
};

}  // namespace latentkv
