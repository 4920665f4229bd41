// Uncompressed fp16 paged decode attention: the in-repo baseline (design §4).
//
// One query token per sequence attends over its cached keys/values (no mask beyond the length):
//   o[b, h] = Σ_t softmax_t(sm_scale · q[b,h]·k[b,kv,t]) · v[b,kv,t],   kv = h / (H_qo / H_kv).
// Cache layout per layer, "HND" pages (FlashInfer's kv_layout = HND): element d of token slot t
// of KV head kv in page p sits at k_cache[p*page_stride + kv*head_stride + t*token_stride + d]
// (strides in elements, d contiguous); v_cache uses the same strides. Keys are post-RoPE.
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"

namespace latentkv {

/// Parameters of one paged fp16 decode-attention call. Pointers are device pointers for the
/// kernel and host pointers for reference::paged_decode(); nothing is owned.
struct PagedDecodeParams {
  int batch_size = 0;
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  /// Queries, fp16: q[b*q_stride_batch + h*q_stride_head + d] (elements).
  const void* q = nullptr;
  int64_t q_stride_batch = 0, q_stride_head = 0;
  /// Key / value pages, fp16 (see the file comment).
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  int64_t page_stride = 0, head_stride = 0, token_stride = 0;
  PageTableView pages;
  /// Softmax scale, usually 1/sqrt(head_dim).
  float sm_scale = 0.0f;
  /// Output, fp16: out[b*out_stride_batch + h*out_stride_head + d]. Sequences of length 0 get 0.
  void* out = nullptr;
  int64_t out_stride_batch = 0, out_stride_head = 0;
  /// Optional natural-log log-sum-exp of the scaled scores, [batch_size][num_qo_heads] fp32
  /// (-inf for an empty sequence); nullptr to skip.
  float* lse = nullptr;
};

/// Ok, or kUnsupported / kInvalidArgument naming the first unsupported or inconsistent field:
/// head_dim 64 or 128; num_qo_heads a multiple of num_kv_heads with ratio 1..8; batch 1..256;
/// page_size >= 1; strides that keep 16-byte alignment of every head row.
Status paged_decode_is_supported(const PagedDecodeParams& params);

/// Chooses the split-KV decomposition for sequences of up to max_seq_len tokens (1..131072) on
/// a GPU with num_sms multiprocessors and sizes the workspace. Pure host code.
Status paged_decode_plan(const PagedDecodeParams& params, int max_seq_len, int num_sms,
                         DecodePlan* plan);

#if defined(LATENTKV_WITH_CUDA)
/// Runs the kernel (and the split combine) on `stream`. `workspace` (device, 16-byte aligned) must
/// hold plan.workspace_bytes; every seq_lens[b] must be <= plan.max_seq_len.
Status paged_decode_run(const PagedDecodeParams& params, const DecodePlan& plan, void* workspace,
                        int64_t workspace_bytes, GpuStream stream);
#endif

}  // namespace latentkv
