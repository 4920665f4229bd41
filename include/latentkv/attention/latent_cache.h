// Paged GPU latent cache of one layer (design §4): layout, residual-window policy and views.
//
// For K and V separately, one group's latent of one token is stored as
//   * codes:      page p, group g, slot t  -> codes + p*page_stride + g*group_stride +
//   t*token_stride
//                 (bytes; latent_code_bytes(rank, bits) used, fp16 little-endian when bits = 16),
//   * scale/zero: (fp16 scale, fp16 zero) per quant group, at
//                 scale_zero + p*sz_page_stride + g*sz_group_stride + t*sz_token_stride (bytes),
//   * the fp16 residual window: a ring of ring_capacity() slots per sequence; position pos of
//                 sequence b, group g lives in slot pos % ring_capacity() at
//                 ring + b*ring_seq_stride + g*ring_group_stride + slot*ring_token_stride (bytes).
// Pages are shared by K and V (one page id covers both) and by all groups of the layer.
//
// Window policy (identical to the CPU LatentStore, reference/latent_store.h): every latent is
// rounded to fp16 first; a sequence of T tokens holds its oldest quantized_len(T) tokens in pages
// and the rest (< residual + chunk) in the ring. quantized_len(T) = chunk·floor((T-residual)/chunk)
// for T >= residual, else 0. Quantization reads the fp16 value, so codes never depend on when a
// token was quantized. residual = 0, chunk = 1 stores every token in pages (no ring).
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"
#include "latentkv/quant/latent_quant.h"

namespace latentkv {

/// When tokens leave the fp16 residual window (see the file comment).
struct LatentWindowPolicy {
  int residual = 0;  ///< newest tokens kept in fp16 (at least), >= 0
  int chunk = 1;     ///< tokens quantized at once, >= 1

  /// Ring slots per sequence and group: the window never holds more than residual + chunk - 1.
  int ring_capacity() const { return residual + chunk - 1; }
  /// Tokens of a T-token sequence that live in pages.
  int64_t quantized_len(int64_t tokens) const {
    return tokens < residual ? 0 : int64_t{chunk} * ((tokens - residual) / chunk);
  }
};

/// Where the K (or V) latents of one layer live. Pointers are device pointers for kernels and
/// host pointers for the CPU references.
struct LatentCacheView {
  int rank = 0;         ///< latent width of every group (uniform ranks), multiple of 16
  int bits = 16;        ///< 16 = fp16 latents; 2, 3 or 4 = packed codes
  int quant_group = 0;  ///< channels per scale/zero pair; 0 = the whole latent
  void* codes = nullptr;
  int64_t page_stride = 0, group_stride = 0, token_stride = 0;
  void* scale_zero = nullptr;
  int64_t sz_page_stride = 0, sz_group_stride = 0, sz_token_stride = 0;
  void* ring = nullptr;
  int64_t ring_seq_stride = 0, ring_group_stride = 0, ring_token_stride = 0;

  QuantConfig quant_config() const {
    QuantConfig c;
    c.bits = bits;
    c.quant_group = quant_group;
    return c;
  }
  int num_quant_groups() const {
    return bits == 16 ? 0 : rank / (quant_group ? quant_group : rank);
  }
};

/// Sizes and strides of a densely allocated latent cache for one of K / V (helper for engines,
/// tests and benchmarks): `num_pages` pages, `max_batch` ring slots sets. Rows are padded to 16
/// bytes (the kernels copy 16-byte chunks); `bytes_per_token` is the exact unpadded figure.
struct LatentCacheLayout {
  int64_t code_row_bytes = 0;    ///< latent_code_bytes(rank, bits)
  int64_t codes_bytes = 0;       ///< whole codes pool
  int64_t scale_zero_bytes = 0;  ///< whole scale/zero pool (0 for fp16)
  int64_t ring_bytes = 0;        ///< whole ring pool
  int64_t bytes_per_token = 0;   ///< exact: num_groups · latent_bytes_per_token(rank, config)
  LatentCacheView view;          ///< strides filled, pointers null
};

/// Throws Error(kInvalidArgument) on a bad argument (bits, rank, quant_group, page_size, ...).
LatentCacheLayout make_latent_cache_layout(int num_groups, int rank, const QuantConfig& config,
                                           int page_size, int64_t num_pages,
                                           const LatentWindowPolicy& window, int max_batch);

}  // namespace latentkv
