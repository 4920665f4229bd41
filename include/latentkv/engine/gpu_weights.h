// Weights of a Llama-family model in GPU memory for the GPU engine (issue 6): every matrix
// dequantized to fp16 once at upload, norms in fp32.
#pragma once

#include <cstdint>
#include <memory>

#include "latentkv/model/llama.h"
#include "latentkv/progress.h"

namespace latentkv {

/// Device pointers of one decoder block. Matrices are row-major [out, in] like nn.Linear.
struct GpuLayerWeights {
  const uint16_t* wqkv = nullptr;  ///< fp16 [(num_qo_heads + 2*num_kv_heads)*head_dim, d_model]
  const uint16_t* wo = nullptr;    ///< fp16 [d_model, num_qo_heads*head_dim]
  const uint16_t* w_gate_up = nullptr;  ///< fp16 [2*ffn_dim, d_model]: gate rows, then up rows
  const uint16_t* w_down = nullptr;     ///< fp16 [d_model, ffn_dim]
  const float* attn_norm = nullptr;     ///< fp32 [d_model]
  const float* ffn_norm = nullptr;      ///< fp32 [d_model]
};

/// All weights of a model on the current CUDA device. Immutable after construction; one
/// instance may serve several engines.
class GpuModelWeights {
 public:
  /// Uploads `weights` (fp32 on the host) as fp16. Throws Error(kUnsupported) for a model with
  /// attention biases (the GPU engine runs Llama blocks without biases), Error(kNumericalError)
  /// when a weight does not fit fp16, Error(kOutOfMemory) when the GPU is too small, and
  /// Error(kCudaError) without a usable GPU.
  static std::unique_ptr<GpuModelWeights> upload(const LlamaWeights& weights,
                                                 const ProgressFn& progress = {});
  /// Random fp16 weights (uniform, scaled like an initialised model) in the shape of `config`,
  /// generated on the GPU: for speed benchmarks of model shapes we do not have weights for.
  static std::unique_ptr<GpuModelWeights> random(const LlamaConfig& config, uint64_t seed);
  /// Device bytes the weights of `config` take (what upload/random allocate).
  static int64_t bytes_for(const LlamaConfig& config);

  ~GpuModelWeights();
  GpuModelWeights(const GpuModelWeights&) = delete;
  GpuModelWeights& operator=(const GpuModelWeights&) = delete;

  const LlamaConfig& config() const { return config_; }
  const GpuLayerWeights& layer(int l) const { return layers_[l]; }
  const uint16_t* embeddings() const { return embeddings_; }  ///< fp16 [vocab_size, d_model]
  const uint16_t* lm_head() const { return lm_head_; }        ///< fp16 [vocab_size, d_model]
  const float* output_norm() const { return output_norm_; }   ///< fp32 [d_model]
  int64_t bytes() const { return bytes_; }

 private:
  GpuModelWeights() = default;
  void allocate(const LlamaConfig& config);

  LlamaConfig config_;
  void* block_ = nullptr;  // one allocation for everything
  int64_t bytes_ = 0;
  std::vector<GpuLayerWeights> layers_;
  const uint16_t* embeddings_ = nullptr;
  const uint16_t* lm_head_ = nullptr;
  const float* output_norm_ = nullptr;
};

}  // namespace latentkv
