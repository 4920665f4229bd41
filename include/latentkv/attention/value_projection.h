// Value up-projection after latent decode attention (design §3.8): the latent-space result
// z[b, h, :rank_v] of latent_decode becomes per-head outputs o[b, h, :head_dim] with the group's
// B_v (then the engine's W_o GEMM), or goes straight through a folded W'_o. Both are cuBLAS GEMMs
// (fp16 in, fp32 accumulate).
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"

struct cublasContext;  // = cublasHandle_t

namespace latentkv {

/// o[b, h, :] = B_v,g[s] · z[b, h, :] for query head h, KV head kv = h / ratio at (group g, slot
/// s).
struct ValueUpProjectionParams {
  int batch_size = 0;
  int num_qo_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int group_size = 0;
  int rank_v = 0;
  const int32_t* group_heads = nullptr;  ///< device, [num_kv_heads] (value factors' grouping)
  /// Value up-projections, fp16 [num_groups][group_size*head_dim][rank_v].
  const uint16_t* b_v = nullptr;
  /// z, fp16: z[b*z_stride_batch + h*rank_v + c] (heads contiguous).
  const uint16_t* z = nullptr;
  int64_t z_stride_batch = 0;
  /// o, fp16: o[b*o_stride_batch + h*head_dim + d].
  uint16_t* o = nullptr;
  int64_t o_stride_batch = 0;
  /// The caller's promise that group_heads is the identity (KV head i at position i) and the
  /// model is MHA: then B_v's slices are in query-head order, and the product runs as one strided
  /// batched GEMM, without the pointer kernel.
  bool heads_in_order = false;
};

/// out[b, :] = Σ_h z[b, h, :] · W'_{o,h}ᵀ with W'_o fp16 [d_model][num_qo_heads*rank_v].
struct FoldedOutputParams {
  int batch_size = 0;
  int d_model = 0;
  int num_qo_heads = 0;
  int rank_v = 0;
  const uint16_t* w_o_folded = nullptr;
  const uint16_t* z = nullptr;  ///< fp16 [batch][num_qo_heads*rank_v], row stride z_stride_batch
  int64_t z_stride_batch = 0;
  uint16_t* out = nullptr;  ///< fp16 [batch][d_model], row stride out_stride_batch
  int64_t out_stride_batch = 0;
};

Status value_up_projection_is_supported(const ValueUpProjectionParams& params);
/// Device workspace for the batched GEMM's pointer arrays.
int64_t value_up_projection_workspace_bytes(const ValueUpProjectionParams& params);
Status folded_output_is_supported(const FoldedOutputParams& params);

#if defined(LATENTKV_WITH_CUDA)
/// One small kernel fills the pointer arrays in `workspace`, then one cublasGemmBatchedEx; with
/// heads_in_order, one cublasGemmStridedBatchedEx (the workspace is still required, not read).
Status value_up_projection_run(const ValueUpProjectionParams& params, cublasContext* cublas,
                               void* workspace, int64_t workspace_bytes, GpuStream stream);
/// One cublasGemmEx.
Status folded_output_run(const FoldedOutputParams& params, cublasContext* cublas, GpuStream stream);
#endif

}  // namespace latentkv
