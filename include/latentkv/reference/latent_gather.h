// CPU reference of the latent gather kernel (kernels/latent_gather.cuh): same parameter struct,
// host pointers; page latents are dequantized with dequantize_latent() and rounded to fp16.
#pragma once

#include "latentkv/attention/latent_gather.h"

namespace latentkv::reference {

/// Writes the T rows of p.out (see latent_gather.h). Throws Error with the code and message of
/// latent_gather_is_supported(p) when it fails.
void latent_gather(const LatentGatherParams& p);

}  // namespace latentkv::reference
