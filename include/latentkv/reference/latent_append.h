// CPU reference of the latent append kernels (kernels/latent_append.cuh): same parameter struct,
// host pointers. Implements the window policy of latent_cache.h and quantizes with
// quantize_latent(), so its output is the bit-exact specification for the kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "latentkv/attention/latent_append.h"

namespace latentkv::reference {

/// Latents of the new rows in fp32: [num_tokens][num_groups*(k.rank+v.rank)] (key groups first),
/// computed in double from the fp16 x and a_cat and rounded once to fp32.
std::vector<float> latent_append_latents(const LatentAppendParams& p);

/// The store half: writes pages, scale/zero and ring of p.k / p.v (host memory) from `latents`
/// (row stride `stride`) and sets seq_lens_out. Throws Error(kInvalidArgument) on bad params.
void latent_append_store(const LatentAppendParams& p, const float* latents, int64_t stride);

/// latent_append_latents() then latent_append_store().
void latent_append(const LatentAppendParams& p);

}  // namespace latentkv::reference
