// A compressed model: the low-rank factors of every layer's key and value projections (plus the
// optional B_v-folded output projection), how latents are stored, how it was made, and the
// identity of the base model it belongs to. It never holds the rest of the weights: it is used
// together with the original GGUF (lkv_file.h reads and writes it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "latentkv/model/llama.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_attention.h"

namespace latentkv {

/// What a compressed model must be loaded with: the base GGUF's SHA-256 and its shape.
struct BaseModelIdentity {
  std::string sha256;  ///< lowercase hex SHA-256 of the GGUF file (as `sha256sum`)
  std::string name;    ///< general.name, for messages
  int n_layers = 0, d_model = 0, num_qo_heads = 0, num_kv_heads = 0, head_dim = 0;
  int vocab_size = 0;

  static BaseModelIdentity of(const LlamaConfig& config, std::string sha256);
  /// "SmolLM2 135M Instruct: 30 layers, d_model 576, 9 query / 3 KV heads x 64, vocab 49152".
  std::string summary() const;
  /// Whether the shape fields equal `config`'s.
  bool same_shape(const LlamaConfig& config) const;
};

/// One layer: K/V factors (and the folded W'_o when folded) plus what the decomposition measured.
struct CompressedLayer {
  LatentLayerFactors factors;
  /// Relative output error ‖(W − BA)L‖_F / ‖W L‖_F of the key / value factors on the calibration
  /// Gram Γ = L Lᵀ, measured the same way for every method (plain SVD and ALS included) so that
  /// presets compare; rotations do not change it.
  double key_error = 0.0;
  double value_error = 0.0;
};

struct CompressedModel {
  BaseModelIdentity base;
  /// How the model was made ((key, value) lines: preset, budget, allocator, calibration data, ...),
  /// shown to people; nothing reads it back as configuration.
  std::vector<std::pair<std::string, std::string>> recipe;
  QuantConfig key_quant;    ///< storage of key latents
  QuantConfig value_quant;  ///< storage of value latents
  std::vector<CompressedLayer> layers;

  /// Bytes per cached token over all layers, K and V, scale/zero included: Σ over every group of
  /// latent_bytes_per_token(rank, quant). Equal to LatentAttention::bytes_per_token().
  int64_t kv_bytes_per_token() const;
  /// The uncompressed fp16 KV cache of the base model: 4·n_layers·num_kv_heads·head_dim.
  int64_t fp16_kv_bytes_per_token() const;
  /// The latent cache configuration (chunk 1: exactly `residual` fp16 tokens).
  LatentCacheConfig cache_config() const;
  /// The recipe value for `key`, or "" when absent.
  std::string recipe_value(const std::string& key) const;

  /// Throws Error(kInvalidArgument) naming the first inconsistency: layer count, factor shapes
  /// against the base shape (ProjectionFactors::validate), folded projection widths, quant
  /// configs invalid for a group's rank.
  void validate() const;
};

/// Throws Error(kInvalidArgument) unless `model` was made from the GGUF with SHA-256
/// `gguf_sha256` and shape `config`; the message names both models. `what` names the compressed
/// file in messages.
void check_base_model(const CompressedModel& model, const std::string& gguf_sha256,
                      const LlamaConfig& config, const std::string& what);

/// The latent-cache attention backend for LlamaForward (one sequence): only latents are cached.
/// `weights` (the base model, W_q/W_o/biases read) must outlive it. Throws Error(kInvalidArgument)
/// when the factors do not fit the weights.
std::unique_ptr<LatentAttention> make_latent_attention(const LlamaWeights& weights,
                                                       const CompressedModel& model);

}  // namespace latentkv
