// The low-rank factors of a compressed model on the GPU, in the layouts the latent append,
// decode and prefill paths of the GPU engine read (issue 6, design §4).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "latentkv/attention/latent_cache.h"
#include "latentkv/model/llama.h"
#include "latentkv/quant/latent_quant.h"

namespace latentkv {

struct CompressedModel;

/// Device pointers of one layer's factors. K and V share the grouping (group_heads) and every
/// group of a layer has the same rank (what the paged latent cache stores).
struct GpuLatentLayer {
  int group_size = 0;
  int num_groups = 0;
  int rank_k = 0;  ///< latent width of every key group
  int rank_v = 0;  ///< latent width of every value group
  /// fp16 [num_groups*(rank_k + rank_v), d_model]: key groups' A, then value groups' A.
  const uint16_t* a_cat = nullptr;
  const uint16_t* b_k = nullptr;  ///< fp16 [num_groups][group_size*head_dim][rank_k]
  const uint16_t* b_v = nullptr;  ///< fp16 [num_groups][group_size*head_dim][rank_v]
  /// int8 key factors for quantized latents (latent_decode.h LatentKeyFactorsI8); null for fp16.
  const int8_t* b_k_i8 = nullptr;
  const float* b_k_i8_scale = nullptr;
  const int32_t* b_k_i8_rowsum = nullptr;
  const int32_t* group_heads = nullptr;    ///< [num_kv_heads]: KV head at (group, slot)
  const int32_t* kv_head_index = nullptr;  ///< [num_kv_heads]: g*group_size + slot of a KV head
};

/// Every layer's factors plus how latents are stored. Immutable after construction.
class GpuLatentFactors {
 public:
  /// Uploads the factors of `model` (validated). Throws Error(kUnsupported) when a layer's groups
  /// have different ranks, keys and values are grouped differently, key and value latents use
  /// different bits, or a rank is not a multiple of 16 (the paged cache and kernels need these);
  /// Error(kOutOfMemory) / Error(kCudaError) on GPU failures. A folded W'_o is not used: the
  /// engine applies B_v then W_o (the same product).
  static std::unique_ptr<GpuLatentFactors> upload(const CompressedModel& model);
  /// Random factors in the shape of `config` with consecutive groups of `group_size` KV heads,
  /// uniform ranks and `quant` latents: for speed benchmarks of model shapes without weights.
  static std::unique_ptr<GpuLatentFactors> random(const LlamaConfig& config, int group_size,
                                                  int rank_k, int rank_v, const QuantConfig& quant,
                                                  uint64_t seed);
  ~GpuLatentFactors();
  GpuLatentFactors(const GpuLatentFactors&) = delete;
  GpuLatentFactors& operator=(const GpuLatentFactors&) = delete;

  int num_layers() const { return static_cast<int>(layers_.size()); }
  /// Shape of the model the factors belong to.
  int d_model() const { return d_model_; }
  int head_dim() const { return head_dim_; }
  int num_kv_heads() const { return num_kv_heads_; }
  const GpuLatentLayer& layer(int l) const { return layers_[l]; }
  const QuantConfig& quant() const { return quant_; }  ///< keys and values alike
  /// The fp16 residual window (chunk 1: exactly `quant().residual` newest tokens, as on the CPU).
  LatentWindowPolicy window() const { return {quant_.residual, 1}; }
  /// Exact cache bytes per quantized token, all layers, K and V, scale/zero included.
  int64_t bytes_per_token() const;
  /// Device bytes of the factors.
  int64_t bytes() const { return bytes_; }

 private:
  GpuLatentFactors() = default;
  struct HostLayer;
  void build(const LlamaConfig& config, const std::vector<HostLayer>& layers, uint64_t seed);

  std::vector<GpuLatentLayer> layers_;
  int d_model_ = 0, head_dim_ = 0, num_kv_heads_ = 0;
  QuantConfig quant_;
  std::vector<void*> blocks_;  // device allocations
  int64_t bytes_ = 0;
};

}  // namespace latentkv
