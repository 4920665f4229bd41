#include "latentkv/tokenizer/bpe.h"

#include <algorithm>
#include <functional>
#include <queue>

namespace latentkv {

void BpeMerges::add(int32_t left, int32_t right, int32_t merged) {
  pairs_.try_emplace(key(left, right), Merge{next_rank_, merged});
  ++next_rank_;
}

const BpeMerges::Merge* BpeMerges::find(int32_t left, int32_t right) const {
  const auto it = pairs_.find(key(left, right));
  return it == pairs_.end() ? nullptr : &it->second;
}

void BpeMerges::apply(std::vector<int32_t>* symbols) const {
  std::vector<int32_t>& sym = *symbols;
  const int n = static_cast<int>(sym.size());
  if (n < 2) return;

  // Doubly linked list over positions; a merged symbol lives on at its left position, so a
  // position orders candidates left to right for the whole merge.
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;       // left symbol's position
    int32_t left;  // ids the pair had when queued; a stale entry no longer matches them
    int32_t right;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    const int r = next[pos];
    if (const Merge* m = find(sym[pos], sym[r])) heap.push({m->rank, pos, sym[pos], sym[r]});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int r = next[c.pos];
    // Stale entry: its left position was absorbed into a neighbour (next == -2), or one side has
    // been merged into something else since it was queued (the ids differ).
    if (r < 0 || sym[c.pos] != c.left || sym[r] != c.right) continue;
    sym[c.pos] = find(c.left, c.right)->merged;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    next[r] = -2;
    push(prev[c.pos]);
    push(c.pos);
  }
  int out = 0;
  for (int i = 0; i >= 0; i = next[i]) sym[out++] = sym[i];
  sym.resize(out);
}

}  // namespace latentkv
