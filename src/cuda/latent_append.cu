#include "cuda/cublas_stream.h"
#include "cuda/cuda_status.h"
#include "cuda/decode_gemv.h"
#include "cuda/launch_dependent.h"
#include "latent_append.cuh"
#include "latentkv/attention/latent_append.h"

namespace latentkv {
namespace {

kernels::LatentAppendView to_view(const LatentCacheView& v) {
  kernels::LatentAppendView k{};
  k.rank = v.rank;
  k.bits = v.bits;
  k.quant_group = v.quant_group ? v.quant_group : v.rank;
  k.codes = static_cast<uint8_t*>(v.codes);
  k.ps = v.page_stride;
  k.gs = v.group_stride;
  k.ts = v.token_stride;
  k.sz = static_cast<uint8_t*>(v.scale_zero);
  k.szps = v.sz_page_stride;
  k.szgs = v.sz_group_stride;
  k.szts = v.sz_token_stride;
  k.ring = static_cast<uint8_t*>(v.ring);
  k.rs = v.ring_seq_stride;
  k.rgs = v.ring_group_stride;
  k.rts = v.ring_token_stride;
  return k;
}

}  // namespace

Status latent_append_store_run(const LatentAppendParams& p, const float* latents,
                               int64_t latents_stride, GpuStream stream) {
  LKV_RETURN_IF_ERROR(latent_append_is_supported(p));
  if (p.num_tokens > 0 &&
      (latents == nullptr || latents_stride < int64_t{p.num_groups} * (p.k.rank + p.v.rank)))
    return Status(StatusCode::kInvalidArgument, "latent_append: latents null or stride too small");
  kernels::LatentAppendKernelParams kp{};
  kp.num_groups = p.num_groups;
  kp.append_indptr = p.append_indptr;
  kp.latents = latents;
  kp.stride = latents_stride;
  kp.k = to_view(p.k);
  kp.v = to_view(p.v);
  kp.residual = p.window.residual;
  kp.chunk = p.window.chunk;
  kp.ring_cap = p.window.ring_capacity() > 0 ? p.window.ring_capacity() : 1;
  kp.indptr = p.pages.indptr;
  kp.indices = p.pages.indices;
  kp.seq_lens = p.pages.seq_lens;
  kp.page_size = p.pages.page_size;
  kp.seq_lens_out = p.seq_lens_out;
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  const dim3 grid(p.batch_size, 2 * p.num_groups);
  // One launch for flush, ring and lengths (a decode step appends per layer, so launches count);
  // lengths written in place need a launch of their own after every CTA has read them.
  const bool in_place = p.seq_lens_out == p.pages.seq_lens;
  LKV_CUDA_RETURN(detail::launch_dependent(kernels::latent_store_kernel, grid,
                                           dim3(kernels::kAppendWarps * 32), 0, s, kp,
                                           p.window.ring_capacity() > 0, !in_place));
  if (in_place) {
    kernels::latent_lengths_kernel<<<(p.batch_size + 127) / 128, 128, 0, s>>>(kp, p.batch_size);
    LKV_CUDA_RETURN(cudaGetLastError());
  }
  return Status::Ok();
}

Status latent_append_run(const LatentAppendParams& p, cublasContext* cublas, void* workspace,
                         int64_t workspace_bytes, GpuStream stream) {
  LKV_RETURN_IF_ERROR(latent_append_gemm_is_supported(p));
  if (cublas == nullptr)
    return Status(StatusCode::kInvalidArgument, "latent_append: cublas handle is null");
  const int total = p.num_groups * (p.k.rank + p.v.rank);
  if (workspace_bytes < latent_append_workspace_bytes(p, p.num_tokens) ||
      (p.num_tokens > 0 && !workspace))
    return Status(StatusCode::kOutOfMemory,
                  str_cat("latent_append: workspace of ", workspace_bytes, " bytes, need ",
                          latent_append_workspace_bytes(p, p.num_tokens)));
  float* latents = static_cast<float*>(workspace);
  // Decode steps: the tensor-core matrix-vector kernel, as for the engine's projections
  // (up to 8 tokens; decode_gemv_fits says which products it takes).
  if (detail::decode_gemv_fits(p.x, p.x_stride, p.a_cat, p.d_model, p.num_tokens, p.d_model)) {
    LKV_CUDA_RETURN(detail::launch_decode_gemv(p.x, p.x_stride, p.a_cat, p.d_model, latents, total,
                                               true, p.num_tokens, total, p.d_model, 0.0f,
                                               reinterpret_cast<cudaStream_t>(stream)));
  } else if (p.num_tokens > 0) {
    const CublasStreamScope on_stream(cublas, reinterpret_cast<cudaStream_t>(stream));
    LKV_CUBLAS_RETURN(on_stream.status());
    const float alpha = 1.0f, beta = 0.0f;
    // Column-major view: latentsᵀ [total, n] = a_cat [total, d_model] · xᵀ [d_model, n].
    const cublasStatus_t st =
        cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, total, p.num_tokens, p.d_model, &alpha,
                     p.a_cat, CUDA_R_16F, p.d_model, p.x, CUDA_R_16F, static_cast<int>(p.x_stride),
                     &beta, latents, CUDA_R_32F, total, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    LKV_CUBLAS_RETURN(st);
  }
  return latent_append_store_run(p, latents, total, stream);
}

}  // namespace latentkv
