// Latent append kernels (design §4); host side in src/cuda/latent_append.cu.
//
// After the projection GEMM, for every (sequence, K/V group):
//   latent_store_kernel: positions [quantized_len(T), quantized_len(T + n)) are rounded to fp16
//     (read from the ring when already cached, else from the new fp32 latents) and quantized into
//     their page exactly as quantize_latent() does (fp16 RNE zero = min and scale =
//     (max - min) / (2^bits - 1) with IEEE division, code = clamp(rint((x - zero) / scale)),
//     LSB-first packing); bits = 16 stores the fp16 latent;
//   then, in the same CTA, new positions that stay in the window go to
//     ring slot pos % capacity (after the flush: a flushed position may share its ring slot with
//     a new one), and CTA (b, 0) sets seq_lens_out[b] = T + n unless seq_lens_out is seq_lens
//     (then latent_lengths_kernel does it after every CTA has read the old lengths).
// One warp per token row; lane l owns the 8-channel chunks l, l+32, ... of the latent, and every
// 8-channel chunk packs to exactly `bits` bytes, so lanes write their bytes independently.
// This file must be compiled without fast-math (IEEE division and rint are part of the spec).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "mma_utils.cuh"

namespace latentkv::kernels {

struct LatentAppendView {
  int rank, bits, quant_group;  // quant_group resolved (> 0)
  uint8_t* codes;
  int64_t ps, gs, ts;
  uint8_t* sz;
  int64_t szps, szgs, szts;
  uint8_t* ring;
  int64_t rs, rgs, rts;
};

struct LatentAppendKernelParams {
  int num_groups;
  const int32_t* append_indptr;
  const float* latents;  // [rows][stride]
  int64_t stride;
  LatentAppendView k, v;
  int residual, chunk, ring_cap;
  const int32_t *indptr, *indices, *seq_lens;
  int page_size;
  int32_t* seq_lens_out;
};

constexpr int kAppendWarps = 4;
constexpr int kAppendMaxRank = 1024;

__device__ __forceinline__ int64_t append_qlen(int64_t t, int residual, int chunk) {
  return t < residual ? 0 : int64_t{chunk} * ((t - residual) / chunk);
}

/// Flush of one CTA of latent_store_kernel.
__device__ __forceinline__ void latent_flush_rows(const LatentAppendKernelParams& p) {
  __shared__ float row_buf[kAppendWarps][kAppendMaxRank];
  __shared__ float qscale[kAppendWarps][kAppendMaxRank / 8],
      qzero[kAppendWarps][kAppendMaxRank / 8];
  const int b = blockIdx.x;
  const bool is_v = blockIdx.y >= p.num_groups;
  const int g = is_v ? blockIdx.y - p.num_groups : blockIdx.y;
  const LatentAppendView& v = is_v ? p.v : p.k;
  const int col0 = is_v ? p.num_groups * p.k.rank + g * v.rank : g * v.rank;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t t_old = p.seq_lens[b];
  const int64_t n = p.append_indptr[b + 1] - p.append_indptr[b];
  const int64_t q_old = append_qlen(t_old, p.residual, p.chunk);
  const int64_t q_new = append_qlen(t_old + n, p.residual, p.chunk);
  const int chunks = v.rank / 8;
  const int nqg = v.bits == 16 ? 0 : v.rank / v.quant_group;
  const int max_code = (1 << v.bits) - 1;
  float* buf = row_buf[warp];

  for (int64_t pos = q_old + warp; pos < q_new; pos += kAppendWarps) {
    // fp16-rounded latent of this position into the warp's row buffer.
    if (pos < t_old) {
      const __half* src = reinterpret_cast<const __half*>(v.ring + b * v.rs + g * v.rgs +
                                                          (pos % p.ring_cap) * v.rts);
      for (int c = lane; c < v.rank; c += 32) buf[c] = __half2float(src[c]);
    } else {
      const float* src = p.latents + (p.append_indptr[b] + (pos - t_old)) * p.stride + col0;
      for (int c = lane; c < v.rank; c += 32) buf[c] = __half2float(__float2half_rn(src[c]));
    }
    __syncwarp();
    const int64_t page = p.indices[p.indptr[b] + pos / p.page_size];
    const int64_t slot = pos % p.page_size;
    uint8_t* dst = v.codes + page * v.ps + g * v.gs + slot * v.ts;
    if (v.bits == 16) {
      for (int ch = lane; ch < chunks; ch += 32) {
        uint4 w;
        __half2* h = reinterpret_cast<__half2*>(&w);
        for (int i = 0; i < 4; ++i)
          h[i] = __floats2half2_rn(buf[8 * ch + 2 * i], buf[8 * ch + 2 * i + 1]);
        *reinterpret_cast<uint4*>(dst + 16 * ch) = w;
      }
      __syncwarp();
      continue;
    }
    __half2* sz = reinterpret_cast<__half2*>(v.sz + page * v.szps + g * v.szgs + slot * v.szts);
    for (int qg = lane; qg < nqg; qg += 32) {
      float lo = buf[qg * v.quant_group], hi = lo;
      for (int i = 1; i < v.quant_group; ++i) {
        lo = fminf(lo, buf[qg * v.quant_group + i]);
        hi = fmaxf(hi, buf[qg * v.quant_group + i]);
      }
      const __half zero = __float2half_rn(lo);
      const __half scale =
          __float2half_rn(__fdiv_rn(__fsub_rn(hi, lo), static_cast<float>(max_code)));
      sz[qg] = __halves2half2(scale, zero);
      qscale[warp][qg] = __half2float(scale);
      qzero[warp][qg] = __half2float(zero);
    }
    __syncwarp();
    for (int ch = lane; ch < chunks; ch += 32) {
      const int qg = 8 * ch / v.quant_group;
      const float s = qscale[warp][qg], z = qzero[warp][qg];
      uint64_t packed = 0;  // 8 codes of up to 8 bits
      for (int i = 0; i < 8; ++i) {
        uint32_t code = 0;
        if (s != 0.0f) {
          const float r = rintf(__fdiv_rn(__fsub_rn(buf[8 * ch + i], z), s));
          code = static_cast<uint32_t>(fminf(fmaxf(r, 0.0f), static_cast<float>(max_code)));
        }
        packed |= uint64_t{code} << (v.bits * i);
      }
      for (int i = 0; i < v.bits; ++i)
        dst[ch * v.bits + i] = static_cast<uint8_t>(packed >> (8 * i));
    }
    __syncwarp();
  }
}

/// Ring writes of one CTA of latent_store_kernel: new positions that stay in the fp16 window.
__device__ __forceinline__ void latent_ring_rows(const LatentAppendKernelParams& p) {
  const int b = blockIdx.x;
  const bool is_v = blockIdx.y >= p.num_groups;
  const int g = is_v ? blockIdx.y - p.num_groups : blockIdx.y;
  const LatentAppendView& v = is_v ? p.v : p.k;
  const int col0 = is_v ? p.num_groups * p.k.rank + g * v.rank : g * v.rank;
  const int64_t t_old = p.seq_lens[b];
  const int64_t n = p.append_indptr[b + 1] - p.append_indptr[b];
  const int64_t q_new = append_qlen(t_old + n, p.residual, p.chunk);
  const int64_t first = q_new > t_old ? q_new : t_old;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t pos = first + warp; pos < t_old + n; pos += kAppendWarps) {
    const float* src = p.latents + (p.append_indptr[b] + (pos - t_old)) * p.stride + col0;
    __half* dst =
        reinterpret_cast<__half*>(v.ring + b * v.rs + g * v.rgs + (pos % p.ring_cap) * v.rts);
    // Every load before the first store: interleaved, each load would wait for the store before
    // it (the compiler cannot rule out that dst aliases src), one memory round trip per value.
    constexpr int kPerLane = kAppendMaxRank / 32;
    float x[kPerLane];
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int c = lane + 32 * k;
      x[k] = c < v.rank ? src[c] : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const int c = lane + 32 * k;
      if (c < v.rank) dst[c] = __float2half_rn(x[k]);
    }
  }
}

/// Length of sequence b after the append: T + n.
__device__ __forceinline__ int32_t appended_length(const LatentAppendKernelParams& p, int b) {
  return p.seq_lens[b] + p.append_indptr[b + 1] - p.append_indptr[b];
}

/// grid (batch, 2*num_groups): y < num_groups is key group y, else value group y - num_groups.
/// `ring`: the window has slots; `lengths`: seq_lens_out is not seq_lens.
__global__ void __launch_bounds__(kAppendWarps * 32)
    latent_store_kernel(const LatentAppendKernelParams p, bool ring, bool lengths) {
  grid_dependency_wait();  // launched as a programmatic dependent (launch_dependent)
  grid_dependents_launch();
  latent_flush_rows(p);
  if (ring) {
    __syncthreads();
    latent_ring_rows(p);
  }
  if (lengths && blockIdx.y == 0 && threadIdx.x == 0)
    p.seq_lens_out[blockIdx.x] = appended_length(p, blockIdx.x);
}

__global__ void latent_lengths_kernel(const LatentAppendKernelParams p, int batch) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b < batch) p.seq_lens_out[b] = appended_length(p, b);
}

}  // namespace latentkv::kernels
