// Causal fp16 prefill attention of one sequence over a paged (or dense) K/V cache (design §4):
// the n query rows of a chunk attend over the T cached keys, the chunk's own keys included.
//
// Query row i (0 <= i < n) sits at position T - n + i and sees keys [0, T - n + i]:
//   out[i, h] = Σ_t softmax_t(sm_scale · q[i,h]·k[kv,t]) · v[kv,t],   kv = h / (H_qo / H_kv),
// fp32 accumulation, fp16 output. Cache layout per layer, "HND" pages as in paged_decode.h: element
// d of key t of KV head kv sits at
//   k_cache[pages[t / page_size]*page_stride + idx(kv)*head_stride + (t % page_size)*token_stride
//           + d],   idx(kv) = kv_head_index ? kv_head_index[kv] : kv,
// and v_cache uses the same offsets. A dense contiguous K/V is one page: pages = {0},
// page_size >= T.
//
// Kernels (kernels/prefill_attention.cuh, CUDA cores, fp32 online softmax): a flash-attention
// tile kernel (one CTA per 16 query rows and query head, K/V tiles staged in shared memory) for
// large chunks, and a row kernel (one CTA per query row and head, keys split over the CTA's
// threads) for chunks too small to fill the GPU, such as single-token decode fallbacks. Neither
// needs a workspace.
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"

namespace latentkv {

/// Parameters of one prefill-attention call (one sequence, one layer). Pointers are device
/// pointers for prefill_attention_run() and host pointers for reference::prefill_attention();
/// nothing is owned. Strides are in elements and need no alignment.
struct PrefillAttentionParams {
  int num_qo_heads = 0, num_kv_heads = 0, head_dim = 0;
  int num_queries = 0;  ///< n >= 1 query rows (the chunk's tokens, already RoPE'd)
  int num_keys = 0;     ///< T >= n cached keys incl. the chunk; query i sees keys [0, T - n + i]
  /// Queries, fp16: q[i*q_stride_token + h*q_stride_head + d].
  const void* q = nullptr;
  int64_t q_stride_token = 0, q_stride_head = 0;
  /// Key / value pages, fp16 (see the file comment); the strides are shared by K and V.
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  int64_t page_stride = 0, head_stride = 0, token_stride = 0;
  const int32_t* pages = nullptr;  ///< [ceil(T / page_size)]: key t in page pages[t / page_size]
  int page_size = 0;               ///< tokens per page, slot t % page_size
  const int32_t* kv_head_index = nullptr;  ///< optional [num_kv_heads]: buffer head of KV head kv;
                                           ///< nullptr = identity
  float sm_scale = 0.0f;                   ///< usually 1/sqrt(head_dim)
  /// Output, fp16: out[i*out_stride_token + h*out_stride_head + d].
  void* out = nullptr;
  int64_t out_stride_token = 0, out_stride_head = 0;
};

/// Ok, or kUnsupported / kInvalidArgument naming the first unsupported or inconsistent field:
/// head_dim 64 or 128; num_qo_heads a multiple of num_kv_heads with ratio 1..8; 1 <= n <= T <=
/// 2^20; page_size >= 1; sm_scale > 0; q, k_cache, v_cache, pages and out non-null.
Status prefill_attention_is_supported(const PrefillAttentionParams& p);

#if defined(LATENTKV_WITH_CUDA)
/// Runs the attention on `stream`. Never allocates or synchronizes; reads no device memory on the
/// host.
Status prefill_attention_run(const PrefillAttentionParams& p, GpuStream stream);
#endif

}  // namespace latentkv
