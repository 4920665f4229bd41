// Causal fp16 prefill attention of one sequence (CUDA cores, fp32 math); host side in
// src/cuda/prefill_attention.cu, specification in include/latentkv/attention/prefill_attention.h.
//
// Both kernels use 256 threads in groups of 4 lanes; the 4 lanes of a group share one query row
// and lane j owns the 8-dim chunks j, j+4, ... of the head (so the 4 lanes read 4 adjacent chunks
// of a key row: no shared-memory bank conflicts, coalesced global reads). Scores are reduced over
// the group with two shuffles and kept in log2 units (q is pre-scaled by sm_scale·log2 e); every
// group runs an online softmax, and groups that split the keys of one row merge their
// (max, sum, output) states in shared memory at the end.
//   * prefill_tile_kernel: one CTA per (16 query rows, query head); 4 groups per row split each
//     32-key tile (8 keys each, one rescale per 8 keys). Tiles are converted to fp32 in shared
//     memory, the next one fetched into registers while the current one is consumed. Tiles past
//     the CTA's last visible key are never loaded; a warp skips keys none of its rows sees.
//   * prefill_row_kernel: one CTA per (query row, query head) for chunks too small to fill the
//     GPU with tiles (decode fallbacks): the 64 groups take keys t ≡ group (mod 64) straight from
//     global memory, a few keys in flight per group.
// Measured on an H100 (SmolLM2 shape, 9 query heads, head_dim 64): n = T = 512 in 47 µs, n = 1
// over T = 4096 in 37 µs.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace latentkv::kernels {

struct PrefillKernelParams {
  int n, T, ratio;  // queries, keys, GQA ratio
  const __half* q;
  int64_t q_st, q_sh;
  float q_scale;  // sm_scale · log2(e)
  const __half *k, *v;
  int64_t page_stride, head_stride, token_stride;  // elements
  const int32_t* pages;
  int page_size;
  const int32_t* kv_head_index;  // nullptr = identity
  bool vec;                      // every K/V row chunk is 16-byte aligned
  __half* out;
  int64_t out_st, out_sh;
};

constexpr int kPrefillThreads = 256;
constexpr int kPrefillTileRows = 16;  // tile kernel: query rows per CTA
constexpr int kPrefillTileKeys = 32;  // tile kernel: keys per shared-memory tile
constexpr int kPrefillChunk = 8;      // tile kernel: keys per online-softmax rescale
constexpr int kPrefillSplits = 64;    // row kernel: key splits per CTA (one per lane group)

/// The row kernel while n · H_qo · head_dim <= 2^16, i.e. until the tile kernel has a few CTAs
/// per multiprocessor (its per-CTA key loop is long, the row kernel's re-reads of K/V hit L2).
inline bool prefill_use_row_kernel(int n, int num_qo_heads, int head_dim) {
  return int64_t{n} * num_qo_heads * head_dim <= (int64_t{1} << 16);
}

/// 8 fp16 values at `src` (16-byte load when `vec`, else 2-byte loads: any alignment).
__device__ __forceinline__ uint4 prefill_load8(const __half* src, bool vec) {
  if (vec) return __ldg(reinterpret_cast<const uint4*>(src));
  const auto* s = reinterpret_cast<const unsigned short*>(src);
  uint4 r;
  r.x = __ldg(s) | static_cast<uint32_t>(__ldg(s + 1)) << 16;
  r.y = __ldg(s + 2) | static_cast<uint32_t>(__ldg(s + 3)) << 16;
  r.z = __ldg(s + 4) | static_cast<uint32_t>(__ldg(s + 5)) << 16;
  r.w = __ldg(s + 6) | static_cast<uint32_t>(__ldg(s + 7)) << 16;
  return r;
}

__device__ __forceinline__ void prefill_unpack8(const uint4& raw, float* f) {
  const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float2 x = __half22float2(h2[e]);
    f[2 * e] = x.x;
    f[2 * e + 1] = x.y;
  }
}

/// Element offset of key t's row (head offset included).
__device__ __forceinline__ int64_t prefill_row_offset(const PrefillKernelParams& p,
                                                      int64_t head_off, int t) {
  return int64_t{p.pages[t / p.page_size]} * p.page_stride + head_off +
         int64_t{t % p.page_size} * p.token_stride;
}

/// Loads the lane's chunks of query row i, head h, scaled by sm_scale·log2(e).
template <int NC>
__device__ __forceinline__ void prefill_load_q(const PrefillKernelParams& p, int i, int h, int j,
                                               float (&q)[NC * 8]) {
  const __half* row = p.q + i * p.q_st + h * p.q_sh;
#pragma unroll
  for (int u = 0; u < NC; ++u)
#pragma unroll
    for (int e = 0; e < 8; ++e) q[8 * u + e] = __half2float(row[8 * (j + 4 * u) + e]) * p.q_scale;
}

template <int HD>
__global__ void __launch_bounds__(kPrefillThreads)
    prefill_tile_kernel(const PrefillKernelParams p) {
  constexpr int NT = kPrefillThreads, QR = kPrefillTileRows, BK = kPrefillTileKeys;
  constexpr int CH = kPrefillChunk;
  constexpr int KS = NT / 4 / QR;    // key splits: split s takes keys [s, s+1)·BK/KS of a tile
  constexpr int KPS = BK / KS;       // keys per split and tile
  constexpr int NC = HD / 32;        // 8-dim chunks per lane
  constexpr int CPR = HD / 8;        // 8-dim chunks per key row
  constexpr int LD = BK * CPR / NT;  // chunks per thread and tile, for K and for V
  static_assert(LD * NT == BK * CPR, "tile must split evenly over the threads");
  static_assert(QR % 8 == 0 && KPS % CH == 0, "a warp holds 8 rows of one split");
  // K and V tiles; after the key loop the same memory holds the splits' partial outputs.
  __shared__ __align__(16) float kvs[2][BK][HD];
  __shared__ float part_m[KS][QR], part_l[KS][QR];

  const int tid = threadIdx.x, j = tid % 4, warp = tid / 32;
  const int r = (tid / 4) % QR, s = tid / 4 / QR;
  // Heavier (later) query tiles first: causal work grows with the tile index.
  const int q0 = (gridDim.x - 1 - blockIdx.x) * QR;
  const int h = blockIdx.y;
  const int i = q0 + r;
  const bool valid = i < p.n;
  const int shift = p.T - p.n;              // query i sits at position shift + i
  const int last = valid ? shift + i : -1;  // last key this row sees
  const int wrow = q0 + (warp * 8) % QR;    // first row of this warp
  const int warp_last = wrow < p.n ? shift + min(wrow + 7, p.n - 1) : -1;
  const int kend = shift + min(q0 + QR, p.n);  // keys read by the CTA
  const int kv = h / p.ratio;
  const int64_t head_off = int64_t{p.kv_head_index ? p.kv_head_index[kv] : kv} * p.head_stride;

  float q[NC * 8], o[NC * 8];
#pragma unroll
  for (int e = 0; e < NC * 8; ++e) q[e] = o[e] = 0.0f;
  if (valid) prefill_load_q<NC>(p, i, h, j, q);
  float m = -INFINITY, l = 0.0f;

  uint4 kr[LD], vr[LD];
  const auto fetch = [&](int kt) {
#pragma unroll
    for (int x = 0; x < LD; ++x) {
      const int ci = tid + x * NT, key = kt + ci / CPR, c8 = ci % CPR;
      if (key < kend) {
        const int64_t off = prefill_row_offset(p, head_off, key) + 8 * c8;
        kr[x] = prefill_load8(p.k + off, p.vec);
        vr[x] = prefill_load8(p.v + off, p.vec);
      } else {  // zeros past the end: masked scores, and 0 · 0 in P·V
        kr[x] = vr[x] = make_uint4(0, 0, 0, 0);
      }
    }
  };
  const int ntiles = (kend + BK - 1) / BK;
  fetch(0);
  for (int tile = 0; tile < ntiles; ++tile) {
    const int kt = tile * BK;
    __syncthreads();  // the previous tile is consumed
#pragma unroll
    for (int x = 0; x < LD; ++x) {
      const int ci = tid + x * NT, key = ci / CPR, c8 = ci % CPR;
      float f[8];
      prefill_unpack8(kr[x], f);
      float4* kd = reinterpret_cast<float4*>(&kvs[0][key][8 * c8]);
      kd[0] = make_float4(f[0], f[1], f[2], f[3]);
      kd[1] = make_float4(f[4], f[5], f[6], f[7]);
      prefill_unpack8(vr[x], f);
      float4* vd = reinterpret_cast<float4*>(&kvs[1][key][8 * c8]);
      vd[0] = make_float4(f[0], f[1], f[2], f[3]);
      vd[1] = make_float4(f[4], f[5], f[6], f[7]);
    }
    __syncthreads();
    if (tile + 1 < ntiles) fetch(kt + BK);  // in flight while this tile is consumed

#pragma unroll 1
    for (int c = 0; c < KPS / CH; ++c) {
      const int t0 = s * KPS + c * CH;  // first key of the chunk within the tile
      if (kt + t0 > warp_last) break;   // warp-uniform: no row of the warp sees these keys
      float sc[CH];
#pragma unroll
      for (int kk = 0; kk < CH; ++kk) {
        const float* krow = kvs[0][t0 + kk];
        float acc = 0.0f;
#pragma unroll
        for (int u = 0; u < NC; ++u) {
          const float4 a = reinterpret_cast<const float4*>(krow + 8 * (j + 4 * u))[0];
          const float4 b = reinterpret_cast<const float4*>(krow + 8 * (j + 4 * u))[1];
          acc = fmaf(q[8 * u], a.x, acc);
          acc = fmaf(q[8 * u + 1], a.y, acc);
          acc = fmaf(q[8 * u + 2], a.z, acc);
          acc = fmaf(q[8 * u + 3], a.w, acc);
          acc = fmaf(q[8 * u + 4], b.x, acc);
          acc = fmaf(q[8 * u + 5], b.y, acc);
          acc = fmaf(q[8 * u + 6], b.z, acc);
          acc = fmaf(q[8 * u + 7], b.w, acc);
        }
        acc += __shfl_xor_sync(~0u, acc, 1);
        acc += __shfl_xor_sync(~0u, acc, 2);
        sc[kk] = kt + t0 + kk <= last ? acc : -INFINITY;
      }
      float mx = m;
#pragma unroll
      for (int kk = 0; kk < CH; ++kk) mx = fmaxf(mx, sc[kk]);
      // A row that has seen no key yet keeps m = -inf, l = 0, o = 0 (no inf - inf).
      const float mu = mx == -INFINITY ? 0.0f : mx;
      const float alpha = exp2f(m - mu);
      l *= alpha;
#pragma unroll
      for (int e = 0; e < NC * 8; ++e) o[e] *= alpha;
#pragma unroll
      for (int kk = 0; kk < CH; ++kk) {
        const float pk = exp2f(sc[kk] - mu);
        l += pk;
        const float* vrow = kvs[1][t0 + kk];
#pragma unroll
        for (int u = 0; u < NC; ++u) {
          const float4 a = reinterpret_cast<const float4*>(vrow + 8 * (j + 4 * u))[0];
          const float4 b = reinterpret_cast<const float4*>(vrow + 8 * (j + 4 * u))[1];
          o[8 * u] = fmaf(pk, a.x, o[8 * u]);
          o[8 * u + 1] = fmaf(pk, a.y, o[8 * u + 1]);
          o[8 * u + 2] = fmaf(pk, a.z, o[8 * u + 2]);
          o[8 * u + 3] = fmaf(pk, a.w, o[8 * u + 3]);
          o[8 * u + 4] = fmaf(pk, b.x, o[8 * u + 4]);
          o[8 * u + 5] = fmaf(pk, b.y, o[8 * u + 5]);
          o[8 * u + 6] = fmaf(pk, b.z, o[8 * u + 6]);
          o[8 * u + 7] = fmaf(pk, b.w, o[8 * u + 7]);
        }
      }
      m = mx;
    }
  }

  // Merge the splits' softmax states of every row: [KS][QR][HD] partial outputs fill exactly
  // the K/V tile memory.
  static_assert(KS * QR * HD == 2 * BK * HD, "partial outputs must fit the tile memory");
  float* part_o = &kvs[0][0][0];
  __syncthreads();  // every split is done with the last tile
#pragma unroll
  for (int u = 0; u < NC; ++u) {
    float4* dst = reinterpret_cast<float4*>(part_o + (s * QR + r) * HD + 8 * (j + 4 * u));
    dst[0] = make_float4(o[8 * u], o[8 * u + 1], o[8 * u + 2], o[8 * u + 3]);
    dst[1] = make_float4(o[8 * u + 4], o[8 * u + 5], o[8 * u + 6], o[8 * u + 7]);
  }
  if (j == 0) {
    part_m[s][r] = m;
    part_l[s][r] = l;
  }
  __syncthreads();
  for (int idx = tid; idx < QR * HD; idx += NT) {
    const int rr = idx / HD, d = idx % HD;
    if (q0 + rr >= p.n) break;  // rows are in order: the rest are past the chunk too
    float mx = -INFINITY;
#pragma unroll
    for (int x = 0; x < KS; ++x) mx = fmaxf(mx, part_m[x][rr]);
    float lsum = 0.0f, acc = 0.0f;
#pragma unroll
    for (int x = 0; x < KS; ++x) {
      const float w = exp2f(part_m[x][rr] - mx);  // 0 for a split that saw no key of the row
      lsum = fmaf(part_l[x][rr], w, lsum);
      acc = fmaf(part_o[(x * QR + rr) * HD + d], w, acc);
    }
    p.out[(q0 + rr) * p.out_st + h * p.out_sh + d] = __float2half_rn(acc / lsum);
  }
}

template <int HD>
__global__ void __launch_bounds__(kPrefillThreads) prefill_row_kernel(const PrefillKernelParams p) {
  constexpr int NC = HD / 32, KS = kPrefillSplits;
  constexpr int U = HD == 64 ? 4 : 2;  // keys in flight per lane group (register budget)
  __shared__ __align__(16) float so[KS][HD];
  __shared__ float sm[KS], sl[KS];

  const int tid = threadIdx.x, s = tid / 4, j = tid % 4;
  const int i = blockIdx.x, h = blockIdx.y;
  const int len = p.T - p.n + i + 1;  // keys [0, len) are visible
  const int kv = h / p.ratio;
  const int64_t head_off = int64_t{p.kv_head_index ? p.kv_head_index[kv] : kv} * p.head_stride;

  float q[NC * 8], o[NC * 8];
  prefill_load_q<NC>(p, i, h, j, q);
#pragma unroll
  for (int e = 0; e < NC * 8; ++e) o[e] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  for (int base = 0; base < len; base += KS * U) {
    uint4 kr[U][NC], vr[U][NC];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int key = base + u * KS + s;
      if (key < len) {
        const int64_t off = prefill_row_offset(p, head_off, key);
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          kr[u][c] = prefill_load8(p.k + off + 8 * (j + 4 * c), p.vec);
          vr[u][c] = prefill_load8(p.v + off + 8 * (j + 4 * c), p.vec);
        }
      } else {
#pragma unroll
        for (int c = 0; c < NC; ++c) kr[u][c] = vr[u][c] = make_uint4(0, 0, 0, 0);
      }
    }
    float sc[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float acc = 0.0f;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        float f[8];
        prefill_unpack8(kr[u][c], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc = fmaf(q[8 * c + e], f[e], acc);
      }
      acc += __shfl_xor_sync(~0u, acc, 1);
      acc += __shfl_xor_sync(~0u, acc, 2);
      sc[u] = base + u * KS + s < len ? acc : -INFINITY;
    }
    float mx = m;
#pragma unroll
    for (int u = 0; u < U; ++u) mx = fmaxf(mx, sc[u]);
    const float mu = mx == -INFINITY ? 0.0f : mx;  // no key yet: stay at m = -inf, l = 0, o = 0
    const float alpha = exp2f(m - mu);
    l *= alpha;
#pragma unroll
    for (int e = 0; e < NC * 8; ++e) o[e] *= alpha;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float pu = exp2f(sc[u] - mu);
      l += pu;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        float f[8];
        prefill_unpack8(vr[u][c], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) o[8 * c + e] = fmaf(pu, f[e], o[8 * c + e]);
      }
    }
    m = mx;
  }

  // Merge the splits' softmax states; split 0 holds key 0, so the maximum is finite.
#pragma unroll
  for (int c = 0; c < NC; ++c)
#pragma unroll
    for (int e = 0; e < 8; ++e) so[s][8 * (j + 4 * c) + e] = o[8 * c + e];
  if (j == 0) {
    sm[s] = m;
    sl[s] = l;
  }
  __syncthreads();
  if (tid < HD) {
    float mx = -INFINITY;
    for (int x = 0; x < KS; ++x) mx = fmaxf(mx, sm[x]);
    float lsum = 0.0f, acc = 0.0f;
    for (int x = 0; x < KS; ++x) {
      const float w = exp2f(sm[x] - mx);  // 0 for a split without keys (m = -inf, l = 0)
      lsum = fmaf(sl[x], w, lsum);
      acc = fmaf(so[x][tid], w, acc);
    }
    p.out[i * p.out_st + h * p.out_sh + tid] = __float2half_rn(acc / lsum);
  }
}

}  // namespace latentkv::kernels
