// Split-KV combine fused with the value up-projection (design §3.8) for latent decode: merges the
// token splits' latent results z[b, h, :rank_v] (as decode_combine.cuh) and applies the KV head's
// slice of B_v, o[b, h, d] = Σ_c B_v,g[s][d][c] · z[b, h, c]. It replaces the combine kernel and
// the batched GEMM after it (z stays in fp32 and is not stored between them), and the B_v rows
// are read into registers before the wait on the decode kernel, so their load overlaps its tail.
//
// A CTA owns a quarter of the rows of one KV head's slice (kUpSlices) and projects a few
// vectors z with them: the query heads that read that KV head, for one or more sequences.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "decode_combine.cuh"
#include "latent_decode_layout.h"
#include "mma_utils.cuh"

namespace latentkv::kernels {

struct CombineUpParams {
  /// Split partials, [batch][num_qo_heads][num_slots][rank_v]; with num_slots = 1 the decode's
  /// own normalized result (no merge, part_lse not read).
  const float* part_o;
  const float* part_lse;  // [batch][num_qo_heads][num_slots], log2 domain
  int num_slots, rank_v, head_dim;
  int batch_size, num_qo_heads, num_kv_heads, ratio;
  /// Sequences per CTA: seqs·ratio <= kUpMaxVecs, seqs·ratio·rank_v <= kUpMaxItems·kUpThreads,
  /// seqs·ratio·num_slots <= kUpWeightSlots.
  int seqs_per_cta;
  const int32_t* group_heads;  // [num_kv_heads]: KV head at (group g, slot s) = [g*gs + s]
  const __half* b_v;           // [num_kv_heads (in group_heads order)][head_dim][rank_v]
  void* out;                   // out[b*out_sb + h*out_sh + d]
  int out_dtype;
  int64_t out_sb, out_sh;
  float* lse;  // [batch][num_qo_heads] natural log, or nullptr; not written when num_slots = 1
};

/// c ? a : b on registers. A plain conditional between two array elements may become a load
/// from a selected address, which puts the whole array in local memory.
__device__ __forceinline__ float select_f32(bool c, float a, float b) {
  float r;
  asm("{\n.reg .pred q;\nsetp.ne.b32 q, %3, 0;\nselp.f32 %0, %1, %2, q;\n}"
      : "=f"(r)
      : "f"(a), "f"(b), "r"(static_cast<int>(c)));
  return r;
}

/// One step of a warp reduce-scatter of 2·O values per lane with the lane at distance DIST
/// (a power of two): the lane keeps the half selected by its lane bit DIST, added to its
/// partner's copy of that half.
template <int O, int DIST>
__device__ __forceinline__ void reduce_scatter_step(float* part, int lane) {
  const bool upper = lane & DIST;
#pragma unroll
  for (int k = 0; k < O; ++k) {
    const float keep = select_f32(upper, part[k + O], part[k]);
    const float send = select_f32(upper, part[k], part[k + O]);
    part[k] = keep + __shfl_xor_sync(~0u, send, DIST);
  }
}

/// Rows of B_v one lane holds: 4 rows per warp at head_dim 128 (2 at 64, the rest zero), 16-byte
/// fragments of columns 8·lane.. and 256 + 8·lane..
constexpr int kUpRows = 128 / (kUpSlices * kUpWarps);
constexpr int kUpChunks = kUpMaxRank / 256;

/// The CTA's vectors u = t·ratio + i: query head kv·ratio + i of sequence b0 + t.
struct CombineUpVectors {
  int64_t row0;  // partial-result row (b·num_qo_heads + h) of vector 0
  int ratio, num_qo_heads, count;
  __device__ int64_t row(int u) const {
    return row0 + int64_t{u / ratio} * num_qo_heads + u % ratio;
  }
};

/// Merge, then projection, with ITEMS latent values per thread and SLOTS slots of each in
/// flight: z[u][c] = Σ_s weight[u][s]·part_o[row(u)][s][c] / Σ_s weight[u][s], then
/// o[u][row] = B_v[row] · z[u]. The first slots' values are loaded before the weights are known.
template <int ITEMS, int SLOTS>
__device__ __forceinline__ void combine_up_tail(const CombineUpParams& p,
                                                const CombineUpVectors& vec,
                                                const uint4 (&breg)[kUpRows][kUpChunks], int slice,
                                                int row0, float* weight, float* z, float* inv_sum) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = vec.count * p.rank_v, slots = p.num_slots;
  const float* po[ITEMS];
  int u_of[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int i = min(static_cast<int>(threadIdx.x) + k * kUpThreads, n - 1);
    u_of[k] = i / p.rank_v;
    po[k] = p.part_o + vec.row(u_of[k]) * slots * p.rank_v + i % p.rank_v;
  }
  float v[ITEMS][SLOTS];
  const auto load = [&](int s0) {
#pragma unroll
    for (int k = 0; k < ITEMS; ++k)
#pragma unroll
      for (int j = 0; j < SLOTS; ++j)
        v[k][j] = s0 + j < slots ? __ldcg(po[k] + int64_t{s0 + j} * p.rank_v) : 0.0f;
  };
  load(0);  // in flight while the weights are computed

  if (slots == 1) {  // the decode's own result: weight 1
    if (threadIdx.x < vec.count) {
      weight[threadIdx.x] = 1.0f;
      inv_sum[threadIdx.x] = 1.0f;
    }
  } else {
    for (int u = warp; u < vec.count; u += kUpWarps) {  // warp: log-sum-exp weights of vector u
      const SplitMerge w =
          split_merge_weights(p.part_lse + vec.row(u) * slots, slots, weight + u * slots, lane);
      if (lane == 0) {
        inv_sum[u] = w.inv_sum();
        if (slice == 0 && p.lse != nullptr) p.lse[vec.row(u)] = w.lse();
      }
    }
  }
  __syncthreads();

  float acc[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) acc[k] = 0.0f;
  for (int s0 = 0; s0 < slots; s0 += SLOTS) {
    if (s0 > 0) load(s0);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k)
#pragma unroll
      for (int j = 0; j < SLOTS; ++j) {
        const float wk = s0 + j < slots ? weight[u_of[k] * slots + s0 + j] : 0.0f;
        // Empty splits never wrote their values (any bits): their zero weight drops them.
        acc[k] = wk != 0.0f ? fmaf(wk, v[k][j], acc[k]) : acc[k];
      }
  }
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int i = threadIdx.x + k * kUpThreads;
    if (i < n) z[i] = acc[k] * inv_sum[u_of[k]];
  }
  __syncthreads();

  // ---- project: o[u][row0 + r] = B_v[row0 + r] · z[u], one vector at a time ----------------
  // A rolled loop: this kernel is short and runs once per layer, so its time goes to fetching
  // instructions as much as to executing them.
  const int r_out = lane / 8;  // the row lanes 8·r .. 8·r + 7 hold after the reduction
#pragma unroll 1
  for (int u = 0; u < vec.count; ++u) {
    float part[kUpRows] = {};
#pragma unroll
    for (int j = 0; j < kUpChunks; ++j) {
      const int col = j * 256 + lane * 8;
      if (col >= p.rank_v) continue;
      const float4 z0 = *reinterpret_cast<const float4*>(z + u * p.rank_v + col);
      const float4 z1 = *reinterpret_cast<const float4*>(z + u * p.rank_v + col + 4);
#pragma unroll
      for (int r = 0; r < kUpRows; ++r) {
        const __half2* b2 = reinterpret_cast<const __half2*>(&breg[r][j]);
        const float2 f0 = __half22float2(b2[0]), f1 = __half22float2(b2[1]);
        const float2 f2 = __half22float2(b2[2]), f3 = __half22float2(b2[3]);
        float a = part[r];
        a = fmaf(f0.x, z0.x, a);
        a = fmaf(f0.y, z0.y, a);
        a = fmaf(f1.x, z0.z, a);
        a = fmaf(f1.y, z0.w, a);
        a = fmaf(f2.x, z1.x, a);
        a = fmaf(f2.y, z1.y, a);
        a = fmaf(f3.x, z1.z, a);
        a = fmaf(f3.y, z1.w, a);
        part[r] = a;
      }
    }
    // The 4 row sums over the warp: two reduce-scatter steps leave row lane / 8 in part[0],
    // summed over lanes that differ in bits 4 and 3; three butterflies sum over bits 2..0.
    static_assert(kUpRows == 4, "two reduce-scatter steps");
    reduce_scatter_step<2, 16>(part, lane);
    reduce_scatter_step<1, 8>(part, lane);
    float sum = part[0];
    for (int off = 4; off > 0; off /= 2) sum += __shfl_xor_sync(~0u, sum, off);
    if ((lane & 7) == 0 && r_out < p.head_dim / (kUpSlices * kUpWarps)) {
      const int64_t row = vec.row(u);  // = b·num_qo_heads + h
      const int64_t b = row / p.num_qo_heads, h = row % p.num_qo_heads;
      store_out(p.out, b * p.out_sb + h * p.out_sh + row0 + r_out, sum, p.out_dtype);
    }
  }
}

/// Grid (kUpSlices, num_kv_heads, ceil(batch / seqs_per_cta)): CTA (slice, pos, bt) owns rows
/// slice·head_dim/kUpSlices .. + head_dim/kUpSlices of the B_v slice at position pos (group
/// pos / group_size, slot pos % group_size) and projects the query heads of that KV head for
/// its sequences.
// static: the header is compiled into several .cu files of one library (internal linkage per TU).
static __global__ void __launch_bounds__(kUpThreads)
    latent_combine_up_kernel(const CombineUpParams p) {
  const int slice = blockIdx.x, pos = blockIdx.y;
  const int b0 = blockIdx.z * p.seqs_per_cta;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int rows_per_warp = p.head_dim / (kUpSlices * kUpWarps);  // 4 at head_dim 128, 2 at 64
  const int row0 = slice * (p.head_dim / kUpSlices) + warp * rows_per_warp;

  // B_v rows and the grouping are model data, which no earlier kernel writes: read before the
  // wait. Streaming loads (read once per step), not ld.global.nc: the compiler moves those
  // after the wait.
  const __half* bv = p.b_v + (int64_t{pos} * p.head_dim + row0) * p.rank_v;
  uint4 breg[kUpRows][kUpChunks];
#pragma unroll
  for (int r = 0; r < kUpRows; ++r)
#pragma unroll
    for (int j = 0; j < kUpChunks; ++j) {
      const int col = j * 256 + lane * 8;
      breg[r][j] = r < rows_per_warp && col < p.rank_v
                       ? __ldcs(reinterpret_cast<const uint4*>(bv + int64_t{r} * p.rank_v + col))
                       : make_uint4(0, 0, 0, 0);
    }
  const int kv = __ldcs(p.group_heads + pos);
  // Shared by both forms of the tail (declared in one of them, each would take its own).
  __shared__ float weight[kUpWeightSlots];                     // [vector][slot]
  __shared__ __align__(16) float z[kUpMaxItems * kUpThreads];  // [vector][rank_v]
  __shared__ float inv_sum[kUpMaxVecs];

  grid_dependency_wait();    // launched as a programmatic dependent (launch_dependent)
  grid_dependents_launch();  // the output projection may start loading its weights

  CombineUpVectors vec;
  vec.row0 = int64_t{b0} * p.num_qo_heads + int64_t{kv} * p.ratio;
  vec.ratio = p.ratio;
  vec.num_qo_heads = p.num_qo_heads;
  vec.count = min(p.seqs_per_cta, p.batch_size - b0) * p.ratio;
  // One value per thread (one query head at batch 1) reads up to 32 slots at once; several
  // read 4 slots of each.
  if (vec.count * p.rank_v <= kUpThreads)
    combine_up_tail<1, 32>(p, vec, breg, slice, row0, weight, z, inv_sum);
  else
    combine_up_tail<kUpMaxItems, 4>(p, vec, breg, slice, row0, weight, z, inv_sum);
}

}  // namespace latentkv::kernels
