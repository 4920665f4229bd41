// Real model shapes for benchmarks on synthetic weights (design §6): the hyperparameters only.
#pragma once

#include "latentkv/model/llama.h"

namespace latentkv::bench {

/// SmolLM2-135M (the default model): 30 layers, d_model 576, 9 query / 3 KV heads x 64, SwiGLU
/// 1536, vocab 49152, rope_theta 100000, tied embeddings, context 8192.
inline LlamaConfig smollm2_135m_shape() {
  LlamaConfig c;
  c.name = "SmolLM2-135M shape";
  c.n_layers = 30;
  c.d_model = 576;
  c.num_qo_heads = 9;
  c.num_kv_heads = 3;
  c.head_dim = 64;
  c.ffn_dim = 1536;
  c.vocab_size = 49152;
  c.context_length = 8192;
  c.rope.theta = 100000.0;
  c.tied_embeddings = true;
  return c;
}

/// Llama-2-7B: 32 layers, d_model 4096, MHA 32 x 128, SwiGLU 11008, vocab 32000, context 4096.
inline LlamaConfig llama2_7b_shape() {
  LlamaConfig c;
  c.name = "Llama-2-7B shape";
  c.n_layers = 32;
  c.d_model = 4096;
  c.num_qo_heads = 32;
  c.num_kv_heads = 32;
  c.head_dim = 128;
  c.ffn_dim = 11008;
  c.vocab_size = 32000;
  c.context_length = 4096;
  c.rope.theta = 10000.0;
  return c;
}

}  // namespace latentkv::bench
