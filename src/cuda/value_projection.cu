#include "cuda/cublas_stream.h"
#include "cuda/cuda_status.h"
#include "latentkv/attention/value_projection.h"

namespace latentkv {
namespace {

// Fills the pointer arrays of the batched GEMM: per query head h, its KV head's slice of B_v,
// its z columns and its output columns. Done on the device so that run() stays capturable.
__global__ void value_pointer_kernel(ValueUpProjectionParams p, const void** a, const void** bz,
                                     void** c) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= p.num_qo_heads) return;
  const int kv = h / (p.num_qo_heads / p.num_kv_heads);
  int pos = 0;
  for (int i = 0; i < p.num_kv_heads; ++i)
    if (p.group_heads[i] == kv) pos = i;
  const int g = pos / p.group_size, slot = pos % p.group_size;
  a[h] = p.b_v + (int64_t{g} * p.group_size + slot) * p.head_dim * p.rank_v;
  bz[h] = p.z + int64_t{h} * p.rank_v;
  c[h] = p.o + int64_t{h} * p.head_dim;
}

}  // namespace

Status value_up_projection_run(const ValueUpProjectionParams& p, cublasContext* cublas,
                               void* workspace, int64_t workspace_bytes, GpuStream stream) {
  LKV_RETURN_IF_ERROR(value_up_projection_is_supported(p));
  if (!cublas)
    return Status(StatusCode::kInvalidArgument, "value_up_projection: cublas handle is null");
  if (!workspace || workspace_bytes < value_up_projection_workspace_bytes(p))
    return Status(StatusCode::kOutOfMemory, "value_up_projection: workspace too small");
  auto** ptrs = static_cast<void**>(workspace);
  const void** a = const_cast<const void**>(ptrs);
  const void** bz = const_cast<const void**>(ptrs + p.num_qo_heads);
  void** c = ptrs + 2 * p.num_qo_heads;
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  const CublasStreamScope on_stream(cublas, s);
  LKV_CUBLAS_RETURN(on_stream.status());
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major per head: o_h [head_dim, batch] = B_v slice [head_dim, rank_v] · z_h [rank_v,
  // batch].
  if (p.heads_in_order) {  // slice h at h·head_dim·rank_v, z_h and o_h at fixed head strides
    LKV_CUBLAS_RETURN(cublasGemmStridedBatchedEx(
        cublas, CUBLAS_OP_T, CUBLAS_OP_N, p.head_dim, p.batch_size, p.rank_v, &alpha, p.b_v,
        CUDA_R_16F, p.rank_v, int64_t{p.head_dim} * p.rank_v, p.z, CUDA_R_16F,
        static_cast<int>(p.z_stride_batch), p.rank_v, &beta, p.o, CUDA_R_16F,
        static_cast<int>(p.o_stride_batch), p.head_dim, p.num_qo_heads, CUBLAS_COMPUTE_32F,
        CUBLAS_GEMM_DEFAULT));
    return Status::Ok();
  }
  value_pointer_kernel<<<(p.num_qo_heads + 127) / 128, 128, 0, s>>>(p, a, bz, c);
  LKV_CUDA_RETURN(cudaGetLastError());
  const cublasStatus_t st = cublasGemmBatchedEx(
      cublas, CUBLAS_OP_T, CUBLAS_OP_N, p.head_dim, p.batch_size, p.rank_v, &alpha, a, CUDA_R_16F,
      p.rank_v, bz, CUDA_R_16F, static_cast<int>(p.z_stride_batch), &beta, c, CUDA_R_16F,
      static_cast<int>(p.o_stride_batch), p.num_qo_heads, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  LKV_CUBLAS_RETURN(st);
  return Status::Ok();
}

Status folded_output_run(const FoldedOutputParams& p, cublasContext* cublas, GpuStream stream) {
  LKV_RETURN_IF_ERROR(folded_output_is_supported(p));
  if (!cublas) return Status(StatusCode::kInvalidArgument, "folded_output: cublas handle is null");
  const CublasStreamScope on_stream(cublas, reinterpret_cast<cudaStream_t>(stream));
  LKV_CUBLAS_RETURN(on_stream.status());
  const float alpha = 1.0f, beta = 0.0f;
  const int k = p.num_qo_heads * p.rank_v;
  // Column-major: outᵀ [d_model, batch] = W'_o [d_model, k] · zᵀ [k, batch].
  const cublasStatus_t st = cublasGemmEx(
      cublas, CUBLAS_OP_T, CUBLAS_OP_N, p.d_model, p.batch_size, k, &alpha, p.w_o_folded,
      CUDA_R_16F, k, p.z, CUDA_R_16F, static_cast<int>(p.z_stride_batch), &beta, p.out, CUDA_R_16F,
      static_cast<int>(p.out_stride_batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  LKV_CUBLAS_RETURN(st);
  return Status::Ok();
}

}  // namespace latentkv
