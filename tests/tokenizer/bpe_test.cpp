#include "latentkv/tokenizer/bpe.h"

#include <gtest/gtest.h>

#include <vector>

namespace latentkv {
namespace {

// Ids 0..3 stand for the letters a, b, c, d; merged tokens get ids from 10 up.
constexpr int32_t a = 0, b = 1, c = 2, d = 3;

std::vector<int32_t> merge_all(const BpeMerges& m, std::vector<int32_t> ids) {
  m.apply(&ids);
  return ids;
}

TEST(BpeMergesTest, LowestRankMergesFirst) {
  BpeMerges m;
  m.add(b, c, 10);   // rank 0: bc
  m.add(a, b, 11);   // rank 1: ab (loses to bc in "abc")
  m.add(a, 10, 12);  // rank 2: a+bc
  EXPECT_EQ(merge_all(m, {a, b, c}), (std::vector<int32_t>{12}));
  EXPECT_EQ(merge_all(m, {a, b, d}), (std::vector<int32_t>{11, d}));
  EXPECT_EQ(m.size(), 3u);
}

TEST(BpeMergesTest, EqualRanksMergeLeftmostFirst) {
  BpeMerges m;
  m.add(a, a, 10);  // aa
  // "aaa": the left pair merges first -> [aa, a]; "aaaa" -> [aa, aa].
  EXPECT_EQ(merge_all(m, {a, a, a}), (std::vector<int32_t>{10, a}));
  EXPECT_EQ(merge_all(m, {a, a, a, a}), (std::vector<int32_t>{10, 10}));
  m.add(10, a, 11);  // aa+a, ranked after aa
  EXPECT_EQ(merge_all(m, {a, a, a}), (std::vector<int32_t>{11}));
  EXPECT_EQ(merge_all(m, {a, a, a, a}), (std::vector<int32_t>{10, 10}));
}

TEST(BpeMergesTest, NewPairsFormedByAMergeAreConsidered) {
  BpeMerges m;
  m.add(c, d, 10);   // cd
  m.add(b, 10, 11);  // b+cd, possible only after cd exists
  m.add(a, 11, 12);  // a+bcd
  m.add(a, b, 13);   // ab: ranked last, so never used on "abcd"
  EXPECT_EQ(merge_all(m, {a, b, c, d}), (std::vector<int32_t>{12}));
  EXPECT_EQ(merge_all(m, {a, b, d}), (std::vector<int32_t>{13, d}));
}

TEST(BpeMergesTest, DuplicatePairKeepsItsFirstRank) {
  BpeMerges m;
  m.add(a, b, 10);  // rank 0
  m.add(b, c, 11);  // rank 1
  m.add(a, b, 12);  // rank 2 for the same pair: ignored
  EXPECT_EQ(merge_all(m, {a, b, c}), (std::vector<int32_t>{10, c}));
}

TEST(BpeMergesTest, ShortAndUnmergeableWordsAreUnchanged) {
  BpeMerges m;
  m.add(a, b, 10);
  EXPECT_EQ(merge_all(m, {}), (std::vector<int32_t>{}));
  EXPECT_EQ(merge_all(m, {a}), (std::vector<int32_t>{a}));
  EXPECT_EQ(merge_all(m, {b, a, c, d}), (std::vector<int32_t>{b, a, c, d}));
}

// A doubling ladder (a, aa, aaaa, ...) over a long word: 4096 a's must collapse into one token
// of 4096, and 4097 a's leave the last one unmerged.
TEST(BpeMergesTest, LongWordCollapsesThroughTheLadder) {
  BpeMerges m;
  int32_t prev = a;
  for (int level = 1; level <= 12; ++level) {
    m.add(prev, prev, 100 + level);
    prev = 100 + level;
  }
  EXPECT_EQ(merge_all(m, std::vector<int32_t>(4096, a)), (std::vector<int32_t>{112}));
  EXPECT_EQ(merge_all(m, std::vector<int32_t>(4097, a)), (std::vector<int32_t>{112, a}));
  EXPECT_EQ(merge_all(m, std::vector<int32_t>(6, a)), (std::vector<int32_t>{102, 101}));
}

}  // namespace
}  // namespace latentkv
