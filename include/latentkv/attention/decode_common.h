// Types shared by the engine-facing decode-attention calls (design §4, §7): element types, the
// paged-cache page table, the split-KV plan and the stream type. Compiles without nvcc.
//
// Calling pattern of every GPU op here: fill a params struct (plain pointers + strides, no
// ownership), check it with `<op>_is_supported()`, size a caller-owned device workspace with
// `<op>_plan()` (once, for the largest batch / context the caller will use), then call
// `<op>_run(params, plan, workspace, workspace_bytes, stream)` every step. `run` never allocates,
// never synchronizes and reads no device memory on the host, so it can be captured in a CUDA
// graph; lengths are read on the device.
#pragma once

#include <cstdint>

#include "latentkv/status.h"

struct CUstream_st;  // = cudaStream_t, declared here so that this header needs no CUDA headers

namespace latentkv {

/// A CUDA stream (cudaStream_t); nullptr is the legacy default stream.
using GpuStream = CUstream_st*;

/// Element type of a tensor crossing the API.
enum class DType : int32_t { kF16 = 0, kBF16 = 1, kF32 = 2 };

inline int dtype_bytes(DType t) { return t == DType::kF32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
    case DType::kF32:
      return "f32";
  }
  return "unknown";
}

/// Page table of a batch, FlashInfer/vLLM style (CSR). Sequence b holds seq_lens[b] tokens; its
/// token t lives in page indices[indptr[b] + t / page_size], slot t % page_size. The pages of a
/// sequence are listed in token order; indptr[b+1] - indptr[b] >= ceil(seq_lens[b] / page_size).
/// All three arrays live in device memory for kernels (host memory for the CPU references).
struct PageTableView {
  const int32_t* indptr = nullptr;    ///< [batch_size + 1]
  const int32_t* indices = nullptr;   ///< [indptr[batch_size]]
  const int32_t* seq_lens = nullptr;  ///< [batch_size], tokens per sequence (0 allowed)
  int page_size = 0;                  ///< tokens per page, >= 1
};

/// Split-KV decomposition (flash-decoding) chosen by a plan: the tokens of every sequence are cut
/// into num_splits ranges of tokens_per_split tokens (the last ones may be empty for shorter
/// sequences); each range is one CTA, and a combine kernel merges the partial results.
struct DecodePlan {
  int max_seq_len = 0;          ///< the longest sequence run() may see with this plan
  int num_splits = 1;           ///< token ranges per (sequence, head block)
  int tokens_per_split = 0;     ///< multiple of the kernel's token tile
  int heads_per_cta = 1;        ///< KV heads handled by one CTA (latent decode: of one group)
  int extra_splits = 0;         ///< partial results of the residual window's CTAs (latent decode)
  int64_t workspace_bytes = 0;  ///< caller-owned device workspace needed by run()
};

}  // namespace latentkv
