// Host-side validation of a page table against a cache's page pool (the kernels cannot report a
// sequence that runs past its pages, so engines check the host copy of their tables).
#pragma once

#include <cstdint>
#include <functional>

namespace latentkv::capi {

/// Throws Error(kInvalidArgument) naming the first problem: indptr[0] != 0 or decreasing; a page
/// id outside [0, num_pages) or listed twice; negative lengths; a sequence b whose
/// paged_tokens(seq_lens[b] + new_tokens[b]) tokens need more than its listed pages.
/// new_tokens may be null (no new tokens).
void check_page_table(int batch_size, const int32_t* indptr, const int32_t* indices,
                      const int32_t* seq_lens, const int32_t* new_tokens, int64_t num_pages,
                      int page_size, const std::function<int64_t(int64_t)>& paged_tokens);

}  // namespace latentkv::capi
