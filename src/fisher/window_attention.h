// Causal GQA attention with RoPE over a whole window, forward and backward (internal to
// src/fisher). Query head h reads KV head h / (num_qo_heads / num_kv_heads); position t attends
// to positions 0..t. Layouts: q [T, num_qo_heads·head_dim], k and v [T, num_kv_heads·head_dim],
// head-major columns, RoPE in the half-split convention of latentkv/rope.h.
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "latentkv/fisher/llama_backward.h"
#include "latentkv/model/llama.h"

namespace latentkv::fisher_detail {

/// cos/sin of pos·inv_freq[i] for positions 0..T-1: [T, head_dim/2] each.
template <typename Scalar>
struct RopeTables {
  MatrixRMT<Scalar> cos, sin;
  RopeTables(const LlamaConfig& config, int64_t num_tokens);
};

/// Rotates every head of x ([T, heads·head_dim]) in place by its row's position; `inverse`
/// rotates by the opposite angle, which is the transpose (rotations are orthogonal) and so maps a
/// gradient with respect to rotated vectors to one with respect to unrotated vectors.
template <typename Scalar>
void apply_rope_rows(const RopeTables<Scalar>& tables, int head_dim, bool inverse,
                     MatrixRMT<Scalar>* x);

/// out = softmax(q·kᵀ/sqrt(head_dim) + causal mask)·v per query head: [T, num_qo_heads·head_dim].
template <typename Scalar>
void attention_forward(const LlamaConfig& config, const MatrixRMT<Scalar>& q,
                       const MatrixRMT<Scalar>& k, const MatrixRMT<Scalar>& v,
                       MatrixRMT<Scalar>* out);

/// Given d loss / d out, writes the gradients with respect to q, k and v (same layouts as the
/// inputs). Attention probabilities are recomputed block by block instead of being stored.
template <typename Scalar>
void attention_backward(const LlamaConfig& config, const MatrixRMT<Scalar>& q,
                        const MatrixRMT<Scalar>& k, const MatrixRMT<Scalar>& v,
                        const MatrixRMT<Scalar>& d_out, MatrixRMT<Scalar>* dq,
                        MatrixRMT<Scalar>* dk, MatrixRMT<Scalar>* dv);

}  // namespace latentkv::fisher_detail
