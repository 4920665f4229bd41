// CPU reference of the prefill attention kernels (kernels/prefill_attention.cuh): same parameter
// struct, host pointers, fp32 math from the fp16 inputs.
#pragma once

#include "latentkv/attention/prefill_attention.h"

namespace latentkv::reference {

/// Causal attention of `p` (host pointers), written to p.out in fp16. Scores and the softmax
/// are computed in fp32 (max-subtracted, exact two-pass normalization). Throws Error with the
/// code and message of prefill_attention_is_supported(p) when it fails.
void prefill_attention(const PrefillAttentionParams& p);

}  // namespace latentkv::reference
