// The GPU engine's forward passes: a prefill chunk of one sequence and a batched decode step
// (see gpu_engine.h for the per-layer recipe).
#if defined(LATENTKV_WITH_CUDA)
#include <algorithm>

#include "engine/gpu_engine_impl.h"
#include "engine/model_ops.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/attention/latent_gather.h"
#include "latentkv/attention/paged_append.h"
#include "latentkv/attention/prefill_attention.h"

namespace latentkv::engine {
namespace {

GpuStream as_stream(cudaStream_t s) { return reinterpret_cast<GpuStream>(s); }

void check_cublas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    LKV_THROW(StatusCode::kCudaError, what, ": ", cublasGetStatusString(st));
}

// Single-sequence page table of slot `seq` inside the batch arrays (CSR entries b = seq only).
PageTableView slot_pages(GpuEngine::Impl& m, int seq, int page_size) {
  return {m.indptr.get() + seq, m.indices.get(), m.seq_lens.get() + seq, page_size};
}

// Latent cache view of slot `seq` as batch entry 0: the ring is per sequence.
LatentCacheView slot_view(LatentCacheView v, int seq) {
  v.ring = static_cast<char*>(v.ring) + seq * v.ring_seq_stride;
  return v;
}

// Appends the latents of rows [0, n) of m.xn for the sequences described by `pages`.
void latent_append(const ForwardContext& f, int layer, int batch, int n,
                   const int32_t* append_indptr, const PageTableView& pages, int32_t* lens_out,
                   const LatentCacheView& k, const LatentCacheView& v) {
  check(latent_append_run(
      latent_append_params(f, layer, batch, n, append_indptr, pages, lens_out, k, v), f.m.cublas,
      f.m.append_workspace.get(), f.m.append_workspace_bytes, as_stream(f.m.stream)));
}

// fp16 K/V of rows [0, n) of m.qkv appended to layer's pages for the sequences of `pages`.
void paged_append(const ForwardContext& f, int layer, int batch, int n,
                  const int32_t* append_indptr, const PageTableView& pages, int32_t* lens_out) {
  GpuEngine::Impl& m = f.m;
  PagedAppendParams p;
  p.batch_size = batch;
  p.num_tokens = n;
  p.num_kv_heads = f.config.num_kv_heads;
  p.head_dim = f.config.head_dim;
  p.append_indptr = append_indptr;
  p.k = m.qkv.get() + m.q_width;
  p.v = m.qkv.get() + m.q_width + m.kv_width;
  p.k_stride = p.v_stride = m.qkv_width;
  p.k_cache = m.k_pages[layer].get();
  p.v_cache = m.v_pages[layer].get();
  p.page_stride = m.page_stride;
  p.head_stride = m.head_stride;
  p.token_stride = m.token_stride;
  p.num_pages = m.num_pages;
  p.pages = pages;
  p.seq_lens_out = lens_out;
  check(paged_append_run(p, as_stream(m.stream)));
}

// Causal attention of `n` queries (q, row stride q_stride) over `keys` cached keys into m.attn
// rows [row0, row0 + n); the caller sets where the keys and values are.
PrefillAttentionParams prefill_params(const ForwardContext& f, int n, int keys, const void* q,
                                      int64_t q_stride, int row0) {
  const LlamaConfig& c = f.config;
  PrefillAttentionParams a;
  a.num_qo_heads = c.num_qo_heads;
  a.num_kv_heads = c.num_kv_heads;
  a.head_dim = c.head_dim;
  a.num_queries = n;
  a.num_keys = keys;
  a.q = q;
  a.q_stride_token = q_stride;
  a.q_stride_head = c.head_dim;
  a.sm_scale = f.m.sm_scale;
  a.out = f.m.attn.get() + int64_t{row0} * f.m.q_width;
  a.out_stride_token = f.m.q_width;
  a.out_stride_head = c.head_dim;
  return a;
}

// Attention of `n` query rows (m.qkv rows [row0, row0+n), row stride q_stride) of slot `seq`
// over its `total` cached latent tokens: latents read back, K/V rebuilt by GEMMs, RoPE on the
// keys, causal prefill attention into m.attn rows [row0, row0+n).
void latent_rebuild_attention(const ForwardContext& f, int layer, int seq, int row0, int n,
                              int64_t total, int64_t q_stride) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  const GpuLatentLayer& fl = f.factors->layer(layer);
  const GpuEngine::Impl::LatentLayerCache& lc = m.latent_cache[layer];
  const int T = static_cast<int>(total);
  const int gk = fl.num_groups * fl.rank_k, gv = fl.num_groups * fl.rank_v;
  const int32_t* pages = m.indices.get() + int64_t{seq} * m.pages_per_seq;
  for (int side = 0; side < 2; ++side) {
    LatentGatherParams g;
    g.num_groups = fl.num_groups;
    g.cache = side == 0 ? lc.k : lc.v;
    g.window = f.factors->window();
    g.pages = pages;
    g.page_size = m.page_size;
    g.seq_slot = seq;
    g.num_tokens = T;
    g.out = side == 0 ? m.lat_k.get() : m.lat_v.get();
    g.out_stride = side == 0 ? gk : gv;
    check(latent_gather_run(g, as_stream(m.stream)));
  }
  const int rows_per_group = fl.group_size * c.head_dim;
  for (int g = 0; g < fl.num_groups; ++g) {
    gemm(m, m.lat_k.get() + int64_t{g} * fl.rank_k, gk,
         fl.b_k + int64_t{g} * rows_per_group * fl.rank_k, fl.rank_k,
         m.k_rebuilt.get() + int64_t{g} * rows_per_group, m.kv_width, false, T, rows_per_group,
         fl.rank_k, 0.0f);
    gemm(m, m.lat_v.get() + int64_t{g} * fl.rank_v, gv,
         fl.b_v + int64_t{g} * rows_per_group * fl.rank_v, fl.rank_v,
         m.v_rebuilt.get() + int64_t{g} * rows_per_group, m.kv_width, false, T, rows_per_group,
         fl.rank_v, 0.0f);
  }
  check(rope_run(m.k_rebuilt.get(), T, c.num_kv_heads, c.head_dim, m.kv_width,
                 m.position_iota.get(), m.inv_freq.get(), as_stream(m.stream)));
  PrefillAttentionParams a =
      prefill_params(f, n, T, m.qkv.get() + int64_t{row0} * q_stride, q_stride, row0);
  a.k_cache = m.k_rebuilt.get();
  a.v_cache = m.v_rebuilt.get();
  a.page_stride = 0;
  a.head_stride = c.head_dim;
  a.token_stride = m.kv_width;
  a.pages = m.zero_page.get();
  a.page_size = T;
  a.kv_head_index = fl.kv_head_index;
  check(prefill_attention_run(a, as_stream(m.stream)));
}

// Rows [0, n) of the residual stream through W_o (added) and the SwiGLU MLP (added).
void output_and_mlp(const ForwardContext& f, const GpuLayerWeights& w, int n) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  gemm(m, m.attn.get(), m.q_width, w.wo, m.q_width, m.x.get(), c.d_model, true, n, c.d_model,
       m.q_width, 1.0f);
  check(rms_norm_run(m.x.get(), w.ffn_norm, n, c.d_model, static_cast<float>(c.rms_eps), m.xn.get(),
                     as_stream(m.stream)));
  gemm(m, m.xn.get(), c.d_model, w.w_gate_up, c.d_model, m.gate_up.get(), 2 * c.ffn_dim, false, n,
       2 * c.ffn_dim, c.d_model, 0.0f);
  check(swiglu_run(m.gate_up.get(), n, c.ffn_dim, m.mlp.get(), as_stream(m.stream)));
  gemm(m, m.mlp.get(), c.ffn_dim, w.w_down, c.ffn_dim, m.x.get(), c.d_model, true, n, c.d_model,
       c.ffn_dim, 1.0f);
}

// Final norm and LM head over rows [first, first + count) into m.logits rows [0, count).
void lm_head(const ForwardContext& f, int first, int count) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  check(rms_norm_run(m.x.get() + int64_t{first} * c.d_model, f.weights.output_norm(), count,
                     c.d_model, static_cast<float>(c.rms_eps), m.xn.get(), as_stream(m.stream)));
  gemm(m, m.xn.get(), c.d_model, f.weights.lm_head(), c.d_model, m.logits.get(), c.vocab_size, true,
       count, c.vocab_size, c.d_model, 0.0f);
}

// Latent decode step of layer `layer`, before the attention: the queries (W_q rows of W_qkv,
// RoPE) and the latent append of m.xn's `batch` rows. When the matrix-vector kernel takes both
// products they run in one launch, so the hidden state is read once and the small W_q and A_cat
// products share one grid.
void latent_query_and_append(const ForwardContext& f, int layer, int batch,
                             const PageTableView& old_pages) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  const GpuLayerWeights& w = f.weights.layer(layer);
  const GpuLatentLayer& fl = f.factors->layer(layer);
  const auto& lc = m.latent_cache[layer];
  const GpuStream s = as_stream(m.stream);
  const uint16_t* xn = m.xn.get();
  const bool pair = decode_gemv_takes(xn, c.d_model, w.wqkv, c.d_model, batch, c.d_model) &&
                    decode_gemv_takes(xn, c.d_model, fl.a_cat, c.d_model, batch, c.d_model);
  const int total = fl.num_groups * (fl.rank_k + fl.rank_v);
  float* latents = reinterpret_cast<float*>(m.append_workspace.get());
  if (pair) {
    // W_q: the first q_width rows of W_qkv, into the fp16 queries; A_cat: the fp32 latents, as
    // latent_append_run's own projection writes them.
    const DecodeGemvProduct q{w.wqkv, c.d_model, m.qkv.get(), m.q_width, false, m.q_width, 0.0f};
    const DecodeGemvProduct lat{fl.a_cat, c.d_model, latents, total, true, total, 0.0f};
    check(decode_gemv_pair_run(xn, c.d_model, batch, c.d_model, q, lat, s));
  } else {
    gemm(m, xn, c.d_model, w.wqkv, c.d_model, m.qkv.get(), m.q_width, false, batch, m.q_width,
         c.d_model, 0.0f);
  }
  check(rope_run(m.qkv.get(), batch, c.num_qo_heads, c.head_dim, m.q_width, m.positions.get(),
                 m.inv_freq.get(), s));
  if (pair) {
    check(latent_append_store_run(latent_append_params(f, layer, batch, batch, m.batch_indptr.get(),
                                                       old_pages, m.seq_lens_new.get(), lc.k, lc.v),
                                  latents, total, s));
  } else {
    latent_append(f, layer, batch, batch, m.batch_indptr.get(), old_pages, m.seq_lens_new.get(),
                  lc.k, lc.v);
  }
}

}  // namespace

PagedDecodeParams paged_decode_params(const ForwardContext& f, int layer, int batch) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  PagedDecodeParams d;
  d.batch_size = batch;
  d.num_qo_heads = c.num_qo_heads;
  d.num_kv_heads = c.num_kv_heads;
  d.head_dim = c.head_dim;
  d.q = m.qkv.get();
  d.q_stride_batch = m.qkv_width;
  d.q_stride_head = c.head_dim;
  d.k_cache = m.k_pages[layer].get();
  d.v_cache = m.v_pages[layer].get();
  d.page_stride = m.page_stride;
  d.head_stride = m.head_stride;
  d.token_stride = m.token_stride;
  d.pages = {m.indptr.get(), m.indices.get(), m.seq_lens_new.get(), m.page_size};
  d.sm_scale = m.sm_scale;
  d.out = m.attn.get();
  d.out_stride_batch = m.q_width;
  d.out_stride_head = c.head_dim;
  return d;
}

LatentDecodeParams latent_decode_params(const ForwardContext& f, int layer, int batch) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  const GpuLatentLayer& fl = f.factors->layer(layer);
  LatentDecodeParams d;
  d.batch_size = batch;
  d.num_qo_heads = c.num_qo_heads;
  d.num_kv_heads = c.num_kv_heads;
  d.head_dim = c.head_dim;
  d.group_size = fl.group_size;
  d.group_heads = fl.group_heads;
  d.q = m.qkv.get();
  d.q_dtype = DType::kF16;
  d.q_stride_batch = m.q_width;
  d.q_stride_head = c.head_dim;
  d.b_k = fl.b_k;
  d.b_k_i8 = fl.b_k_i8;
  d.b_k_i8_scale = fl.b_k_i8_scale;
  d.b_k_i8_rowsum = fl.b_k_i8_rowsum;
  d.inv_freq = m.inv_freq.get();
  d.sm_scale = m.sm_scale;
  d.k = m.latent_cache[layer].k;
  d.v = m.latent_cache[layer].v;
  d.window = f.factors->window();
  d.pages = {m.indptr.get(), m.indices.get(), m.seq_lens_new.get(), m.page_size};
  d.b_v = fl.b_v;  // the up-projection runs in the split combine: out is in head space
  d.out = m.attn.get();
  d.out_dtype = DType::kF16;
  d.out_stride_batch = m.q_width;
  d.out_stride_head = c.head_dim;
  return d;
}

LatentAppendParams latent_append_params(const ForwardContext& f, int layer, int batch, int n,
                                        const int32_t* append_indptr, const PageTableView& pages,
                                        int32_t* lens_out, const LatentCacheView& k,
                                        const LatentCacheView& v) {
  const GpuLatentLayer& fl = f.factors->layer(layer);
  LatentAppendParams p;
  p.batch_size = batch;
  p.num_groups = fl.num_groups;
  p.d_model = f.config.d_model;
  p.num_tokens = n;
  p.append_indptr = append_indptr;
  p.x = f.m.xn.get();
  p.x_stride = f.config.d_model;
  p.a_cat = fl.a_cat;
  p.k = k;
  p.v = v;
  p.window = f.factors->window();
  p.pages = pages;
  p.seq_lens_out = lens_out;
  return p;
}

void gemm(GpuEngine::Impl& m, const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw,
          void* y, int64_t ldy, bool y_f32, int M, int N, int K, float beta) {
  // Decode-step products (up to 8 rows) on our matrix-vector kernel, faster than cuBLAS there.
  if (decode_gemv_takes(x, ldx, w, ldw, M, K)) {
    check(decode_gemv_run(x, ldx, w, ldw, y, ldy, y_f32, M, N, K, beta, as_stream(m.stream)));
    return;
  }
  const float alpha = 1.0f;
  // Row-major Y = X·Wᵀ is column-major Yᵀ = W·Xᵀ: W is read transposed, X as is.
  check_cublas(cublasGemmEx(m.cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, CUDA_R_16F,
                            static_cast<int>(ldw), x, CUDA_R_16F, static_cast<int>(ldx), &beta, y,
                            y_f32 ? CUDA_R_32F : CUDA_R_16F, static_cast<int>(ldy),
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

void reserve_rebuild(const ForwardContext& f, int64_t tokens) {
  GpuEngine::Impl& m = f.m;
  if (!f.factors || tokens <= m.rebuild_tokens) return;
  // Grow geometrically so that token-by-token fallback decoding reallocates O(log n) times.
  const int64_t cap =
      std::min<int64_t>(std::max<int64_t>(tokens, 2 * m.rebuild_tokens), m.position_iota.size());
  int gk = 0, gv = 0;
  for (int l = 0; l < f.factors->num_layers(); ++l) {
    gk = std::max(gk, f.factors->layer(l).num_groups * f.factors->layer(l).rank_k);
    gv = std::max(gv, f.factors->layer(l).num_groups * f.factors->layer(l).rank_v);
  }
  check_cuda(cudaStreamSynchronize(m.stream), "rebuild scratch");
  m.lat_k.allocate(cap * gk, "key latents of a prefill");
  m.lat_v.allocate(cap * gv, "value latents of a prefill");
  m.k_rebuilt.allocate(cap * m.kv_width, "rebuilt keys of a prefill");
  m.v_rebuilt.allocate(cap * m.kv_width, "rebuilt values of a prefill");
  m.rebuild_tokens = cap;
}

void prefill_chunk(const ForwardContext& f, int seq, int n, int logits_rows) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  const int64_t start = m.lens[seq];
  const int64_t total = start + n;
  const int page_size = m.page_size;
  reserve_rebuild(f, total);
  const GpuStream s = as_stream(m.stream);
  const int32_t* pos = m.position_iota.get() + start;
  check(embed_tokens_run(f.weights.embeddings(), c.vocab_size, c.d_model, m.tokens.get(), n,
                         m.x.get(), s));
  for (int l = 0; l < c.n_layers; ++l) {
    const GpuLayerWeights& w = f.weights.layer(l);
    check(rms_norm_run(m.x.get(), w.attn_norm, n, c.d_model, static_cast<float>(c.rms_eps),
                       m.xn.get(), s));
    const PageTableView pages = slot_pages(m, seq, page_size);
    if (!f.factors) {
      gemm(m, m.xn.get(), c.d_model, w.wqkv, c.d_model, m.qkv.get(), m.qkv_width, false, n,
           m.qkv_width, c.d_model, 0.0f);
      check(rope_run(m.qkv.get(), n, c.num_qo_heads + c.num_kv_heads, c.head_dim, m.qkv_width, pos,
                     m.inv_freq.get(), s));
      paged_append(f, l, 1, n, m.chunk_indptr.get(), pages, m.seq_lens_new.get() + seq);
      PrefillAttentionParams a =
          prefill_params(f, n, static_cast<int>(total), m.qkv.get(), m.qkv_width, 0);
      a.k_cache = m.k_pages[l].get();
      a.v_cache = m.v_pages[l].get();
      a.page_stride = m.page_stride;
      a.head_stride = m.head_stride;
      a.token_stride = m.token_stride;
      a.pages = m.indices.get() + int64_t{seq} * m.pages_per_seq;
      a.page_size = page_size;
      check(prefill_attention_run(a, s));
    } else {
      // Only W_q's rows (the first q_width rows of W_qkv) are needed: K/V come from latents.
      gemm(m, m.xn.get(), c.d_model, w.wqkv, c.d_model, m.qkv.get(), m.q_width, false, n, m.q_width,
           c.d_model, 0.0f);
      check(rope_run(m.qkv.get(), n, c.num_qo_heads, c.head_dim, m.q_width, pos, m.inv_freq.get(),
                     s));
      const auto& lc = m.latent_cache[l];
      latent_append(f, l, 1, n, m.chunk_indptr.get(), pages, m.seq_lens_new.get() + seq,
                    slot_view(lc.k, seq), slot_view(lc.v, seq));
      latent_rebuild_attention(f, l, seq, 0, n, total, m.q_width);
    }
    output_and_mlp(f, w, n);
  }
  if (logits_rows > 0) lm_head(f, n - logits_rows, logits_rows);
  check_cuda(cudaMemcpyAsync(m.seq_lens.get() + seq, m.seq_lens_new.get() + seq, sizeof(int32_t),
                             cudaMemcpyDeviceToDevice, m.stream),
             "prefill lengths");
}

void decode_step(const ForwardContext& f, int batch) {
  GpuEngine::Impl& m = f.m;
  const LlamaConfig& c = f.config;
  const GpuStream s = as_stream(m.stream);
  const PageTableView old_pages{m.indptr.get(), m.indices.get(), m.seq_lens.get(), m.page_size};
  check(copy_positions_run(m.seq_lens.get(), batch, m.positions.get(), s));
  check(embed_tokens_run(f.weights.embeddings(), c.vocab_size, c.d_model, m.tokens.get(), batch,
                         m.x.get(), s));
  for (int l = 0; l < c.n_layers; ++l) {
    const GpuLayerWeights& w = f.weights.layer(l);
    check(rms_norm_run(m.x.get(), w.attn_norm, batch, c.d_model, static_cast<float>(c.rms_eps),
                       m.xn.get(), s));
    if (!f.factors) {
      gemm(m, m.xn.get(), c.d_model, w.wqkv, c.d_model, m.qkv.get(), m.qkv_width, false, batch,
           m.qkv_width, c.d_model, 0.0f);
      check(rope_run(m.qkv.get(), batch, c.num_qo_heads + c.num_kv_heads, c.head_dim, m.qkv_width,
                     m.positions.get(), m.inv_freq.get(), s));
      paged_append(f, l, batch, batch, m.batch_indptr.get(), old_pages, m.seq_lens_new.get());
      const PagedDecodeParams d = paged_decode_params(f, l, batch);
      check(paged_decode_run(d, m.paged_plans[batch - 1], m.decode_workspace.get(),
                             m.decode_workspace_bytes, s));
    } else {
      latent_query_and_append(f, l, batch, old_pages);
      if (m.fused_decode) {
        const LatentDecodeParams d = latent_decode_params(f, l, batch);
        check(latent_decode_run(d, m.latent_plans[l][batch - 1], m.decode_workspace.get(),
                                m.decode_workspace_bytes, s));
      } else {
        // Rebuild fallback (shapes the fused kernel does not take): one sequence at a time, with
        // lengths from the host mirror, so this path is not captured in a graph.
        for (int b = 0; b < batch; ++b)
          latent_rebuild_attention(f, l, b, b, 1, m.lens[b] + 1, m.q_width);
      }
    }
    output_and_mlp(f, w, batch);
  }
  lm_head(f, 0, batch);
  check_cuda(cudaMemcpyAsync(m.seq_lens.get(), m.seq_lens_new.get(), batch * sizeof(int32_t),
                             cudaMemcpyDeviceToDevice, m.stream),
             "decode lengths");
}

}  // namespace latentkv::engine
#endif
