// Launch helper for the fused split combine + value up-projection (kernels/latent_combine_up.cuh).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/launch_dependent.h"
#include "latent_combine_up.cuh"

namespace latentkv::detail {

/// Sequences per CTA: the KV head's B_v rows are loaded once for all of them and its ratio query
/// heads, but a CTA merges and projects its vectors in turn, so small batches take at most half
/// of their sequences (two CTAs per head slice from batch 2 on), within the CTA's shared memory.
/// 0 when one sequence's vectors do not fit (latent_decode_is_supported / plan rule that out).
inline int combine_up_seqs_per_cta(int batch_size, int ratio, int num_slots, int rank_v) {
  using namespace kernels;
  const int fit = std::min({kUpMaxVecs / ratio, kUpMaxItems * kUpThreads / (ratio * rank_v),
                            kUpWeightSlots / (ratio * std::max(num_slots, 1))});
  return std::min(fit, std::max(1, batch_size / 2));
}

/// Grid (kUpSlices, num_kv_heads, batch blocks); returns the launch error.
inline cudaError_t launch_latent_combine_up(const kernels::CombineUpParams& p,
                                            cudaStream_t stream) {
  using namespace kernels;
  const int vecs = p.seqs_per_cta * p.ratio;
  if (p.seqs_per_cta < 1 || vecs > kUpMaxVecs || p.rank_v > kUpMaxRank ||
      vecs * p.rank_v > kUpMaxItems * kUpThreads || vecs * p.num_slots > kUpWeightSlots)
    return cudaErrorInvalidValue;
  const dim3 grid(kUpSlices, static_cast<unsigned>(p.num_kv_heads),
                  static_cast<unsigned>((p.batch_size + p.seqs_per_cta - 1) / p.seqs_per_cta));
  return launch_dependent(latent_combine_up_kernel, grid, dim3(kUpThreads), 0, stream, p);
}

}  // namespace latentkv::detail
