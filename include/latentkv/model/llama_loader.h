// Loading a Llama-family model from a GGUF file into LlamaConfig / LlamaWeights (fp32).
//
// Hyperparameters come from `llama.*` metadata (block_count, embedding_length,
// attention.head_count[_kv], attention.key_length, feed_forward_length, context_length,
// attention.layer_norm_rms_epsilon, rope.freq_base, rope.scaling.type/factor), the vocabulary
// size from the token embedding, Llama-3 RoPE frequency factors from the `rope_freqs.weight`
// tensor, and tied embeddings from the absence of `output.weight`.
//
// Every tensor is checked against the shape the metadata implies, and every tensor in the file
// must be one the model uses. W_q/W_k rows (and their biases) are converted from llama.cpp's
// adjacent-pair RoPE order to HF half-split order: within each head, GGUF row 2i+s becomes row
// s·head_dim/2 + i (see latentkv/rope.h).
//
// Errors (latentkv::Error, one line naming the file): kUnsupported for an architecture other
// than "llama", RoPE scaling other than linear / rope_freqs, partial rotary dimensions, a
// tensor type latentkv cannot dequantize, or an unexpected tensor; kNotFound for missing
// required metadata or tensors; kCorruptData for metadata of the wrong type, inconsistent
// hyperparameters, or a tensor whose shape disagrees with the metadata.
#pragma once

#include <string>

#include "latentkv/gguf/gguf_file.h"
#include "latentkv/model/llama.h"
#include "latentkv/progress.h"

namespace latentkv {

/// Hyperparameters only (reads metadata and tensor shapes; dequantizes nothing except the small
/// rope_freqs tensor). The result has passed LlamaConfig::validate().
LlamaConfig read_llama_config(const GgufFile& file);

/// Config and all weights, dequantized to fp32 (W: [out, in] row-major, HF row order).
/// `progress` (optional) is called with (layers done, n_layers).
LlamaWeights load_llama(const GgufFile& file, const ProgressFn& progress = {});

/// Opens `path` (see GgufFile for its errors) and loads it.
LlamaWeights load_llama(const std::string& path, const ProgressFn& progress = {});

/// The row permutation that takes llama.cpp's W_q/W_k row order to HF order for `n_heads` heads
/// of width `head_dim`: GGUF row r goes to row result[r].
std::vector<int64_t> llama_qk_row_order(int n_heads, int head_dim);

}  // namespace latentkv
