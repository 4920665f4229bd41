// Extension points of the CPU forward pass (LlamaForward): the attention block of every layer is
// delegated to an AttentionBackend, and a LayerInputObserver may watch the input of k_proj/v_proj.
//
// The default backend, DenseKvAttention, keeps the usual full-width fp32/fp16 KV cache. A latent
// (low-rank compressed) KV cache implements the same interface and replaces the whole attention
// block of a layer: projections, cache, RoPE, softmax and o_proj are all its business, so that it
// is free to cache latents instead of keys and values and to fold B_v into W_o.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <vector>

#include "latentkv/model/llama.h"

namespace latentkv {

/// The attention block of every layer of one sequence, including its cache state.
///
/// LlamaForward calls forward() for layers 0..n_layers-1 in order with one chunk of new tokens,
/// then moves to the next chunk. A backend instance holds the state of exactly one sequence;
/// reset() starts a new one (perplexity calls it between windows).
class AttentionBackend {
 public:
  virtual ~AttentionBackend() = default;

  /// Forgets every cached token of every layer.
  virtual void reset() = 0;

  /// Number of tokens of the current sequence cached for `layer`.
  virtual int64_t cached_tokens(int layer) const = 0;

  /// Pre-allocates room for `num_tokens` tokens per layer so that a sequence up to that length
  /// never reallocates. Optional: caches must also grow on demand.
  virtual void reserve(int64_t num_tokens) {}

  /// Runs the attention block of `layer` for a chunk of `n` new tokens and appends them to the
  /// layer's cache.
  ///   x:         [n, d_model] RMS-normed hidden states (the input of q/k/v_proj).
  ///   positions: [n] absolute positions of the chunk's tokens (used for RoPE). The chunk follows
  ///              the tokens already cached; the causal mask is by order of arrival: token i of
  ///              the chunk attends to every cached token and to chunk tokens 0..i.
  ///   out:       [n, d_model] the block output after o_proj (and its bias), to be added to the
  ///              residual stream by the caller. Never aliases x.
  virtual void forward(int layer, const Eigen::Ref<const MatrixRM>& x,
                       const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) = 0;
};

/// Called by LlamaForward once per layer and chunk with the input of k_proj/v_proj:
/// x is [n, d_model], the RMS-normed hidden states of the chunk (calibration accumulates the Gram
/// matrix Σ xᵀx from it). The reference is valid only during the call.
using LayerInputObserver = std::function<void(int layer, const Eigen::Ref<const MatrixRM>& x)>;

}  // namespace latentkv
