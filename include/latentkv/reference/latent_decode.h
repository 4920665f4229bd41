// CPU reference of the fused latent decode kernel (kernels/latent_decode.cuh): same parameter
// struct, host pointers. Reads the paged cache and residual ring exactly as the kernel does.
//
// Exact mode (default) computes in double from the stored data: dequantized latents
// (dequantize_latent), fp16 key factors b_k, RoPE at each token's position. Emulation mode
// applies the kernel's precision losses, as the "same-precision reference" of the tests: keys
// rebuilt with the int8 factors when bits < 16 (b_k_i8, exact integer codes), keys rounded to
// fp16 after RoPE, queries rounded to fp16 after scaling by sm_scale·log2(e), probabilities
// rounded to fp16, values rounded to fp16 after dequantization. (The kernel assembles 2/3/4-bit
// scores from two fp16 MMA terms instead of one rounded key; its roundings are of the same size.)
// For MHA the emulation follows the query-folded kernel instead: no keys; scores from the folded
// factors W rounded to fp16 (or β·int8 with one β per 16 rows on quantized rows; β·e4m3 with
// fp8_key_factors, as the Hopper warpgroup kernel) and the exact latents, with exact RoPE angles.
#pragma once

#include "latentkv/attention/latent_decode.h"
#include "latentkv/reference/paged_decode.h"

namespace latentkv::reference {

struct LatentDecodeOptions {
  bool emulate_kernel = false;
  /// MHA emulation on quantized rows: e4m3 folded factors (β = max|W| / 448 per 16 rows, the
  /// warpgroup kernel, detail::latent_uses_wgmma) instead of int8 (β = max|W| / 127).
  bool fp8_key_factors = false;
};

/// out [batch][num_qo_heads][rank_v] ([head_dim] with p.b_v: the up-projected values, computed
/// in double), lse [batch][num_qo_heads]. Throws
/// Error(kInvalidArgument) when latent_decode_is_supported(p) fails for a reason other than
/// device limits.
DecodeValues latent_decode_values(const LatentDecodeParams& p, const LatentDecodeOptions& opt = {});

/// Same, written to p.out (p.out_dtype) and p.lse (when set) like the kernel.
void latent_decode(const LatentDecodeParams& p, const LatentDecodeOptions& opt = {});

}  // namespace latentkv::reference
