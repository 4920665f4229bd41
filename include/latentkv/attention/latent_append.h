// Appending new tokens to the paged latent cache (design §4): project hidden states to K and V
// latents with one GEMM (cuBLAS, fp16 in, fp32 accumulate and out), round to fp16, quantize per
// token (bit-exact with quantize_latent()) and pack into pages, keeping the fp16 residual window
// of latent_cache.h.
//
// For sequence b with T = seq_lens[b] cached tokens and n_b = append_indptr[b+1]-append_indptr[b]
// new rows of x: positions [quantized_len(T), quantized_len(T + n_b)) are quantized into pages
// (from the ring when the position was already cached, else from the new latent), positions
// [max(T, quantized_len(T + n_b)), T + n_b) are written to the ring, and seq_lens_out[b] = T + n_b.
// Pages for every position below quantized_len(T + n_b) must be in the page table beforehand.
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"
#include "latentkv/attention/latent_cache.h"

struct cublasContext;  // = cublasHandle_t

namespace latentkv {

/// Parameters of one append (one layer). Device pointers for the kernels, host pointers for
/// reference::latent_append(); nothing is owned.
struct LatentAppendParams {
  int batch_size = 0;
  int num_groups = 0;  ///< groups of K and of V (same grouping)
  int d_model = 0;
  /// Rows of new hidden states over all sequences (x has num_tokens rows).
  int num_tokens = 0;
  /// New tokens of sequence b are rows [append_indptr[b], append_indptr[b+1]) of x, [batch+1].
  const int32_t* append_indptr = nullptr;
  /// Hidden states, fp16 [num_tokens][d_model] with row stride x_stride (elements).
  const uint16_t* x = nullptr;
  int64_t x_stride = 0;
  /// Stacked down-projections, fp16 [num_groups*(k.rank + v.rank)][d_model], key groups first
  /// then value groups (ProjectionFactors::a of K, then of V).
  const uint16_t* a_cat = nullptr;
  LatentCacheView k, v;
  LatentWindowPolicy window;
  /// pages.seq_lens = lengths before the append.
  PageTableView pages;
  /// Lengths after the append, [batch]; may be the same array as pages.seq_lens.
  int32_t* seq_lens_out = nullptr;
};

/// Ok, or kUnsupported / kInvalidArgument naming the first bad field of the store half (cache
/// views, window, page table, lengths; x and a_cat are not needed there).
Status latent_append_is_supported(const LatentAppendParams& params);
/// latent_append_is_supported() plus the projection inputs (x, a_cat, x_stride).
Status latent_append_gemm_is_supported(const LatentAppendParams& params);

/// Device workspace bytes for appends of up to max_tokens rows: the fp32 latents.
int64_t latent_append_workspace_bytes(const LatentAppendParams& params, int max_tokens);

#if defined(LATENTKV_WITH_CUDA)
/// GEMM into the workspace, then latent_append_store_run(). `cublas` is the caller's handle; its
/// stream is set to `stream` (restored afterwards).
Status latent_append_run(const LatentAppendParams& params, cublasContext* cublas, void* workspace,
                         int64_t workspace_bytes, GpuStream stream);
/// The store half only: latents (device, fp32 [num_tokens][num_groups*(k.rank+v.rank)], row
/// stride latents_stride elements, key groups then value groups) are rounded, quantized, packed
/// and written; seq_lens_out is updated. For engines that compute the projection themselves.
Status latent_append_store_run(const LatentAppendParams& params, const float* latents,
                               int64_t latents_stride, GpuStream stream);
#endif

}  // namespace latentkv
