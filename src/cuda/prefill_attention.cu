#include <cstdint>

#include "cuda/cuda_status.h"
#include "latentkv/attention/prefill_attention.h"
#include "prefill_attention.cuh"

namespace latentkv {
namespace {

template <int HD>
cudaError_t launch(const kernels::PrefillKernelParams& kp, int num_qo_heads, cudaStream_t s) {
  if (kernels::prefill_use_row_kernel(kp.n, num_qo_heads, HD)) {
    const dim3 grid(kp.n, num_qo_heads);
    kernels::prefill_row_kernel<HD><<<grid, kernels::kPrefillThreads, 0, s>>>(kp);
  } else {
    const dim3 grid((kp.n + kernels::kPrefillTileRows - 1) / kernels::kPrefillTileRows,
                    num_qo_heads);
    kernels::prefill_tile_kernel<HD><<<grid, kernels::kPrefillThreads, 0, s>>>(kp);
  }
  return cudaGetLastError();
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

Status prefill_attention_run(const PrefillAttentionParams& p, GpuStream stream) {
  LKV_RETURN_IF_ERROR(prefill_attention_is_supported(p));
  if (p.num_qo_heads > 65535)
    return Status(StatusCode::kUnsupported,
                  str_cat("prefill_attention: num_qo_heads ", p.num_qo_heads, " > 65535"));
  kernels::PrefillKernelParams kp{};
  kp.n = p.num_queries;
  kp.T = p.num_keys;
  kp.ratio = p.num_qo_heads / p.num_kv_heads;
  kp.q = static_cast<const __half*>(p.q);
  kp.q_st = p.q_stride_token;
  kp.q_sh = p.q_stride_head;
  kp.q_scale = p.sm_scale * 1.4426950408889634f;
  kp.k = static_cast<const __half*>(p.k_cache);
  kp.v = static_cast<const __half*>(p.v_cache);
  kp.page_stride = p.page_stride;
  kp.head_stride = p.head_stride;
  kp.token_stride = p.token_stride;
  kp.pages = p.pages;
  kp.page_size = p.page_size;
  kp.kv_head_index = p.kv_head_index;
  // 16-byte K/V loads when every row chunk (8 elements) is 16-byte aligned.
  kp.vec = aligned16(p.k_cache) && aligned16(p.v_cache) && p.page_stride % 8 == 0 &&
           p.head_stride % 8 == 0 && p.token_stride % 8 == 0;
  kp.out = static_cast<__half*>(p.out);
  kp.out_st = p.out_stride_token;
  kp.out_sh = p.out_stride_head;
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  LKV_CUDA_RETURN(p.head_dim == 128 ? launch<128>(kp, p.num_qo_heads, s)
                                    : launch<64>(kp, p.num_qo_heads, s));
  return Status::Ok();
}

}  // namespace latentkv
