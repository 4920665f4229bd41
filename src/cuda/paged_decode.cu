#include <cmath>
#include <mutex>

#include "cuda/cuda_status.h"
#include "cuda/decode_combine.h"
#include "latentkv/attention/paged_decode.h"
#include "paged_decode.cuh"

namespace latentkv {
namespace {

template <int HD, int RMAX>
cudaError_t launch(const kernels::PagedDecodeKernelParams& kp, dim3 grid, cudaStream_t s) {
  constexpr int smem = kernels::paged_smem_bytes(HD);
  static std::once_flag once;
  static cudaError_t attr = cudaSuccess;
  // Raise the dynamic shared-memory limit once (not a stream operation).
  std::call_once(once, [] {
    attr = cudaFuncSetAttribute(kernels::paged_decode_kernel<HD, RMAX>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  });
  if (attr != cudaSuccess) return attr;
  kernels::paged_decode_kernel<HD, RMAX><<<grid, kernels::kPagedWarps * 32, smem, s>>>(kp);
  return cudaGetLastError();
}

template <int HD>
cudaError_t dispatch_ratio(const kernels::PagedDecodeKernelParams& kp, dim3 grid, cudaStream_t s) {
  if (kp.ratio == 1) return launch<HD, 1>(kp, grid, s);
  if (kp.ratio == 2) return launch<HD, 2>(kp, grid, s);
  if (kp.ratio <= 4) return launch<HD, 4>(kp, grid, s);
  return launch<HD, 8>(kp, grid, s);
}

}  // namespace

Status paged_decode_run(const PagedDecodeParams& p, const DecodePlan& plan, void* workspace,
                        int64_t workspace_bytes, GpuStream stream) {
  LKV_RETURN_IF_ERROR(paged_decode_is_supported(p));
  if (plan.num_splits < 1 || plan.tokens_per_split < 1)
    return Status(StatusCode::kInvalidArgument, "paged_decode: plan is not initialized");
  if (workspace_bytes < plan.workspace_bytes || (plan.workspace_bytes > 0 && workspace == nullptr))
    return Status(StatusCode::kOutOfMemory, str_cat("paged_decode: workspace of ", workspace_bytes,
                                                    " bytes, plan needs ", plan.workspace_bytes));
  kernels::PagedDecodeKernelParams kp{};
  kp.num_qo_heads = p.num_qo_heads;
  kp.ratio = p.num_qo_heads / p.num_kv_heads;
  kp.q = static_cast<const __half*>(p.q);
  kp.q_sb = p.q_stride_batch;
  kp.q_sh = p.q_stride_head;
  kp.q_scale = p.sm_scale * 1.4426950408889634f;
  kp.k = static_cast<const __half*>(p.k_cache);
  kp.v = static_cast<const __half*>(p.v_cache);
  kp.page_stride = p.page_stride;
  kp.head_stride = p.head_stride;
  kp.token_stride = p.token_stride;
  kp.indptr = p.pages.indptr;
  kp.indices = p.pages.indices;
  kp.seq_lens = p.pages.seq_lens;
  kp.page_size = p.pages.page_size;
  kp.tokens_per_split = plan.tokens_per_split;
  kp.num_slots = plan.num_splits;
  const int64_t rows = int64_t{p.batch_size} * p.num_qo_heads;
  if (plan.num_splits > 1) {
    kp.part_o = static_cast<float*>(workspace);
    kp.part_lse =
        reinterpret_cast<float*>(static_cast<char*>(workspace) +
                                 ((rows * plan.num_splits * p.head_dim * 4 + 255) / 256 * 256));
  }
  kp.out = static_cast<__half*>(p.out);
  kp.out_sb = p.out_stride_batch;
  kp.out_sh = p.out_stride_head;
  kp.lse = p.lse;
  const dim3 grid(plan.num_splits, p.num_kv_heads, p.batch_size);
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  LKV_CUDA_RETURN(p.head_dim == 128 ? dispatch_ratio<128>(kp, grid, s)
                                    : dispatch_ratio<64>(kp, grid, s));
  if (plan.num_splits > 1) {
    kernels::DecodeCombineParams cp{};
    cp.part_o = kp.part_o;
    cp.part_lse = kp.part_lse;
    cp.num_slots = plan.num_splits;
    cp.dim = p.head_dim;
    cp.num_heads = p.num_qo_heads;
    cp.out = p.out;
    cp.out_dtype = static_cast<int>(DType::kF16);
    cp.out_sb = p.out_stride_batch;
    cp.out_sh = p.out_stride_head;
    cp.lse = p.lse;
    LKV_CUDA_RETURN(detail::launch_decode_combine(cp, rows, s));
  }
  return Status::Ok();
}

}  // namespace latentkv
