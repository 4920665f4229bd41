// GpuEngine: construction (memory check, paged cache, scratch, kernel plans), the host side of
// prefill and decode (validation, uploads, CUDA graphs), and GpuLlama on top of it.
#include "latentkv/engine/gpu_engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "latentkv/pipeline/compressed_model.h"

#if defined(LATENTKV_WITH_CUDA)
#include "engine/gpu_engine_impl.h"
#include "engine/model_ops.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/rope.h"
#endif

namespace latentkv {
namespace {

constexpr int64_t kWorkspaceAllowance = int64_t{64} << 20;  // cuBLAS + decode workspaces
constexpr int64_t kCublasWorkspace = int64_t{32} << 20;

GpuEngineOptions resolved(GpuEngineOptions o, const LlamaConfig& c) {
  if (o.max_seq_len == 0) o.max_seq_len = std::min<int64_t>(c.context_length, 131072);
  LKV_CHECK_ARG(o.max_batch >= 1 && o.max_batch <= 256, "max_batch ", o.max_batch,
                " outside [1, 256]");
  LKV_CHECK_ARG(o.max_seq_len >= 1 && o.max_seq_len <= c.context_length, "max_seq_len ",
                o.max_seq_len, " outside [1, the model's context length ", c.context_length, "]");
  // The decode kernels plan for (and RoPE is checked at) up to 128K positions.
  LKV_CHECK_ARG(o.max_seq_len <= 131072, "max_seq_len ", o.max_seq_len,
                " exceeds the 131072 tokens the decode kernels support");
  LKV_CHECK_ARG(o.page_size >= 1 && o.page_size <= 65536, "page_size ", o.page_size,
                " outside [1, 65536]");
  LKV_CHECK_ARG(o.max_chunk >= 1 && o.max_chunk <= 65536, "max_chunk ", o.max_chunk,
                " outside [1, 65536]");
  return o;
}

int64_t pages_per_seq(const GpuEngineOptions& o) {
  return (o.max_seq_len + o.page_size - 1) / o.page_size;
}

}  // namespace

GpuEngineMemory GpuEngine::memory_needed(const LlamaConfig& c, const GpuLatentFactors* factors,
                                         const GpuEngineOptions& options) {
  const GpuEngineOptions o = resolved(options, c);
  GpuEngineMemory mem;
  const int64_t num_pages = pages_per_seq(o) * o.max_batch;
  const int64_t kv_width = int64_t{c.num_kv_heads} * c.head_dim;
  int64_t rebuild = 0;
  if (!factors) {
    mem.kv_cache = int64_t{c.n_layers} * 2 * num_pages * o.page_size * kv_width * 2;
    mem.kv_bytes_per_token = int64_t{c.n_layers} * 4 * kv_width;
  } else {
    int64_t widest = 0;
    for (int l = 0; l < factors->num_layers(); ++l) {
      const GpuLatentLayer& fl = factors->layer(l);
      for (int rank : {fl.rank_k, fl.rank_v}) {
        const LatentCacheLayout lay =
            make_latent_cache_layout(fl.num_groups, rank, factors->quant(), o.page_size, num_pages,
                                     factors->window(), o.max_batch);
        mem.kv_cache += lay.codes_bytes + lay.scale_zero_bytes + lay.ring_bytes + 3 * 256;
      }
      widest = std::max<int64_t>(widest, int64_t{fl.num_groups} * (fl.rank_k + fl.rank_v));
    }
    mem.kv_bytes_per_token = factors->bytes_per_token();
    // Latents and rebuilt K/V of the longest sequence (prefill and the rebuild decode path).
    rebuild = o.max_seq_len * (widest + 2 * kv_width) * 2;
  }
  const int64_t rows = std::max(o.max_batch, o.max_chunk);
  const int64_t per_row = int64_t{c.d_model} * (4 + 2) +
                          (int64_t{c.num_qo_heads} + 2 * c.num_kv_heads) * c.head_dim * 2 +
                          int64_t{c.num_qo_heads} * c.head_dim * 2 + int64_t{c.ffn_dim} * 6 +
                          int64_t{c.vocab_size} * 4;
  mem.scratch = rows * per_row + rebuild + kWorkspaceAllowance + o.max_seq_len * 4 + num_pages * 4;
  return mem;
}

bool gpu_available() {
#if defined(LATENTKV_WITH_CUDA)
  try {
    engine::require_gpu();
    return true;
  } catch (const Error&) {
    return false;
  }
#else
  return false;
#endif
}

#if defined(LATENTKV_WITH_CUDA)

using engine::check;
using engine::check_cuda;
using engine::DeviceArray;

namespace {

template <typename T>
void upload_to(DeviceArray<T>& d, const std::vector<T>& host, const char* what) {
  d.allocate(static_cast<int64_t>(host.size()), what);
  check_cuda(cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
             what);
}

}  // namespace

GpuEngine::GpuEngine(const GpuModelWeights& weights, const GpuLatentFactors* factors,
                     const GpuEngineOptions& options)
    : config_(weights.config()),
      options_(resolved(options, weights.config())),
      weights_(weights),
      factors_(factors),
      impl_(std::make_unique<Impl>()) {
  const LlamaConfig& c = config_;
  Impl& m = *impl_;
  if (factors_) {
    LKV_CHECK_ARG(factors_->num_layers() == c.n_layers, "the latent factors have ",
                  factors_->num_layers(), " layers, the model ", c.n_layers);
    for (int l = 0; l < c.n_layers; ++l)
      LKV_CHECK_ARG(factors_->layer(l).num_groups * factors_->layer(l).group_size == c.num_kv_heads,
                    "the latent factors of layer ", l, " do not cover the model's ", c.num_kv_heads,
                    " KV heads");
  }
  if (c.head_dim != 64 && c.head_dim != 128)
    LKV_THROW(StatusCode::kUnsupported, "head_dim ", c.head_dim,
              " is not supported by the GPU engine's attention kernels (64 or 128)");
  if (c.gqa_ratio() < 1 || c.gqa_ratio() > 8 || c.num_qo_heads % c.num_kv_heads != 0)
    LKV_THROW(StatusCode::kUnsupported, c.num_qo_heads, " query heads over ", c.num_kv_heads,
              " KV heads: the GPU engine's attention kernels take GQA ratios 1..8");
  engine::require_gpu();
  memory_ = memory_needed(c, factors_, options_);
  const auto [free_bytes, total_bytes] = engine::device_memory_info();
  if (memory_.total() > free_bytes) {
    const double gib = 1024.0 * 1024.0 * 1024.0;
    LKV_THROW(StatusCode::kOutOfMemory, "the GPU engine needs ", memory_.total() / gib,
              " GiB (KV cache ", memory_.kv_cache / gib, " GiB for ", options_.max_batch, " x ",
              options_.max_seq_len, " tokens, scratch ", memory_.scratch / gib,
              " GiB) but the GPU has ", free_bytes / gib, " GiB free of ", total_bytes / gib,
              ": lower the context or the batch");
  }

  m.rows = std::max(options_.max_batch, options_.max_chunk);
  m.q_width = c.num_qo_heads * c.head_dim;
  m.kv_width = c.num_kv_heads * c.head_dim;
  m.qkv_width = m.q_width + 2 * m.kv_width;
  m.page_size = options_.page_size;
  m.pages_per_seq = static_cast<int>(pages_per_seq(options_));
  m.num_pages = int64_t{m.pages_per_seq} * options_.max_batch;
  LKV_CHECK_ARG(m.num_pages <= INT32_MAX, "too many pages (", m.num_pages, ")");
  m.sm_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&m.num_sms, cudaDevAttrMultiProcessorCount, device),
             "cudaDeviceGetAttribute");
  check_cuda(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (cublasCreate(&m.cublas) != CUBLAS_STATUS_SUCCESS)
    LKV_THROW(StatusCode::kCudaError, "cublasCreate failed");
  // A fixed cuBLAS workspace: GEMMs then never allocate, which CUDA-graph capture requires.
  m.cublas_workspace.allocate(kCublasWorkspace, "cuBLAS workspace");
  if (cublasSetStream(m.cublas, m.stream) != CUBLAS_STATUS_SUCCESS ||
      cublasSetWorkspace(m.cublas, m.cublas_workspace.get(), kCublasWorkspace) !=
          CUBLAS_STATUS_SUCCESS)
    LKV_THROW(StatusCode::kCudaError, "cuBLAS stream/workspace setup failed");
  check_cuda(cudaMallocHost(&m.host_staging, (m.rows + 2) * sizeof(int32_t)), "pinned staging");
  check_cuda(cudaEventCreateWithFlags(&m.staging_done, cudaEventDisableTiming), "staging event");

  // Page table: slot b owns a fixed run of pages; lengths start at zero.
  std::vector<int32_t> indptr(options_.max_batch + 1), indices(m.num_pages);
  for (int b = 0; b <= options_.max_batch; ++b) indptr[b] = b * m.pages_per_seq;
  std::iota(indices.begin(), indices.end(), 0);
  upload_to(m.indptr, indptr, "page table");
  upload_to(m.indices, indices, "page table");
  std::vector<int32_t> batch_indptr(options_.max_batch + 1);
  std::iota(batch_indptr.begin(), batch_indptr.end(), 0);
  upload_to(m.batch_indptr, batch_indptr, "append offsets");
  std::vector<int32_t> iota(options_.max_seq_len);
  std::iota(iota.begin(), iota.end(), 0);
  upload_to(m.position_iota, iota, "positions");
  upload_to(m.zero_page, std::vector<int32_t>{0}, "page list");
  upload_to(m.seq_lens, std::vector<int32_t>(options_.max_batch, 0), "lengths");
  upload_to(m.seq_lens_new, std::vector<int32_t>(options_.max_batch, 0), "lengths");
  m.chunk_indptr.allocate(2, "chunk offsets");
  m.positions.allocate(options_.max_batch, "positions");
  m.tokens.allocate(m.rows, "token ids");
  m.next_tokens.allocate(options_.max_batch, "next tokens");
  m.uniforms.allocate(options_.max_batch, "sampling uniforms");
  m.lens.assign(options_.max_batch, 0);
  upload_to(m.inv_freq, rope_inv_freq(c.rope, c.head_dim), "RoPE frequencies");

  // Activations.
  m.x.allocate(int64_t{m.rows} * c.d_model, "residual stream");
  m.xn.allocate(int64_t{m.rows} * c.d_model, "normed activations");
  m.qkv.allocate(int64_t{m.rows} * m.qkv_width, "q/k/v");
  m.attn.allocate(int64_t{m.rows} * m.q_width, "attention output");
  m.gate_up.allocate(int64_t{m.rows} * 2 * c.ffn_dim, "MLP gate/up");
  m.mlp.allocate(int64_t{m.rows} * c.ffn_dim, "MLP hidden");
  m.logits.allocate(int64_t{m.rows} * c.vocab_size, "logits");

  const engine::ForwardContext f{c, weights_, factors_, m};
  if (!factors_) {
    m.token_stride = c.head_dim;
    m.head_stride = int64_t{options_.page_size} * c.head_dim;
    m.page_stride = m.head_stride * c.num_kv_heads;
    for (int l = 0; l < c.n_layers; ++l) {
      m.k_pages.emplace_back(m.num_pages * m.page_stride, "fp16 key cache");
      m.v_pages.emplace_back(m.num_pages * m.page_stride, "fp16 value cache");
      // Zeroed so that benchmark lengths set without a prefill read finite numbers.
      check_cuda(cudaMemset(m.k_pages.back().get(), 0, m.k_pages.back().bytes()), "cache init");
      check_cuda(cudaMemset(m.v_pages.back().get(), 0, m.v_pages.back().bytes()), "cache init");
    }
    PagedDecodeParams d = engine::paged_decode_params(f, 0, 1);
    for (int b = 1; b <= options_.max_batch; ++b) {
      d.batch_size = b;
      check(paged_decode_is_supported(d));
      DecodePlan plan;
      check(paged_decode_plan(d, static_cast<int>(options_.max_seq_len), m.num_sms, &plan));
      m.decode_workspace_bytes = std::max(m.decode_workspace_bytes, plan.workspace_bytes);
      m.paged_plans.push_back(plan);
    }
    m.decode_path = "paged fp16 decode";
  } else {
    const LatentWindowPolicy window = factors_->window();
    m.fused_decode = true;
    m.latent_plans.resize(c.n_layers);
    for (int l = 0; l < c.n_layers; ++l) {
      const GpuLatentLayer& fl = factors_->layer(l);
      auto layout = [&](int rank) {
        return make_latent_cache_layout(fl.num_groups, rank, factors_->quant(), options_.page_size,
                                        m.num_pages, window, options_.max_batch);
      };
      const LatentCacheLayout k = layout(fl.rank_k), v = layout(fl.rank_v);
      Impl::LatentLayerCache lc;
      // One block per layer: K codes, scale/zero, ring, then V's, each 256-byte aligned.
      const int64_t sizes[6] = {k.codes_bytes, k.scale_zero_bytes, k.ring_bytes,
                                v.codes_bytes, v.scale_zero_bytes, v.ring_bytes};
      auto aligned = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };
      int64_t total = 0;
      for (int64_t s : sizes) total += aligned(s);
      lc.block.allocate(total, "latent cache");
      check_cuda(cudaMemset(lc.block.get(), 0, total), "cache init");
      char* at = lc.block.get();
      void* ptr[6];
      for (int i = 0; i < 6; ++i) {
        ptr[i] = at;
        at += aligned(sizes[i]);
      }
      lc.k = k.view;
      lc.k.codes = ptr[0];
      lc.k.scale_zero = ptr[1];
      lc.k.ring = ptr[2];
      lc.v = v.view;
      lc.v.codes = ptr[3];
      lc.v.scale_zero = ptr[4];
      lc.v.ring = ptr[5];
      m.latent_cache.push_back(std::move(lc));

      const LatentAppendParams ap = engine::latent_append_params(
          f, l, options_.max_batch, m.rows, m.batch_indptr.get(),
          {m.indptr.get(), m.indices.get(), m.seq_lens.get(), options_.page_size},
          m.seq_lens_new.get(), m.latent_cache[l].k, m.latent_cache[l].v);
      check(latent_append_gemm_is_supported(ap));
      m.append_workspace_bytes =
          std::max(m.append_workspace_bytes, latent_append_workspace_bytes(ap, m.rows));
    }
    for (int l = 0; l < c.n_layers && m.fused_decode; ++l) {
      LatentDecodeParams d = engine::latent_decode_params(f, l, 1);
      for (int b = 1; b <= options_.max_batch; ++b) {
        d.batch_size = b;
        const Status st = latent_decode_is_supported(d);
        if (!st.ok()) {
          m.fused_decode = false;
          m.decode_path = str_cat(
              "rebuild decode (the fused latent decode kernel does not take "
              "this model: ",
              st.message(), ")");
          break;
        }
        DecodePlan plan;
        check(latent_decode_plan(d, static_cast<int>(options_.max_seq_len), m.num_sms, &plan));
        m.decode_workspace_bytes = std::max(m.decode_workspace_bytes, plan.workspace_bytes);
        m.latent_plans[l].push_back(plan);
      }
    }
    if (m.fused_decode) m.decode_path = "fused latent decode";
    m.append_workspace.allocate(m.append_workspace_bytes, "latent append workspace");
  }
  m.decode_workspace.allocate(m.decode_workspace_bytes, "decode workspace");
  check_cuda(cudaDeviceSynchronize(), "engine setup");
}

GpuEngine::~GpuEngine() = default;

std::string GpuEngine::describe() const {
  if (!factors_) return str_cat("fp16 KV cache, ", impl_->decode_path);
  const QuantConfig& q = factors_->quant();
  return str_cat("latent cache (", q.bits == 16 ? std::string("fp16") : str_cat(q.bits, "-bit"),
                 " latents, residual ", q.residual, "), ", impl_->decode_path);
}

int64_t GpuEngine::length(int seq) const {
  LKV_CHECK_ARG(seq >= 0 && seq < options_.max_batch, "slot ", seq, " outside [0, ",
                options_.max_batch, ")");
  return impl_->lens[seq];
}

void GpuEngine::reset(int seq) {
  Impl& m = *impl_;
  LKV_CHECK_ARG(seq >= 0 && seq < options_.max_batch, "slot ", seq, " outside [0, ",
                options_.max_batch, ")");
  const int32_t zero = 0;
  check_cuda(cudaStreamSynchronize(m.stream), "reset");
  check_cuda(cudaMemcpy(m.seq_lens.get() + seq, &zero, 4, cudaMemcpyHostToDevice), "reset");
  check_cuda(cudaMemcpy(m.seq_lens_new.get() + seq, &zero, 4, cudaMemcpyHostToDevice), "reset");
  m.lens[seq] = 0;
}

void GpuEngine::reset_all() {
  for (int b = 0; b < options_.max_batch; ++b) reset(b);
}

namespace {

void check_tokens(const std::vector<TokenId>& tokens, int vocab) {
  for (TokenId t : tokens)
    LKV_CHECK_ARG(t >= 0 && t < vocab, "token id ", t, " outside the vocabulary [0, ", vocab, ")");
}

// Copies `count` ints to `dst` through the pinned staging buffer, after the previous upload from
// it has completed (no full stream synchronization per step).
void stage_upload(GpuEngine::Impl& m, int32_t* dst, const int32_t* src, int count,
                  int staging_offset) {
  check_cuda(cudaEventSynchronize(m.staging_done), "staging");
  std::copy(src, src + count, m.host_staging + staging_offset);
  check_cuda(cudaMemcpyAsync(dst, m.host_staging + staging_offset, count * sizeof(int32_t),
                             cudaMemcpyHostToDevice, m.stream),
             "token upload");
  check_cuda(cudaEventRecord(m.staging_done, m.stream), "staging");
}

}  // namespace

void GpuEngine::prefill(int seq, const std::vector<TokenId>& tokens, MatrixRM* logits,
                        int64_t logits_from) {
  Impl& m = *impl_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  LKV_CHECK_ARG(n >= 1, "empty prefill chunk");
  LKV_CHECK_ARG(logits_from >= 0 && logits_from < n, "logits_from ", logits_from, " outside [0, ",
                n, ")");
  const int64_t start = length(seq);
  if (start + n > options_.max_seq_len)
    LKV_THROW(StatusCode::kInvalidArgument, "sequence in slot ", seq, " would reach ", start + n,
              " tokens and exceed its pages (", options_.max_seq_len, " tokens)");
  check_tokens(tokens, config_.vocab_size);
  if (logits) logits->resize(n - logits_from, config_.vocab_size);
  const engine::ForwardContext f{config_, weights_, factors_, m};
  for (int64_t at = 0; at < n; at += options_.max_chunk) {
    const int len = static_cast<int>(std::min<int64_t>(options_.max_chunk, n - at));
    stage_upload(m, m.tokens.get(), tokens.data() + at, len, 0);
    const int32_t offsets[2] = {0, len};
    stage_upload(m, m.chunk_indptr.get(), offsets, 2, m.rows);
    const int64_t first = std::max(at, logits_from);
    const int rows = logits ? static_cast<int>(std::max<int64_t>(0, at + len - first)) : 0;
    engine::prefill_chunk(f, seq, len, rows);
    m.lens[seq] += len;
    if (rows > 0)
      check_cuda(cudaMemcpyAsync(logits->data() + (first - logits_from) * config_.vocab_size,
                                 m.logits.get(), int64_t{rows} * config_.vocab_size * 4,
                                 cudaMemcpyDeviceToHost, m.stream),
                 "logits download");
  }
  check_cuda(cudaStreamSynchronize(m.stream), "prefill");
}

void GpuEngine::decode(const std::vector<TokenId>& tokens) {
  Impl& m = *impl_;
  const int batch = static_cast<int>(tokens.size());
  LKV_CHECK_ARG(batch >= 1 && batch <= options_.max_batch, "decode batch ", batch, " outside [1, ",
                options_.max_batch, "]");
  check_tokens(tokens, config_.vocab_size);
  int64_t longest = 0;
  for (int b = 0; b < batch; ++b) {
    if (m.lens[b] + 1 > options_.max_seq_len)
      LKV_THROW(StatusCode::kInvalidArgument, "sequence in slot ", b,
                " is full: one more token would exceed its pages (", options_.max_seq_len,
                " tokens)");
    longest = std::max(longest, m.lens[b] + 1);
  }
  const engine::ForwardContext f{config_, weights_, factors_, m};
  const bool graph = options_.cuda_graphs && (!factors_ || m.fused_decode);
  if (factors_ && !m.fused_decode) engine::reserve_rebuild(f, longest);
  stage_upload(m, m.tokens.get(), tokens.data(), batch, 0);
  if (graph) {
    auto it = m.graphs.find(batch);
    if (it == m.graphs.end()) {
      cudaGraph_t g = nullptr;
      check_cuda(cudaStreamBeginCapture(m.stream, cudaStreamCaptureModeThreadLocal),
                 "graph capture");
      try {
        engine::decode_step(f, batch);
      } catch (...) {
        cudaStreamEndCapture(m.stream, &g);
        if (g) cudaGraphDestroy(g);
        throw;
      }
      check_cuda(cudaStreamEndCapture(m.stream, &g), "graph capture");
      cudaGraphExec_t exec = nullptr;
      const cudaError_t err = cudaGraphInstantiate(&exec, g, 0);
      cudaGraphDestroy(g);
      check_cuda(err, "graph instantiate");
      it = m.graphs.emplace(batch, exec).first;
    }
    check_cuda(cudaGraphLaunch(it->second, m.stream), "graph launch");
  } else {
    engine::decode_step(f, batch);
  }
  for (int b = 0; b < batch; ++b) ++m.lens[b];
}

const float* GpuEngine::logits_device() const { return impl_->logits.get(); }

void GpuEngine::copy_logits(int batch, MatrixRM* logits) const {
  LKV_CHECK_ARG(batch >= 1 && batch <= options_.max_batch, "batch ", batch, " outside [1, ",
                options_.max_batch, "]");
  logits->resize(batch, config_.vocab_size);
  check_cuda(
      cudaMemcpyAsync(logits->data(), impl_->logits.get(), int64_t{batch} * config_.vocab_size * 4,
                      cudaMemcpyDeviceToHost, impl_->stream),
      "logits download");
  synchronize();
}

std::vector<TokenId> GpuEngine::argmax(int batch) {
  Impl& m = *impl_;
  LKV_CHECK_ARG(batch >= 1 && batch <= options_.max_batch, "batch ", batch, " outside [1, ",
                options_.max_batch, "]");
  check(engine::argmax_rows_run(m.logits.get(), batch, config_.vocab_size, config_.vocab_size,
                                m.next_tokens.get(), reinterpret_cast<GpuStream>(m.stream)));
  std::vector<TokenId> out(batch);
  check_cuda(
      cudaMemcpyAsync(out.data(), m.next_tokens.get(), batch * 4, cudaMemcpyDeviceToHost, m.stream),
      "argmax download");
  synchronize();
  return out;
}

std::vector<TokenId> GpuEngine::sample(int batch, float temperature, float top_p,
                                       const std::vector<float>& uniforms) {
  Impl& m = *impl_;
  LKV_CHECK_ARG(batch >= 1 && batch <= options_.max_batch, "batch ", batch, " outside [1, ",
                options_.max_batch, "]");
  LKV_CHECK_ARG(static_cast<int>(uniforms.size()) == batch, uniforms.size(), " uniforms for ",
                batch, " sequences");
  for (float u : uniforms) LKV_CHECK_ARG(u >= 0.0f && u < 1.0f, "uniform ", u, " outside [0, 1)");
  check_cuda(cudaMemcpyAsync(m.uniforms.get(), uniforms.data(), batch * sizeof(float),
                             cudaMemcpyHostToDevice, m.stream),
             "uniforms upload");
  check(engine::sample_rows_run(m.logits.get(), batch, config_.vocab_size, config_.vocab_size,
                                temperature, top_p, m.uniforms.get(), m.next_tokens.get(),
                                reinterpret_cast<GpuStream>(m.stream)));
  std::vector<TokenId> out(batch);
  check_cuda(
      cudaMemcpyAsync(out.data(), m.next_tokens.get(), batch * 4, cudaMemcpyDeviceToHost, m.stream),
      "sample download");
  synchronize();
  return out;
}

void GpuEngine::synchronize() const {
  check_cuda(cudaStreamSynchronize(impl_->stream), "engine stream");
}

void* GpuEngine::stream() const { return impl_->stream; }

void GpuEngine::set_lengths_for_benchmark(const std::vector<int64_t>& lengths) {
  Impl& m = *impl_;
  LKV_CHECK_ARG(static_cast<int>(lengths.size()) <= options_.max_batch, lengths.size(),
                " lengths for ", options_.max_batch, " slots");
  for (int64_t len : lengths)
    LKV_CHECK_ARG(len >= 0 && len <= options_.max_seq_len, "length ", len, " outside [0, ",
                  options_.max_seq_len, "]");
  // Slots past lengths.size() become empty, on the host and on the device alike.
  std::vector<int32_t> lens(options_.max_batch, 0);
  m.lens.assign(options_.max_batch, 0);
  for (size_t b = 0; b < lengths.size(); ++b) {
    lens[b] = static_cast<int32_t>(lengths[b]);
    m.lens[b] = lengths[b];
  }
  synchronize();
  check_cuda(cudaMemcpy(m.seq_lens.get(), lens.data(), lens.size() * 4, cudaMemcpyHostToDevice),
             "lengths");
  check_cuda(cudaMemcpy(m.seq_lens_new.get(), lens.data(), lens.size() * 4, cudaMemcpyHostToDevice),
             "lengths");
}

#else  // !LATENTKV_WITH_CUDA

struct GpuEngine::Impl {};

GpuEngine::GpuEngine(const GpuModelWeights& weights, const GpuLatentFactors* factors,
                     const GpuEngineOptions& options)
    : config_(weights.config()), options_(options), weights_(weights), factors_(factors) {
  LKV_THROW(StatusCode::kUnsupported, "this latentkv build has no CUDA support");
}
GpuEngine::~GpuEngine() = default;
std::string GpuEngine::describe() const { return {}; }
int64_t GpuEngine::length(int) const { return 0; }
void GpuEngine::reset(int) {}
void GpuEngine::reset_all() {}
void GpuEngine::prefill(int, const std::vector<TokenId>&, MatrixRM*, int64_t) {}
void GpuEngine::decode(const std::vector<TokenId>&) {}
const float* GpuEngine::logits_device() const { return nullptr; }
void GpuEngine::copy_logits(int, MatrixRM*) const {}
std::vector<TokenId> GpuEngine::argmax(int) { return {}; }
std::vector<TokenId> GpuEngine::sample(int, float, float, const std::vector<float>&) { return {}; }
void GpuEngine::synchronize() const {}
void* GpuEngine::stream() const { return nullptr; }
void GpuEngine::set_lengths_for_benchmark(const std::vector<int64_t>&) {}

#endif

// ---- GpuLlama ----------------------------------------------------------------------------

GpuLlama::GpuLlama(const LlamaWeights& weights, const CompressedModel* compressed,
                   int64_t max_seq_len, const ProgressFn& progress) {
  weights_ = GpuModelWeights::upload(weights, progress);
  if (compressed) factors_ = GpuLatentFactors::upload(*compressed);
  GpuEngineOptions o;
  o.max_batch = 1;
  o.max_seq_len = max_seq_len;
  engine_ = std::make_unique<GpuEngine>(*weights_, factors_.get(), o);
}

GpuLlama::~GpuLlama() = default;

void GpuLlama::reset() { engine_->reset(0); }

void GpuLlama::reserve(int64_t num_tokens) {
  LKV_CHECK_ARG(num_tokens <= engine_->options().max_seq_len, "cannot reserve ", num_tokens,
                " tokens: the GPU engine was built for ", engine_->options().max_seq_len);
}

void GpuLlama::forward(const std::vector<TokenId>& tokens, MatrixRM* logits, int64_t logits_from) {
  if (tokens.size() == 1 && position() > 0 && logits_from == 0) {
    engine_->decode(tokens);
    if (logits) engine_->copy_logits(1, logits);
    return;
  }
  engine_->prefill(0, tokens, logits, logits_from);
}

}  // namespace latentkv
