#include <algorithm>
#include <cstdint>

#include "cuda/cuda_status.h"
#include "latent_gather.cuh"
#include "latentkv/attention/latent_gather.h"

namespace latentkv {

Status latent_gather_run(const LatentGatherParams& p, GpuStream stream) {
  LKV_RETURN_IF_ERROR(latent_gather_is_supported(p));
  if (p.num_tokens == 0) return Status::Ok();
  const LatentCacheView& v = p.cache;
  kernels::LatentGatherKernelParams kp{};
  kp.num_groups = p.num_groups;
  kp.rank = v.rank;
  kp.bits = v.bits;
  kp.quant_group = v.quant_group ? v.quant_group : v.rank;
  kp.codes = static_cast<const uint8_t*>(v.codes);
  kp.ps = v.page_stride;
  kp.gs = v.group_stride;
  kp.ts = v.token_stride;
  kp.sz = static_cast<const uint8_t*>(v.scale_zero);
  kp.szps = v.sz_page_stride;
  kp.szgs = v.sz_group_stride;
  kp.szts = v.sz_token_stride;
  // Offset to the sequence's ring only when it is read (the ring may be null otherwise).
  kp.qlen = p.window.quantized_len(p.num_tokens);
  kp.ring = p.num_tokens > kp.qlen
                ? static_cast<const uint8_t*>(v.ring) + p.seq_slot * v.ring_seq_stride
                : nullptr;
  kp.rgs = v.ring_group_stride;
  kp.rts = v.ring_token_stride;
  kp.pages = p.pages;
  kp.page_size = p.page_size;
  kp.ring_cap = p.window.ring_capacity();
  kp.num_chunks = int64_t{p.num_tokens} * p.num_groups * (v.rank / 8);
  kp.out = p.out;
  kp.out_stride = p.out_stride;
  kp.vec_out = reinterpret_cast<uintptr_t>(p.out) % 16 == 0 && p.out_stride % 8 == 0;
  const int64_t blocks = std::min<int64_t>(
      (kp.num_chunks + kernels::kGatherThreads - 1) / kernels::kGatherThreads, int64_t{1} << 20);
  kernels::latent_gather_kernel<<<static_cast<unsigned>(blocks), kernels::kGatherThreads, 0,
                                  reinterpret_cast<cudaStream_t>(stream)>>>(kp);
  LKV_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

}  // namespace latentkv
