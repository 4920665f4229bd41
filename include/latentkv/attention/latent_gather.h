// Reading back one sequence's cached latents as dense fp16 (design §4, prefill over a cache):
// the values the latent decode attention reads, for rebuilding K/V of the cached prefix.
//
// For a sequence of T = num_tokens cached tokens, position t, group g and channel c < rank:
//   out[t*out_stride + g*rank + c] =
//     t <  window.quantized_len(T): the page latent, fp16(fma(code, scale, zero)) in fp32 with the
//                                   token's (scale, zero) of the channel's quant group, exactly
//                                   as dequantize_latent(); for bits = 16 the stored fp16 value;
//     t >= window.quantized_len(T): the fp16 residual-window value of ring slot
//                                   t % window.ring_capacity() of sequence seq_slot.
// Layout of the cache: latent_cache.h. The GPU result is bit-exact with reference::latent_gather.
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"
#include "latentkv/attention/latent_cache.h"

namespace latentkv {

/// Parameters of one gather (one sequence, K or V of one layer). Device pointers for
/// latent_gather_run(), host pointers for reference::latent_gather(); nothing is owned.
struct LatentGatherParams {
  int num_groups = 0;
  LatentCacheView cache;  ///< K or V latents of one layer (latent_cache.h), uniform rank
  LatentWindowPolicy window;
  const int32_t* pages = nullptr;  ///< this sequence's page list (token order)
  int page_size = 0;
  int seq_slot = 0;    ///< ring index of the sequence (the b of ring_seq_stride)
  int num_tokens = 0;  ///< T: the sequence's cached length; positions 0..T-1 are read
  /// fp16 [T][num_groups*rank], row stride out_stride (elements).
  uint16_t* out = nullptr;
  int64_t out_stride = 0;
};

/// Ok, or kUnsupported / kInvalidArgument naming the first unsupported or inconsistent field:
/// num_groups >= 1; rank a positive multiple of 16; bits 16, 8, 4, 3 or 2; quant_group 0 or a
/// divisor of rank; window residual >= 0, chunk >= 1; page_size >= 1; num_tokens >= 0;
/// seq_slot >= 0; out_stride >= num_groups*rank; non-null the pointers that T needs (codes and
/// pages when a token lives in pages, scale_zero too when bits < 16, ring when a token lives in
/// the window, out when T > 0). No alignment is required.
Status latent_gather_is_supported(const LatentGatherParams& p);

#if defined(LATENTKV_WITH_CUDA)
/// Runs the gather on `stream` (one kernel; nothing when T = 0). Never allocates or synchronizes.
Status latent_gather_run(const LatentGatherParams& p, GpuStream stream);
#endif

}  // namespace latentkv
