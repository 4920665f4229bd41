// CPU reference of the latent KV cache (design §3.7, §3.8, §4): the attention block of one layer
// of one sequence when keys and values are cached as low-rank latents h = x·Aᵀ.
//
// append: latents of a chunk = x·[A_k; A_v]ᵀ (one GEMM), stored per group in a LatentStore
//   (fp16 residual window, older tokens quantized in chunks; see latent_store.h for the policy).
// attend: for every key group g, K_g = Ĥ_k,g·B_k,gᵀ (+ bias), RoPE at each cached token's
//   position; query head h reads KV head h / gqa_ratio, which sits at some (group, slot) of the
//   key factors and of the value factors (groupings may differ); softmax(q·Kᵀ/√head_dim) with a
//   causal mask; values are mixed in latent space, z_h = P_h·Ĥ_v,g; then either
//     unfolded: o_h = z_h·B_v,g[slot]ᵀ (+ b_v), out = o·W_oᵀ + b_o, or
//     folded:   out = z·W'_oᵀ + b'_o with W'_{o,h} = W_{o,h}·B_v,g[slot] supplied by the caller.
// Only latents are stored (never keys or values); scratch lives in an AttentionWorkspace.
// Positions are kept per token (RoPE angles of cached tokens are computed once, at append); they
// are metadata like a page table and not counted in the bytes.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <vector>

#include "latentkv/factors.h"
#include "latentkv/model/llama.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/attention_workspace.h"
#include "latentkv/reference/latent_store.h"

namespace latentkv {

namespace detail {
struct RopeAngles;
}

/// How the latents of a layer are stored.
struct LatentCacheConfig {
  QuantConfig key;  ///< key latents: bits (16, 2/3/4/8, or kExactLatentBits), quant_group, residual
  QuantConfig value;  ///< value latents
  /// Tokens quantized at once when the fp16 window overflows (latent_store.h); a paged GPU cache
  /// uses its page size. 1 keeps exactly the newest `residual` tokens in fp16.
  int chunk = 1;
};

/// Low-rank factors of one layer as the latent cache consumes them.
struct LatentLayerFactors {
  ProjectionFactors key;    ///< factors of W_k (bias = k_proj bias in head order, or empty)
  ProjectionFactors value;  ///< factors of W_v (bias = v_proj bias in head order, or empty)
  /// Optional B_v folded into W_o (design §3.8; fold_value_into_output() in compress/fold_vo.h
  /// computes it): when `w` is non-empty the output is z·W'ᵀ + bias, and the layer's W_o, b_o and
  /// the value bias are not read (the bias must then carry b_o + W_o·b_v). Empty = unfolded.
  FoldedOutputProjection folded_output;

  bool folded() const { return !folded_output.w.empty(); }
};

/// Per-layer latent KV cache of one sequence. Not thread-safe; one sequence per instance.
class LatentKvCache {
 public:
  /// `weights` (W_q, b_q, W_o, b_o of the layer; W_k/W_v are not read) must outlive the cache.
  /// Throws Error(kInvalidArgument) when the factors do not match `config` (d_model, head_dim,
  /// num_kv_heads), a factor or the folded projection has the wrong shape (its head_offsets must
  /// follow the value ranks of each query head's KV head) or a non-finite entry, a projection
  /// bias of the layer is missing from the factors (or from the folded bias), or the cache config
  /// is invalid for a group's rank. `workspace` may be shared by the layers of one model (nullptr:
  /// own one).
  LatentKvCache(const LlamaConfig& config, const LlamaLayerWeights& weights,
                LatentLayerFactors factors, LatentCacheConfig cache_config,
                std::shared_ptr<AttentionWorkspace> workspace = nullptr);
  ~LatentKvCache();
  LatentKvCache(LatentKvCache&&) noexcept;
  LatentKvCache& operator=(LatentKvCache&&) noexcept;

  /// Projects x [n, d_model] (RMS-normed hidden states) to key/value latents and stores them at
  /// `positions` [n] (>= 0, strictly increasing, after every cached position). Throws
  /// Error(kInvalidArgument) on a shape/position error and Error(kNumericalError) for a non-finite
  /// x or a latent outside the fp16 range; nothing is stored then.
  void append(const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions);

  /// Attention of n queries x [n, d_model] at `positions` [n] (non-decreasing): query i sees the
  /// cached tokens at positions <= positions[i] (at least one). out [n, d_model] receives the
  /// block output after o_proj (+ bias); it must not alias x.
  void attend(const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions,
              Eigen::Ref<MatrixRM> out);

  /// The attention block for a chunk of new tokens: append(x, positions), then attend with the
  /// same rows (token i of the chunk sees the cache and chunk tokens 0..i, read back from the
  /// cache, i.e. already rounded/quantized as stored).
  void forward(const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions,
               Eigen::Ref<MatrixRM> out);

  /// Forgets every cached token.
  void reset();
  /// Pre-allocates storage for `tokens` tokens.
  void reserve(int64_t tokens);

  int64_t size() const;
  const std::vector<int64_t>& positions() const { return positions_; }
  const ProjectionFactors& key_factors() const { return key_; }
  const ProjectionFactors& value_factors() const { return value_; }
  bool folded() const { return folded_wo_.size() > 0; }
  const LatentCacheConfig& cache_config() const { return cache_config_; }
  const LatentStore& key_store(int group) const { return key_stores_.at(group); }
  const LatentStore& value_store(int group) const { return value_stores_.at(group); }

  /// Latents of key / value group g as attention reads them (dequantized), [size(), ranks[g]].
  MatrixRM key_latents(int group) const;
  MatrixRM value_latents(int group) const;

  /// Bytes per quantized token: Σ over key and value groups of latent_bytes_per_token().
  int64_t bytes_per_token() const;
  /// Bytes per token while in the residual window: Σ over groups of 2·rank (fp16).
  int64_t residual_bytes_per_token() const;
  /// Bytes held now, measured on the stores (codes + scale/zero + residual windows).
  int64_t bytes_held() const;

 private:
  void attend_rows(const Eigen::Ref<const MatrixRM>& x, const detail::RopeAngles& angles,
                   int64_t first_angle, const std::vector<int64_t>& visible,
                   Eigen::Ref<MatrixRM> out);
  void rebuild_keys();
  void check_output(const Eigen::Ref<MatrixRM>& out, int64_t n) const;

  int d_model_, num_qo_heads_, num_kv_heads_, head_dim_;
  const LlamaLayerWeights* weights_;
  ProjectionFactors key_, value_;
  MatrixRM folded_wo_;         // [d_model, Σ_h r_v(h)], empty when unfolded
  Eigen::VectorXf folded_bo_;  // folded output bias, may be empty
  LatentCacheConfig cache_config_;
  std::shared_ptr<AttentionWorkspace> ws_;
  std::vector<double> inv_freq_;
  MatrixRM a_cat_;  // [Σ r_k + Σ r_v, d_model]: key groups, then value groups
  std::vector<int> key_group_of_, key_slot_of_, value_group_of_, value_slot_of_;  // per KV head
  std::vector<int64_t> mixed_col_;  // first column of query head h in z (and in folded_wo_)
  int64_t mixed_cols_ = 0;
  std::vector<LatentStore> key_stores_, value_stores_;
  std::vector<int64_t> positions_;
  std::unique_ptr<detail::RopeAngles> angles_, query_angles_;
};

}  // namespace latentkv
