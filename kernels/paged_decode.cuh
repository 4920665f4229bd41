// Uncompressed fp16 paged decode attention (the in-repo baseline); host side in
// src/cuda/paged_decode.cu.
//
// One CTA = (sequence, KV head, token split), 4 warps. K and V rows of 32-token tiles are
// streamed into shared memory by a 3-stage cp.async pipeline (4 threads per token row, the page
// of a row looked up three tiles ahead, each miss prefetching its 256-byte span into L2), so the
// bytes in flight do not depend on registers; 48 KiB per CTA lets 4 CTAs share an SM. Each
// warp reduces 8 tokens of a tile: a token's head row is read by HD/8 lanes (16 bytes each), and
// the scores of all `ratio` query heads that read the KV head come from the same row (GQA
// reuse). Every lane group keeps its own online-softmax state; groups are merged with shuffles,
// warps through shared memory; the CTA writes a normalized partial result + log2-sum-exp
// (decode_combine.cuh) or the output directly.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "mma_utils.cuh"

namespace latentkv::kernels {

struct PagedDecodeKernelParams {
  int num_qo_heads, ratio;
  const __half* q;
  int64_t q_sb, q_sh;
  float q_scale;  // sm_scale · log2(e)
  const __half *k, *v;
  int64_t page_stride, head_stride, token_stride;  // elements
  const int32_t *indptr, *indices, *seq_lens;
  int page_size;
  int tokens_per_split, num_slots;
  float* part_o;
  float* part_lse;
  __half* out;
  int64_t out_sb, out_sh;
  float* lse;
};

constexpr int kPagedWarps = 4;
constexpr int kPagedTile = 32;
constexpr int kPagedStages = 3;

/// Dynamic shared memory of paged_decode_kernel<HD, *>.
constexpr int paged_smem_bytes(int head_dim) {
  return kPagedStages * 2 * kPagedTile * head_dim * 2;
}

__device__ __forceinline__ float paged_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

template <int HD, int RMAX>
__global__ void __launch_bounds__(kPagedWarps * 32)
    paged_decode_kernel(const PagedDecodeKernelParams p) {
  constexpr int LPT = HD / 8;    // lanes per token
  constexpr int TPW = 32 / LPT;  // tokens per warp per step
  constexpr int NW = kPagedWarps, NT = NW * 32, T = kPagedTile, S = kPagedStages;
  constexpr int LTPR = NT / T;      // loader threads per token row
  constexpr int ROWB = HD * 2;      // bytes of one token's head row
  constexpr int UW = T / NW / TPW;  // steps per warp and tile
  extern __shared__ __align__(16) uint8_t smem[];

  const int b = blockIdx.z, kvh = blockIdx.y, split = blockIdx.x;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int sub = lane / LPT, dl = lane % LPT;
  const int len = p.seq_lens[b];
  const int lo = split * p.tokens_per_split;
  const int hi = min(lo + p.tokens_per_split, len);
  const bool direct = p.num_slots == 1;

  if (lo >= hi) {
    for (int i = tid; i < p.ratio * (direct ? HD + 1 : 1); i += NT) {
      const int qi = direct ? i / (HD + 1) : i, d = direct ? i % (HD + 1) : 0;
      const int64_t bh = int64_t{b} * p.num_qo_heads + kvh * p.ratio + qi;
      if (!direct) {
        p.part_lse[bh * p.num_slots + split] = -INFINITY;
      } else if (d < HD) {
        p.out[b * p.out_sb + (kvh * p.ratio + qi) * p.out_sh + d] = __float2half_rn(0.0f);
      } else if (p.lse != nullptr) {
        p.lse[bh] = -INFINITY;
      }
    }
    return;
  }

  float q[RMAX][8], o[RMAX][8], m[RMAX], l[RMAX];
#pragma unroll
  for (int i = 0; i < RMAX; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
    uint4 raw = make_uint4(0, 0, 0, 0);
    if (i < p.ratio)
      raw =
          *reinterpret_cast<const uint4*>(p.q + b * p.q_sb + (kvh * p.ratio + i) * p.q_sh + 8 * dl);
    const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = __half22float2(h2[e]);
      q[i][2 * e] = f.x * p.q_scale;
      q[i][2 * e + 1] = f.y * p.q_scale;
      o[i][2 * e] = o[i][2 * e + 1] = 0.0f;
    }
  }

  // ---- loader ---------------------------------------------------------------------------------
  const int64_t page_base = p.indptr[b];
  const int lrow = tid / LTPR, lsub = tid % LTPR;
  const int ntiles = (hi - lo + T - 1) / T;
  auto row_page = [&](int it) -> int32_t {
    const int pos = lo + it * T + lrow;
    return pos < hi ? p.indices[page_base + pos / p.page_size] : -1;
  };
  auto load_tile = [&](int it, int32_t page) {
    uint8_t* kd = smem + ((it % S) * 2) * T * ROWB + lrow * ROWB;
    uint8_t* vd = kd + T * ROWB;
    const int pos = lo + it * T + lrow;
    const __half* ks = p.k;
    const __half* vs = p.v;
    int bytes = 0;
    if (page >= 0) {
      const int64_t off = int64_t{page} * p.page_stride + int64_t{kvh} * p.head_stride +
                          (pos % p.page_size) * p.token_stride;
      ks += off;
      vs += off;
      bytes = 16;
    }
#pragma unroll
    for (int ch = lsub; ch < ROWB / 16; ch += LTPR) {
      cp_async_16_l2_256(kd + 16 * ch, bytes ? ks + 8 * ch : ks, bytes);
      cp_async_16_l2_256(vd + 16 * ch, bytes ? vs + 8 * ch : vs, bytes);
    }
  };
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < ntiles) load_tile(s, row_page(s));
    cp_async_commit();
  }
  // Page indices of the next three tiles to load, fetched three tiles ahead: a tile is consumed
  // faster than a page-table read returns from L2.
  int32_t page_q0 = row_page(S - 1), page_q1 = row_page(S), page_q2 = row_page(S + 1);

  for (int it = 0; it < ntiles; ++it) {
    cp_async_wait<S - 2>();
    __syncthreads();
    if (it + S - 1 < ntiles) load_tile(it + S - 1, page_q0);
    cp_async_commit();
    page_q0 = page_q1;
    page_q1 = page_q2;
    page_q2 = row_page(it + S + 2);

    const uint8_t* kt = smem + ((it % S) * 2) * T * ROWB;
    const uint8_t* vt = kt + T * ROWB;
    const int tbase = lo + it * T;
    uint4 kr[UW], vr[UW];
#pragma unroll
    for (int u = 0; u < UW; ++u) {
      const int row = warp * (T / NW) + u * TPW + sub;
      kr[u] = *reinterpret_cast<const uint4*>(kt + row * ROWB + 16 * dl);
      vr[u] = *reinterpret_cast<const uint4*>(vt + row * ROWB + 16 * dl);
    }
    float s[UW][RMAX];
#pragma unroll
    for (int u = 0; u < UW; ++u) {
      const bool valid = tbase + warp * (T / NW) + u * TPW + sub < hi;
      const __half2* kh = reinterpret_cast<const __half2*>(&kr[u]);
      float kf[8];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(kh[e]);
        kf[2 * e] = f.x;
        kf[2 * e + 1] = f.y;
      }
#pragma unroll
      for (int i = 0; i < RMAX; ++i) {
        float acc = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) acc = fmaf(q[i][e], kf[e], acc);
#pragma unroll
        for (int off = LPT / 2; off > 0; off /= 2) acc += __shfl_xor_sync(~0u, acc, off);
        s[u][i] = valid ? acc : -INFINITY;
      }
    }
#pragma unroll
    for (int i = 0; i < RMAX; ++i) {
      if (i >= p.ratio) continue;
      float mx = m[i];
#pragma unroll
      for (int u = 0; u < UW; ++u) mx = fmaxf(mx, s[u][i]);
      const float mu = mx == -INFINITY ? 0.0f : mx;
      const float alpha = paged_exp2(m[i] - mu);
      m[i] = mx;
      l[i] *= alpha;
#pragma unroll
      for (int e = 0; e < 8; ++e) o[i][e] *= alpha;
#pragma unroll
      for (int u = 0; u < UW; ++u) {
        const float pu = paged_exp2(s[u][i] - mu);
        l[i] += pu;
        const __half2* vh = reinterpret_cast<const __half2*>(&vr[u]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(vh[e]);
          o[i][2 * e] = fmaf(pu, f.x, o[i][2 * e]);
          o[i][2 * e + 1] = fmaf(pu, f.y, o[i][2 * e + 1]);
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the stage buffers are reused below

  // Merge the TPW token groups of the warp (lanes with the same dl), then the warps.
#pragma unroll
  for (int off = LPT; off < 32; off *= 2) {
#pragma unroll
    for (int i = 0; i < RMAX; ++i) {
      const float m2 = __shfl_xor_sync(~0u, m[i], off);
      const float l2 = __shfl_xor_sync(~0u, l[i], off);
      const float mx = fmaxf(m[i], m2);
      const float mu = mx == -INFINITY ? 0.0f : mx;
      const float a1 = paged_exp2(m[i] - mu), a2 = paged_exp2(m2 - mu);
      l[i] = l[i] * a1 + l2 * a2;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float o2 = __shfl_xor_sync(~0u, o[i][e], off);
        o[i][e] = o[i][e] * a1 + o2 * a2;
      }
      m[i] = mx;
    }
  }
  float* sm_ml = reinterpret_cast<float*>(smem);  // [NW][RMAX][2]
  float* sm_o = sm_ml + NW * RMAX * 2;            // [NW][RMAX][HD]
  if (sub == 0) {
#pragma unroll
    for (int i = 0; i < RMAX; ++i) {
      if (dl == 0) {
        sm_ml[(warp * RMAX + i) * 2] = m[i];
        sm_ml[(warp * RMAX + i) * 2 + 1] = l[i];
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) sm_o[(warp * RMAX + i) * HD + 8 * dl + e] = o[i][e];
    }
  }
  __syncthreads();
  for (int idx = tid; idx < p.ratio * HD; idx += NT) {
    const int i = idx / HD, d = idx % HD;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; ++w) mx = fmaxf(mx, sm_ml[(w * RMAX + i) * 2]);
    float lsum = 0.0f, acc = 0.0f;
#pragma unroll
    for (int w = 0; w < NW; ++w) {
      const float mw = sm_ml[(w * RMAX + i) * 2];
      const float a = mw == -INFINITY ? 0.0f : paged_exp2(mw - mx);
      lsum += sm_ml[(w * RMAX + i) * 2 + 1] * a;
      acc += sm_o[(w * RMAX + i) * HD + d] * a;
    }
    const float v = acc / lsum;
    const int h = kvh * p.ratio + i;
    const int64_t bh = int64_t{b} * p.num_qo_heads + h;
    if (direct) {
      p.out[b * p.out_sb + h * p.out_sh + d] = __float2half_rn(v);
      if (d == 0 && p.lse != nullptr) p.lse[bh] = (mx + log2f(lsum)) * 0.69314718055994531f;
    } else {
      p.part_o[(bh * p.num_slots + split) * HD + d] = v;
      if (d == 0) p.part_lse[bh * p.num_slots + split] = mx + log2f(lsum);
    }
  }
}

}  // namespace latentkv::kernels
