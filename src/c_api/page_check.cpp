#include "c_api/page_check.h"

#include <vector>

#include "latentkv/status.h"

namespace latentkv::capi {

void check_page_table(int batch_size, const int32_t* indptr, const int32_t* indices,
                      const int32_t* seq_lens, const int32_t* new_tokens, int64_t num_pages,
                      int page_size, const std::function<int64_t(int64_t)>& paged_tokens) {
  LKV_CHECK_ARG(batch_size >= 1, "batch_size ", batch_size, " < 1");
  LKV_CHECK_ARG(indptr && seq_lens, "indptr or seq_lens is null");
  LKV_CHECK_ARG(indptr[0] == 0, "indptr[0] is ", indptr[0], ", not 0");
  LKV_CHECK_ARG(indices || indptr[batch_size] == 0, "indices is null");
  std::vector<bool> used(static_cast<size_t>(num_pages), false);
  for (int b = 0; b < batch_size; ++b) {
    const int64_t first = indptr[b], last = indptr[b + 1];
    LKV_CHECK_ARG(last >= first, "indptr decreases at sequence ", b);
    for (int64_t i = first; i < last; ++i) {
      const int32_t page = indices[i];
      LKV_CHECK_ARG(page >= 0 && page < num_pages, "sequence ", b, " lists page ", page,
                    " outside the pool of ", num_pages, " pages");
      LKV_CHECK_ARG(!used[page], "page ", page, " is listed twice (sequence ", b, ")");
      used[page] = true;
    }
    const int64_t extra = new_tokens ? new_tokens[b] : 0;
    LKV_CHECK_ARG(seq_lens[b] >= 0 && extra >= 0, "sequence ", b, " has a negative length");
    const int64_t tokens = int64_t{seq_lens[b]} + extra;
    const int64_t need = (paged_tokens(tokens) + page_size - 1) / page_size;
    LKV_CHECK_ARG(need <= last - first, "sequence ", b, " of ", tokens, " tokens needs ", need,
                  " pages of ", page_size, " tokens but its page table lists ", last - first);
  }
}

}  // namespace latentkv::capi
