// Latent gather kernel: one sequence's cached latents (pages + fp16 residual ring) read back as
// dense fp16 rows; host side in src/cuda/latent_gather.cu, specification in
// include/latentkv/attention/latent_gather.h.
//
// One thread per 8-channel chunk of a (token, group) row. The 8 codes of a chunk start on a byte
// boundary and take exactly `bits` bytes (LSB-first packing, latent_quant.h). Dequantization is
// fmaf(code, scale, zero) in fp32 then __float2half_rn, the same operations as
// dequantize_latent() + float_to_half_bits(), so the result is bit-exact with the reference.
// Inputs are read byte-wise: the cache strides need no alignment.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace latentkv::kernels {

struct LatentGatherKernelParams {
  int num_groups, rank, bits, quant_group;  // quant_group resolved (> 0)
  const uint8_t* codes;
  int64_t ps, gs, ts;  // bytes
  const uint8_t* sz;
  int64_t szps, szgs, szts;
  const uint8_t* ring;  // already offset to the sequence's ring slots
  int64_t rgs, rts;
  const int32_t* pages;
  int page_size, ring_cap;
  int64_t qlen, num_chunks;  // tokens in pages; T · num_groups · rank / 8
  uint16_t* out;
  int64_t out_stride;
  bool vec_out;  // 16-byte output stores
};

constexpr int kGatherThreads = 256;

__device__ __forceinline__ uint16_t gather_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}

__global__ void __launch_bounds__(kGatherThreads)
    latent_gather_kernel(const LatentGatherKernelParams p) {
  const int chunks_per_row = p.num_groups * p.rank / 8;
  for (int64_t idx = int64_t{blockIdx.x} * kGatherThreads + threadIdx.x; idx < p.num_chunks;
       idx += int64_t{gridDim.x} * kGatherThreads) {
    const int64_t t = idx / chunks_per_row;
    const int rem = static_cast<int>(idx % chunks_per_row);
    const int g = rem / (p.rank / 8), c0 = 8 * (rem % (p.rank / 8));
    uint16_t h[8];
    if (t >= p.qlen) {
      const uint8_t* src = p.ring + g * p.rgs + (t % p.ring_cap) * p.rts + 2 * c0;
#pragma unroll
      for (int e = 0; e < 8; ++e) h[e] = gather_u16(src + 2 * e);
    } else {
      const int64_t page = p.pages[t / p.page_size], slot = t % p.page_size;
      const uint8_t* row = p.codes + page * p.ps + g * p.gs + slot * p.ts;
      if (p.bits == 16) {
#pragma unroll
        for (int e = 0; e < 8; ++e) h[e] = gather_u16(row + 2 * (c0 + e));
      } else {
        const uint8_t* src = row + c0 * p.bits / 8;
        uint64_t w = 0;
        for (int b = 0; b < p.bits; ++b) w |= static_cast<uint64_t>(src[b]) << (8 * b);
        const uint8_t* sz = p.sz + page * p.szps + g * p.szgs + slot * p.szts;
        const uint32_t mask = (1u << p.bits) - 1u;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const uint8_t* pair = sz + 4 * ((c0 + e) / p.quant_group);
          const float scale = __half2float(__ushort_as_half(gather_u16(pair)));
          const float zero = __half2float(__ushort_as_half(gather_u16(pair + 2)));
          const float code = static_cast<float>(static_cast<uint32_t>(w >> (e * p.bits)) & mask);
          h[e] = __half_as_ushort(__float2half_rn(fmaf(code, scale, zero)));
        }
      }
    }
    uint16_t* dst = p.out + t * p.out_stride + g * p.rank + c0;
    if (p.vec_out) {
      uint4 r;
      r.x = h[0] | static_cast<uint32_t>(h[1]) << 16;
      r.y = h[2] | static_cast<uint32_t>(h[3]) << 16;
      r.z = h[4] | static_cast<uint32_t>(h[5]) << 16;
      r.w = h[6] | static_cast<uint32_t>(h[7]) << 16;
      *reinterpret_cast<uint4*>(dst) = r;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = h[e];
    }
  }
}

}  // namespace latentkv::kernels
