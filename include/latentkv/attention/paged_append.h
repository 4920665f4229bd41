// Appending new fp16 keys/values to the uncompressed paged cache of paged_decode.h (the baseline
// cache of the engine and of the C API): a copy of new rows into their pages.
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"

namespace latentkv {

/// Parameters of one append (one layer). Device pointers; nothing is owned.
struct PagedAppendParams {
  int batch_size = 0;
  int num_tokens = 0;  ///< new rows over all sequences
  int num_kv_heads = 0;
  int head_dim = 0;
  /// New rows of sequence b are rows [append_indptr[b], append_indptr[b+1]) of k and v,
  /// [batch_size + 1].
  const int32_t* append_indptr = nullptr;
  /// Post-RoPE keys and values, fp16: k[row*k_stride + h*head_dim + d] (elements).
  const uint16_t* k = nullptr;
  const uint16_t* v = nullptr;
  int64_t k_stride = 0, v_stride = 0;
  /// Pages "HND" as in paged_decode.h (strides in elements, shared by K and V).
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  int64_t page_stride = 0, head_stride = 0, token_stride = 0;
  int64_t num_pages = 0;  ///< pages in the pool; page ids outside [0, num_pages) are skipped
  /// pages.seq_lens = lengths before the append.
  PageTableView pages;
  /// Lengths after the append, [batch_size]; may be the same array as pages.seq_lens.
  int32_t* seq_lens_out = nullptr;
};

#if defined(LATENTKV_WITH_CUDA)
/// Copies row r of sequence b to position seq_lens[b] + r of its pages (16 bytes per thread), then
/// writes seq_lens_out. Writes beyond a sequence's listed pages are dropped: callers check page
/// tables on the host. Arguments are not validated here (head_dim must be a multiple of 8 and
/// every stride a multiple of 8 elements). Never allocates or synchronizes (graph capturable).
Status paged_append_run(const PagedAppendParams& params, GpuStream stream);
#endif

}  // namespace latentkv
