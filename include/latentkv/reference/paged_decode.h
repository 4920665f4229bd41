// CPU reference of the fp16 paged decode kernel (kernels/paged_decode.cuh): same parameter struct,
// host pointers, computed in double from the fp16 inputs.
#pragma once

#include <vector>

#include "latentkv/attention/paged_decode.h"

namespace latentkv::reference {

/// Outputs in double: out [batch][num_qo_heads][head_dim], lse [batch][num_qo_heads] (natural
/// log, -inf for empty sequences; their outputs are 0).
struct DecodeValues {
  std::vector<double> out;
  std::vector<double> lse;
};

/// Attention of every sequence of `p` (host pointers). Throws Error(kInvalidArgument) when
/// paged_decode_is_supported(p) fails.
DecodeValues paged_decode_values(const PagedDecodeParams& p);

/// Same, written to p.out (fp16) and p.lse (when set) like the kernel.
void paged_decode(const PagedDecodeParams& p);

}  // namespace latentkv::reference
