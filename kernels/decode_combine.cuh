// Split-KV combine (flash-decoding): merges the normalized partial results of the token splits
// of one (sequence, query head) weighted by their log2-sum-exp. Slots with lse = -inf (empty
// splits) are skipped without reading their values (which are never written).
#pragma once

#include <cstdint>

#include "mma_utils.cuh"

namespace latentkv::kernels {

struct DecodeCombineParams {
  const float* part_o;    // [rows][num_slots][dim], rows = batch * num_heads
  const float* part_lse;  // [rows][num_slots], log2 domain
  int num_slots, dim, num_heads;
  void* out;  // out[b*out_sb + h*out_sh + d]
  int out_dtype;
  int64_t out_sb, out_sh;
  float* lse;  // [rows] natural log, or nullptr
};

/// Most partial results one combine merges (plans stay below 131072 / 64 + 1).
constexpr int kMaxCombineSlots = 4096;

/// Threads of a combine CTA: one value column each for ranks up to 256.
constexpr int kCombineThreads = 256;

/// Slots whose values one thread loads at once: a typical split count (<= 32) is one round trip.
constexpr int kCombineBatch = 32;

/// The max log2-sum-exp of one row's splits and the sum of their merge weights.
struct SplitMerge {
  float max, sum;
  /// 1 / sum, or 0 when every slot is empty.
  __device__ float inv_sum() const { return max == -INFINITY ? 0.0f : 1.0f / sum; }
  /// The merged log-sum-exp in natural-log units (-inf when every slot is empty).
  __device__ float lse() const {
    return max == -INFINITY ? -INFINITY : (max + log2f(sum)) * 0.69314718055994531f;
  }
};

/// Merge weights of one row's split partials, computed by one warp: w[s] = 2^(lse[s] - max)
/// (0 for an empty slot, lse = -inf); every lane returns the same SplitMerge. Shared by the split
/// combine here and the combine-up (latent_combine_up.cuh).
__device__ __forceinline__ SplitMerge split_merge_weights(const float* lse, int num_slots, float* w,
                                                          int lane) {
  // Rolled loops: a typical split count (<= 32) is one iteration, and short kernels pay for
  // every instruction they fetch.
  float m = -INFINITY;
#pragma unroll 1
  for (int s = lane; s < num_slots; s += 32) m = fmaxf(m, __ldcg(lse + s));
  for (int off = 16; off > 0; off /= 2) m = fmaxf(m, __shfl_xor_sync(~0u, m, off));
  float sum = 0.0f;
#pragma unroll 1
  for (int s = lane; s < num_slots; s += 32) {
    const float l = __ldcg(lse + s);
    const float e = l == -INFINITY ? 0.0f : exp2f(l - m);
    w[s] = e;
    sum += e;
  }
  for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(~0u, sum, off);
  return {m, sum};
}

/// One CTA per (sequence, head).
// static: the header is compiled into several .cu files of one library (internal linkage per TU).
static __global__ void __launch_bounds__(kCombineThreads)
    decode_combine_kernel(const DecodeCombineParams p) {
  grid_dependency_wait();    // launched as a programmatic dependent (launch_dependent)
  grid_dependents_launch();  // the output projection may start loading its weights
  __shared__ float weight[kMaxCombineSlots];
  __shared__ SplitMerge merge;
  const int64_t row = blockIdx.x;
  const int b = static_cast<int>(row / p.num_heads), h = static_cast<int>(row % p.num_heads);
  const float* ls = p.part_lse + row * p.num_slots;
  const float* po = p.part_o + row * p.num_slots * p.dim;
  // Values of slots s0 .. s0 + kCombineBatch - 1 at column d. The loads do not wait for the
  // weights: they are issued before the weights are known (the first batch while warp 0 reduces
  // the log-sum-exps), and each is predicated only on the slot count so that all of them are in
  // flight at once. Empty slots are read too (never written: any bits) and dropped by their zero
  // weight below.
  auto load = [&](float(&v)[kCombineBatch], int s0, int d) {
#pragma unroll
    for (int k = 0; k < kCombineBatch; ++k) {
      const int s = s0 + k;
      v[k] = s < p.num_slots ? __ldcg(po + int64_t{s} * p.dim + d) : 0.0f;
    }
  };
  float v[kCombineBatch];
  if (static_cast<int>(threadIdx.x) < p.dim) load(v, 0, threadIdx.x);
  if (threadIdx.x < 32) {
    const SplitMerge w = split_merge_weights(ls, p.num_slots, weight, threadIdx.x);
    if (threadIdx.x == 0) merge = w;
  }
  __syncthreads();
  const float inv = merge.inv_sum();
  for (int d = threadIdx.x; d < p.dim; d += blockDim.x) {
    if (d != static_cast<int>(threadIdx.x)) load(v, 0, d);
    float sum_o = 0.0f;
    for (int s0 = 0; s0 < p.num_slots; s0 += kCombineBatch) {
      if (s0 > 0) load(v, s0, d);
#pragma unroll
      for (int k = 0; k < kCombineBatch; ++k) {
        const int s = s0 + k;
        const float w = s < p.num_slots ? weight[s] : 0.0f;
        if (w != 0.0f) sum_o = fmaf(w, v[k], sum_o);  // empty slots: not their bits
      }
    }
    store_out(p.out, int64_t{b} * p.out_sb + int64_t{h} * p.out_sh + d, sum_o * inv, p.out_dtype);
  }
  if (threadIdx.x == 0 && p.lse != nullptr) p.lse[row] = merge.lse();
}

}  // namespace latentkv::kernels
