// Internal state of GpuEngine (CUDA builds only): stream, cuBLAS, the paged cache, scratch
// activations, kernel plans and captured decode graphs.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <string>
#include <vector>

#include "engine/device_memory.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/attention/paged_decode.h"
#include "latentkv/engine/gpu_engine.h"

namespace latentkv {

struct GpuEngine::Impl {
  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // Here rather than in ~GpuEngine so that a constructor that throws half-way releases what it
  // made; the stream is drained before anything it may still use is freed.
  ~Impl() {
    if (stream) cudaStreamSynchronize(stream);
    for (auto& entry : graphs) cudaGraphExecDestroy(entry.second);
    if (cublas) cublasDestroy(cublas);
    if (staging_done) cudaEventDestroy(staging_done);
    if (host_staging) cudaFreeHost(host_staging);
    if (stream) cudaStreamDestroy(stream);
  }

  // Sizes.
  int rows = 0;       // scratch rows: max(max_batch, max_chunk)
  int qkv_width = 0;  // (Hq + 2 Hkv) * head_dim
  int q_width = 0;    // Hq * head_dim
  int kv_width = 0;   // Hkv * head_dim
  int page_size = 0;
  int pages_per_seq = 0;
  int64_t num_pages = 0;
  int num_sms = 0;
  float sm_scale = 0.0f;

  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  engine::DeviceArray<char> cublas_workspace;

  // Page table (CSR; slot b owns pages [b*pages_per_seq, (b+1)*pages_per_seq)) and lengths.
  engine::DeviceArray<int32_t> indptr, indices, seq_lens, seq_lens_new;
  engine::DeviceArray<int32_t> batch_indptr;   // 0, 1, ..., max_batch: one new row per sequence
  engine::DeviceArray<int32_t> chunk_indptr;   // {0, n} of the current prefill chunk
  engine::DeviceArray<int32_t> positions;      // [max_batch] decode positions (= old lengths)
  engine::DeviceArray<int32_t> position_iota;  // 0, 1, ..., max_seq_len - 1
  engine::DeviceArray<int32_t> zero_page;      // {0}: a dense K/V buffer is one page
  engine::DeviceArray<int32_t> tokens, next_tokens;
  engine::DeviceArray<float> uniforms;  // [max_batch] for sample()
  std::vector<int64_t> lens;            // host mirror of seq_lens
  int32_t* host_staging = nullptr;      // pinned: tokens and chunk_indptr uploads
  cudaEvent_t staging_done = nullptr;   // recorded after the last upload from host_staging

  // fp16 cache: per layer K and V pages, "HND" [page][kv head][slot][head_dim].
  std::vector<engine::DeviceArray<uint16_t>> k_pages, v_pages;
  int64_t page_stride = 0, head_stride = 0, token_stride = 0;

  // Latent cache: per layer one block with K/V codes, scale/zero and rings.
  struct LatentLayerCache {
    engine::DeviceArray<char> block;
    LatentCacheView k, v;
  };
  std::vector<LatentLayerCache> latent_cache;
  bool fused_decode = false;  // latent decode by the fused kernel (else rebuild fallback)
  std::string decode_path;    // what describe() reports

  // Activations.
  engine::DeviceArray<float> x;           // [rows, d_model] residual stream
  engine::DeviceArray<uint16_t> xn;       // [rows, d_model] normed
  engine::DeviceArray<uint16_t> qkv;      // [rows, qkv_width]
  engine::DeviceArray<uint16_t> attn;     // [rows, q_width]
  engine::DeviceArray<uint16_t> gate_up;  // [rows, 2 ffn]
  engine::DeviceArray<uint16_t> mlp;      // [rows, ffn]
  engine::DeviceArray<float> logits;      // [rows, vocab]
  engine::DeviceArray<double> inv_freq;

  // Decode plans per batch size (index B-1): fp16 pages, and per layer for latents.
  std::vector<DecodePlan> paged_plans;
  std::vector<std::vector<DecodePlan>> latent_plans;
  engine::DeviceArray<char> decode_workspace;
  int64_t decode_workspace_bytes = 0;
  engine::DeviceArray<char> append_workspace;
  int64_t append_workspace_bytes = 0;

  // Rebuild scratch of the latent prefill (grown on demand): latents and rebuilt K/V of one
  // sequence.
  engine::DeviceArray<uint16_t> lat_k, lat_v, k_rebuilt, v_rebuilt;
  int64_t rebuild_tokens = 0;

  std::map<int, cudaGraphExec_t> graphs;  // decode step per batch size
  const float* last_logits = nullptr;
};

}  // namespace latentkv

namespace latentkv::engine {

/// What the forward passes read: the model, the optional latent factors and the engine state.
struct ForwardContext {
  const LlamaConfig& config;
  const GpuModelWeights& weights;
  const GpuLatentFactors* factors;  // null: fp16 cache
  GpuEngine::Impl& m;
};

/// Y[M, N] (row stride ldy) = X[M, K] · W[N, K]ᵀ + beta·Y on the engine's stream; X, W fp16,
/// Y fp32 (y_f32) or fp16, fp32 accumulation.
void gemm(GpuEngine::Impl& m, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw,
          void* y, int64_t ldy, bool y_f32, int M, int N, int K, float beta);

/// The params of the ops a forward pass runs for `layer`, built in one place for the forward
/// passes and for the constructor's checks and plans (which must see the same params):
///   paged / latent decode attention (the latter with the value up-projection) of slots
///   0..batch-1, reading the lengths after the step's append (m.seq_lens_new);
PagedDecodeParams paged_decode_params(const ForwardContext& f, int layer, int batch);
LatentDecodeParams latent_decode_params(const ForwardContext& f, int layer, int batch);
///   the latent append of rows [0, n) of m.xn for the sequences of `pages`, into views k / v.
LatentAppendParams latent_append_params(const ForwardContext& f, int layer, int batch, int n,
                                        const int32_t* append_indptr, const PageTableView& pages,
                                        int32_t* lens_out, const LatentCacheView& k,
                                        const LatentCacheView& v);

/// Prefill of `n` tokens (already in m.tokens) of slot `seq` at position m.lens[seq]: every
/// layer, the cache append and, when logits_rows > 0, the logits of the last logits_rows rows
/// into m.logits. Grows the rebuild scratch first when the latent path needs more.
void prefill_chunk(const ForwardContext& f, int seq, int n, int logits_rows);

/// The decode step body for slots 0..batch-1 (tokens already in m.tokens): graph-capturable
/// when m.fused_decode or the cache is fp16. Ends with seq_lens = seq_lens_new on the device.
void decode_step(const ForwardContext& f, int batch);

/// Makes the rebuild scratch hold `tokens` tokens (synchronizes when it grows).
void reserve_rebuild(const ForwardContext& f, int64_t tokens);

}  // namespace latentkv::engine
