// A KIVI-style quantization-only KV cache (Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit
// Quantization for KV Cache", 2024): the honest baseline for the latent cache at equal bytes per
// token (issue 4). Full-width keys and values, no low rank:
//   * keys are cached after RoPE (as KIVI does on top of the HF cache) and quantized per channel:
//     the values of one channel over a block of `key_group` consecutive tokens share one fp16
//     scale/zero (KIVI's G = 32);
//   * values are quantized per token, `value_quant_group` channels sharing a scale/zero;
//   * both keep the newest `residual` tokens (KIVI's R = 128) in fp16. Values leave the window one
//     token at a time (exactly `residual` fp16 tokens); keys leave it a block of key_group tokens
//     at a time when the window holds residual + key_group tokens (so between residual and
//     residual + key_group − 1 fp16 keys). Every value is rounded to fp16 first and quantized from
//     that, with the bit-exact quantizer of quant/latent_quant.h (rounding, packing, fp16
//     scale/zero) — keys with the key_group values of a channel as one vector.
// Attention itself is exact fp32 over the dequantized keys and values, with the same conventions
// as the latent cache (GQA, half-split RoPE, causal by position).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <vector>

#include "latentkv/model/attention_backend.h"
#include "latentkv/model/llama.h"
#include "latentkv/reference/attention_workspace.h"
#include "latentkv/reference/latent_store.h"
#include "latentkv/reference/per_layer_attention.h"

namespace latentkv {

namespace detail {
class ChannelGroupStore;
struct RopeAngles;
}  // namespace detail

/// Quantization of a KIVI-style cache.
struct KiviConfig {
  int key_bits = 2;            ///< 2, 3, 4, 8 (16 = fp16 keys)
  int value_bits = 2;          ///< 2, 3, 4, 8 (16 = fp16 values)
  int key_group = 32;          ///< tokens per per-channel key scale/zero (KIVI's G)
  int value_quant_group = 32;  ///< channels per per-token value scale/zero; 0 = the whole row
  int residual = 128;          ///< newest tokens kept in fp16 (KIVI's R)
};

/// Throws Error(kInvalidArgument) unless `config` is valid for rows of num_kv_heads·head_dim
/// channels: supported bits, key_group >= 1, value_quant_group dividing head_dim (a group never
/// straddles two heads), residual >= 0.
void validate_kivi_config(const KiviConfig& config, int num_kv_heads, int head_dim);

/// Asymptotic bytes per token of one layer's KIVI cache (quantized tokens): keys
/// num_kv_heads·head_dim·(ceil(key_group·key_bits/8) + 4)/key_group (no scale/zero at 16 bits),
/// values latent_bytes_per_token(num_kv_heads·head_dim, {value_bits, value_quant_group}).
double kivi_bytes_per_token(const KiviConfig& config, int num_kv_heads, int head_dim);

/// Per-layer KIVI-style KV cache of one sequence; same contract as LatentKvCache.
class KiviKvCache {
 public:
  /// `weights` (W_q, W_k, W_v, W_o and biases) must outlive the cache. Throws
  /// Error(kInvalidArgument) on inconsistent shapes or config.
  KiviKvCache(const LlamaConfig& config, const LlamaLayerWeights& weights, const KiviConfig& kivi,
              std::shared_ptr<AttentionWorkspace> workspace = nullptr);
  ~KiviKvCache();
  KiviKvCache(KiviKvCache&&) noexcept;
  KiviKvCache& operator=(KiviKvCache&&) noexcept;

  /// Projects x [n, d_model] to keys (RoPE at `positions`) and values and stores them; positions
  /// >= 0, strictly increasing, after every cached one. Throws Error(kInvalidArgument) on a
  /// shape/position error, Error(kNumericalError) for a non-finite x or a key/value outside the
  /// fp16 range; nothing is stored then.
  void append(const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions);
  /// Queries x [n, d_model] at non-decreasing positions; query i sees cached tokens at positions
  /// <= positions[i] (at least one). out [n, d_model] after o_proj (+ bias).
  void attend(const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions,
              Eigen::Ref<MatrixRM> out);
  /// append, then attend with the same rows (reading the chunk back from the cache).
  void forward(const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions,
               Eigen::Ref<MatrixRM> out);
  void reset();
  void reserve(int64_t tokens);

  int64_t size() const { return static_cast<int64_t>(positions_.size()); }
  const KiviConfig& config() const { return kivi_; }
  /// Keys (after RoPE) and values as attention reads them, [size(), num_kv_heads·head_dim].
  MatrixRM keys() const;
  MatrixRM values() const;
  /// Tokens whose keys / values are quantized (the rest are in the fp16 window).
  int64_t quantized_keys() const;
  int64_t quantized_values() const;

  /// kivi_bytes_per_token() of this layer.
  double bytes_per_token() const;
  /// Bytes per token in the fp16 window (keys and values): 4·num_kv_heads·head_dim.
  int64_t residual_bytes_per_token() const;
  /// Bytes held now, measured on the buffers.
  int64_t bytes_held() const;

 private:
  void attend_rows(const Eigen::Ref<const MatrixRM>& x, const detail::RopeAngles& angles,
                   int64_t first_angle, const std::vector<int64_t>& visible,
                   Eigen::Ref<MatrixRM> out);
  void check_output(const Eigen::Ref<MatrixRM>& out, int64_t n) const;

  int d_model_, num_qo_heads_, num_kv_heads_, head_dim_;
  const LlamaLayerWeights* weights_;
  KiviConfig kivi_;
  std::shared_ptr<AttentionWorkspace> ws_;
  std::vector<double> inv_freq_;
  MatrixRM wkv_;         // [W_k; W_v], one GEMM per chunk
  Eigen::VectorXf bkv_;  // [b_k; b_v] or empty
  std::unique_ptr<detail::ChannelGroupStore> keys_;
  LatentStore values_;  // per-token rows of num_kv_heads·head_dim channels
  std::vector<int64_t> positions_;
  std::unique_ptr<detail::RopeAngles> query_angles_;
};

/// AttentionBackend with a KiviKvCache per layer (one sequence); layers share one workspace.
class KiviAttention final : public PerLayerAttention<KiviKvCache> {
 public:
  /// `weights` must outlive the backend.
  KiviAttention(const LlamaWeights& weights, const KiviConfig& config);

  /// Σ over layers of KiviKvCache::bytes_per_token().
  double bytes_per_token() const {
    return sum<double>([](const KiviKvCache& c) { return c.bytes_per_token(); });
  }
};

}  // namespace latentkv
