// The BPE merge step on token ids: given a word as a sequence of token ids (initially one per
// byte), repeatedly merge the adjacent pair with the lowest merge rank, leftmost first on ties,
// until no adjacent pair has a merge. This is the rule HF `tokenizers` and llama.cpp apply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace latentkv {

class BpeMerges {
 public:
  /// Registers the merge (left, right) -> merged with the next rank (0 for the first call).
  /// A pair registered again keeps its first (lower) rank, as llama.cpp does.
  void add(int32_t left, int32_t right, int32_t merged);
  size_t size() const { return pairs_.size(); }

  /// Merges the ids in *symbols in place. O(n log n) in the word length n (a heap of candidate
  /// pairs over a linked list of symbols), so long words are not quadratic.
  void apply(std::vector<int32_t>* symbols) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  const Merge* find(int32_t left, int32_t right) const;

  std::unordered_map<uint64_t, Merge> pairs_;
  int32_t next_rank_ = 0;
};

}  // namespace latentkv
