// The standard attention block with a full-width KV cache (fp32 or fp16): the default
// AttentionBackend of LlamaForward and the uncompressed baseline of every accuracy figure.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "latentkv/model/attention_backend.h"
#include "latentkv/model/llama.h"

namespace latentkv {

/// Element type of a KV cache.
enum class KvDtype { kF32, kF16 };

/// "f32" / "f16".
const char* kv_dtype_name(KvDtype dtype);
/// Parses "f32" / "f16"; throws Error(kInvalidArgument) otherwise.
KvDtype parse_kv_dtype(const std::string& name);

/// Llama attention: q/k/v projections (+ biases), RoPE on q and k (half-split, rope.h), causal
/// GQA softmax attention (query head h reads KV head h / gqa_ratio) and o_proj.
///
/// Keys are cached after RoPE, values as projected; both in `dtype`. A chunk's own keys and
/// values are written to the cache first and read back from it, so a chunk prefilled at once and
/// the same tokens decoded one by one see identically rounded keys/values (fp16 included).
/// Attention runs in fp32 with OpenMP over (query head, block of query rows).
class DenseKvAttention final : public AttentionBackend {
 public:
  /// `weights` must outlive the backend.
  explicit DenseKvAttention(const LlamaWeights& weights, KvDtype dtype = KvDtype::kF32);
  ~DenseKvAttention() override;

  void reset() override;
  int64_t cached_tokens(int layer) const override;
  void reserve(int64_t num_tokens) override;
  void forward(int layer, const Eigen::Ref<const MatrixRM>& x,
               const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) override;

  KvDtype dtype() const { return dtype_; }

 private:
  struct LayerCache;
  void grow(LayerCache& cache, int64_t needed);
  void attend(const LayerCache& cache, int64_t first_new, int64_t n);

  const LlamaWeights& weights_;
  KvDtype dtype_;
  std::vector<double> inv_freq_;
  std::vector<LayerCache> layers_;
  // Per-chunk scratch, reused across layers and chunks (resized only when n changes).
  MatrixRM q_, k_, v_, attn_;
  std::vector<double> rope_cos_, rope_sin_;
  std::vector<int64_t> rope_positions_;
  std::vector<float> widened_k_, widened_v_;  // fp16 cache widened to fp32, [nkv][T][hd]
  // Per-thread score block; Eigen's allocator aligns it for the widest SIMD packet.
  std::vector<std::vector<float, Eigen::aligned_allocator<float>>> scores_;
};

}  // namespace latentkv
