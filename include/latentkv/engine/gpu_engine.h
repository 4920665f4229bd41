// The GPU inference engine (issue 6, design §4): a Llama-family forward pass on the GPU over a
// paged KV cache that holds either fp16 keys/values (the baseline) or only latents.
//
// Per layer: RMSNorm, one fused QKV (or Q) cuBLAS GEMM, RoPE, then
//   * fp16 cache:   K/V appended to the pages; attention by paged_decode (one query per
//                   sequence) or prefill_attention (chunks, causal) straight from the pages;
//   * latent cache: latents appended (latent_append: GEMM with A_cat, quantize, pack, fp16
//                   residual window); decode by the fused latent_decode kernel + B_v
//                   (value_up_projection); prefill by reading the sequence's latents back
//                   (latent_gather), rebuilding K/V with B_k / B_v GEMMs, RoPE on the rebuilt keys
//                   and prefill_attention — only latents are ever stored;
// then W_o and the SwiGLU MLP accumulate into the fp32 residual stream (cuBLAS with beta = 1).
//
// Sequences live in slots 0..max_batch-1; slot b owns pages [b*P, (b+1)*P) of the pool (P =
// ceil(max_seq_len / page_size)), listed in a CSR page table that the kernels read. A decode step
// runs slots 0..B-1 together with ragged lengths; on the fp16 cache or the fused latent kernel it
// never allocates and is captured once per batch size into a CUDA graph that later steps replay
// (token ids and lengths live on the device). The rebuild fallback (latent shapes the fused
// kernel does not take) runs uncaptured and grows its scratch when a sequence outgrows it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "latentkv/engine/gpu_latent_factors.h"
#include "latentkv/engine/gpu_weights.h"
#include "latentkv/model/causal_lm.h"

namespace latentkv {

/// Sizes fixed when an engine is built.
struct GpuEngineOptions {
  int max_batch = 1;        ///< sequence slots (decode batch size up to this)
  int64_t max_seq_len = 0;  ///< tokens per sequence; 0 = the model's context length
  int page_size = 16;       ///< tokens per cache page
  int max_chunk = 512;      ///< prefill rows per forward pass (longer prompts are chunked)
  bool cuda_graphs = true;  ///< replay decode steps from captured CUDA graphs
};

/// Device memory an engine needs besides the model weights and latent factors (bytes).
struct GpuEngineMemory {
  int64_t kv_cache = 0;            ///< pages (+ latent scale/zero and fp16 residual windows)
  int64_t scratch = 0;             ///< activations, logits, workspaces
  int64_t kv_bytes_per_token = 0;  ///< cache bytes per token, all layers
  int64_t total() const { return kv_cache + scratch; }
};

class GpuEngine {
 public:
  /// fp16 KV cache (`factors` null) or latent cache (`factors` of a compressed model of the same
  /// shape). Both must outlive the engine. Throws Error(kInvalidArgument) for bad options or
  /// factors of another shape, Error(kUnsupported) for shapes the kernels do not support,
  /// Error(kOutOfMemory) naming the bytes needed and free when the GPU is too small.
  GpuEngine(const GpuModelWeights& weights, const GpuLatentFactors* factors,
            const GpuEngineOptions& options);
  ~GpuEngine();
  GpuEngine(const GpuEngine&) = delete;
  GpuEngine& operator=(const GpuEngine&) = delete;

  /// What an engine with these options needs (no allocation); `factors` null = fp16 cache.
  static GpuEngineMemory memory_needed(const LlamaConfig& config, const GpuLatentFactors* factors,
                                       const GpuEngineOptions& options);

  const LlamaConfig& config() const { return config_; }
  const GpuEngineOptions& options() const { return options_; }
  bool latent() const { return factors_ != nullptr; }
  /// "fp16" or "latent (4-bit, residual 32)"; the decode path in use ("fused latent decode" or
  /// why the rebuild fallback is used).
  std::string describe() const;
  const GpuEngineMemory& memory() const { return memory_; }

  /// Tokens cached for slot `seq`.
  int64_t length(int seq) const;
  /// Empties slot `seq`.
  void reset(int seq);
  /// Empties every slot.
  void reset_all();

  /// Appends `tokens` to slot `seq` (chunks of max_chunk rows) and runs the whole model. When
  /// `logits` is non-null it receives the logits of rows [logits_from, n) ([n - logits_from,
  /// vocab_size], fp32). Throws Error(kInvalidArgument) for an empty chunk, a bad token id or slot,
  /// or a sequence that would exceed max_seq_len ("exceeds its pages").
  void prefill(int seq, const std::vector<TokenId>& tokens, MatrixRM* logits,
               int64_t logits_from = 0);

  /// One decode step for slots 0..B-1 (B = tokens.size() <= max_batch): token b is appended to
  /// slot b at position length(b). The logits stay on the device (logits_device(), [B, vocab]);
  /// copy them with copy_logits(). Asynchronous on the engine's stream.
  void decode(const std::vector<TokenId>& tokens);
  /// fp32 [B, vocab_size] logits of the last decode step (device pointer).
  const float* logits_device() const;
  /// Copies the last decode step's logits to the host (synchronizes).
  void copy_logits(int batch, MatrixRM* logits) const;
  /// Greedy next tokens of the last decode step for slots 0..B-1 (arg-max on the GPU).
  std::vector<TokenId> argmax(int batch);
  /// Sampled next tokens of the last decode step for slots 0..B-1, on the GPU: softmax at
  /// `temperature` (<= 0: arg-max), nucleus of mass `top_p` in (0, 1], inverse CDF in token-id
  /// order at uniforms[b] in [0, 1) (engine/model_ops.h sample_rows_run).
  std::vector<TokenId> sample(int batch, float temperature, float top_p,
                              const std::vector<float>& uniforms);
  /// Waits for the engine's stream.
  void synchronize() const;
  /// The engine's CUDA stream (cudaStream_t).
  void* stream() const;

  /// Benchmarks: sets slot lengths without running the model (cache contents are whatever the
  /// pages hold; for timing only). Lengths must be <= max_seq_len.
  void set_lengths_for_benchmark(const std::vector<int64_t>& lengths);

  struct Impl;

 private:
  const LlamaConfig config_;
  const GpuEngineOptions options_;
  const GpuModelWeights& weights_;
  const GpuLatentFactors* factors_;
  GpuEngineMemory memory_;
  std::unique_ptr<Impl> impl_;
};

/// One sequence on a GpuEngine as a CausalLm, for latentkv-ppl / latentkv-generate
/// (--device cuda): owns the weights, factors and a batch-1 engine.
class GpuLlama final : public CausalLm {
 public:
  /// Uploads `weights` (and the factors of `compressed`, when non-null) and builds an engine for
  /// sequences up to `max_seq_len` tokens (0 = the model's context length).
  GpuLlama(const LlamaWeights& weights, const CompressedModel* compressed, int64_t max_seq_len,
           const ProgressFn& progress = {});
  ~GpuLlama() override;

  const LlamaConfig& config() const override { return engine_->config(); }
  void reset() override;
  int64_t position() const override { return engine_->length(0); }
  void reserve(int64_t num_tokens) override;
  void forward(const std::vector<TokenId>& tokens, MatrixRM* logits,
               int64_t logits_from = 0) override;

  GpuEngine& engine() { return *engine_; }

 private:
  std::unique_ptr<GpuModelWeights> weights_;
  std::unique_ptr<GpuLatentFactors> factors_;
  std::unique_ptr<GpuEngine> engine_;
};

/// Whether a CUDA GPU this build can run kernels on is present (false without CUDA support).
bool gpu_available();

}  // namespace latentkv
