// Host tests of the C API caches: sizes (hand-computed), placement inside the arena, bad
// descriptions, arenas that are too small, and page-table checks. No GPU needed: creation only
// records pointers, so a host buffer stands in for the device arena.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "c_api/c_api_fixture.h"
#include "latentkv/attention/latent_cache.h"
#include "latentkv/c_api.h"

namespace latentkv {
namespace {

using testing::example_latent_desc;
using testing::example_paged_desc;

/// A 256-byte aligned host buffer.
struct HostArena {
  explicit HostArena(int64_t bytes) : storage(static_cast<size_t>(bytes) + 256) {}
  uint8_t* get() {
    const auto p = reinterpret_cast<uintptr_t>(storage.data());
    return reinterpret_cast<uint8_t*>((p + 255) / 256 * 256);
  }
  std::vector<uint8_t> storage;
};

// Example description: K rows 128*4/8 = 64 B (+4 B scale/zero), V rows 32 B (+4 B); pages of 16
// tokens x 2 groups: K codes 2048, V codes 1024, scale/zero 128 + 128 -> 3328 B per page. Rings
// hold 32 + 16 - 1 = 47 fp16 latents per group and slot: K 47*256*2 = 24064 B per slot, V 12032,
// 4 slots. Segments (256-aligned): 20480 + 10240 + 1280 + 1280 + 96256 + 48128 = 177664.
TEST(CApiLatentCache, SizesMatchTheHandComputedLayout) {
  const lkv_latent_cache_desc d = example_latent_desc();
  lkv_cache_sizes s{};
  EXPECT_LKV_OK(lkv_latent_cache_size(&d, &s));
  EXPECT_EQ(s.bytes_per_page, 3328);
  EXPECT_EQ(s.arena_bytes, 177664);
  EXPECT_EQ(s.fixed_bytes, 177664 - 10 * 3328);
  EXPECT_EQ(s.bytes_per_token, 2 * (64 + 4) + 2 * (32 + 4));
  EXPECT_STREQ(lkv_last_error_message(), "");
}

TEST(CApiLatentCache, Fp16LatentsWithoutWindowHaveNoScaleOrRing) {
  lkv_latent_cache_desc d = example_latent_desc();
  d.bits = 16;
  d.residual = 0;
  d.chunk = 1;
  lkv_cache_sizes s{};
  EXPECT_LKV_OK(lkv_latent_cache_size(&d, &s));
  // K 256 B, V 128 B per token and group; pages 2*16*(256+128) = 12288 B.
  EXPECT_EQ(s.bytes_per_page, 12288);
  EXPECT_EQ(s.arena_bytes, 10 * 12288);
  EXPECT_EQ(s.bytes_per_token, 2 * 256 + 2 * 128);
  HostArena arena(s.arena_bytes);
  lkv_latent_cache* cache = nullptr;
  EXPECT_LKV_OK(lkv_latent_cache_create(&d, arena.get(), s.arena_bytes, &cache));
  lkv_latent_view k{}, v{};
  EXPECT_LKV_OK(lkv_latent_cache_views(cache, &k, &v));
  EXPECT_EQ(k.scale_zero, nullptr);
  EXPECT_EQ(k.ring, nullptr);
  EXPECT_EQ(v.ring, nullptr);
  lkv_latent_cache_destroy(cache);
}

TEST(CApiLatentCache, ViewsUseTheCppLayoutAndDisjointArenaSegments) {
  const lkv_latent_cache_desc d = example_latent_desc();
  lkv_cache_sizes s{};
  ASSERT_EQ(lkv_latent_cache_size(&d, &s), LKV_OK);
  HostArena arena(s.arena_bytes);
  lkv_latent_cache* cache = nullptr;
  ASSERT_EQ(lkv_latent_cache_create(&d, arena.get(), s.arena_bytes, &cache), LKV_OK)
      << lkv_last_error_message();
  lkv_latent_view k{}, v{};
  EXPECT_LKV_OK(lkv_latent_cache_views(cache, &k, &v));
  QuantConfig q;
  q.bits = 4;
  LatentWindowPolicy w;
  w.residual = 32;
  w.chunk = 16;
  const auto kl = make_latent_cache_layout(2, 128, q, 16, 10, w, 4);
  const auto vl = make_latent_cache_layout(2, 64, q, 16, 10, w, 4);
  EXPECT_EQ(k.page_stride, kl.view.page_stride);
  EXPECT_EQ(k.token_stride, kl.view.token_stride);
  EXPECT_EQ(k.sz_page_stride, kl.view.sz_page_stride);
  EXPECT_EQ(k.ring_seq_stride, kl.view.ring_seq_stride);
  EXPECT_EQ(v.group_stride, vl.view.group_stride);
  EXPECT_EQ(v.ring_token_stride, vl.view.ring_token_stride);
  // Six segments inside [base, base + arena_bytes), 16-byte aligned and pairwise disjoint.
  const uint8_t* base = arena.get();
  std::vector<std::pair<int64_t, int64_t>> seg = {
      {static_cast<uint8_t*>(k.codes) - base, kl.codes_bytes},
      {static_cast<uint8_t*>(v.codes) - base, vl.codes_bytes},
      {static_cast<uint8_t*>(k.scale_zero) - base, kl.scale_zero_bytes},
      {static_cast<uint8_t*>(v.scale_zero) - base, vl.scale_zero_bytes},
      {static_cast<uint8_t*>(k.ring) - base, kl.ring_bytes},
      {static_cast<uint8_t*>(v.ring) - base, vl.ring_bytes}};
  std::sort(seg.begin(), seg.end());
  for (size_t i = 0; i < seg.size(); ++i) {
    EXPECT_EQ(seg[i].first % 16, 0);
    EXPECT_GE(seg[i].first, 0);
    EXPECT_LE(seg[i].first + seg[i].second, s.arena_bytes);
    if (i > 0) {
      EXPECT_LE(seg[i - 1].first + seg[i - 1].second, seg[i].first);
    }
  }
  lkv_latent_cache_destroy(cache);
}

TEST(CApiLatentCache, ArenaTooSmallOrMisalignedIsRejected) {
  const lkv_latent_cache_desc d = example_latent_desc();
  HostArena arena(177664);
  lkv_latent_cache* cache = reinterpret_cast<lkv_latent_cache*>(&arena);
  EXPECT_LKV_STATUS(lkv_latent_cache_create(&d, arena.get(), 177663, &cache), LKV_ERR_OUT_OF_MEMORY,
                    "the cache needs 177664");
  EXPECT_EQ(cache, nullptr);
  EXPECT_LKV_STATUS(lkv_latent_cache_create(&d, arena.get() + 8, 177664, &cache),
                    LKV_ERR_INVALID_ARGUMENT, "16-byte aligned");
  EXPECT_LKV_STATUS(lkv_latent_cache_create(&d, nullptr, 177664, &cache), LKV_ERR_INVALID_ARGUMENT,
                    "arena is null");
}

TEST(CApiLatentCache, BadDescriptionsGiveClearErrors) {
  lkv_cache_sizes s{};
  const auto with = [](auto edit) {
    lkv_latent_cache_desc d = example_latent_desc();
    edit(d);
    return d;
  };
  struct Case {
    lkv_latent_cache_desc desc;
    lkv_status code;
    const char* fragment;
  };
  const Case cases[] = {
      {with([](auto& d) { d.rank_k = 24; }), LKV_ERR_INVALID_ARGUMENT, "rank 24"},
      {with([](auto& d) { d.rank_v = 0; }), LKV_ERR_INVALID_ARGUMENT, "rank 0"},
      {with([](auto& d) { d.bits = 5; }), LKV_ERR_INVALID_ARGUMENT, "bits 5"},
      {with([](auto& d) { d.quant_group = 48; }), LKV_ERR_INVALID_ARGUMENT, "quant_group 48"},
      {with([](auto& d) { d.quant_group = 4; }), LKV_ERR_UNSUPPORTED, "quant_group 4"},
      {with([](auto& d) { d.page_size = 0; }), LKV_ERR_INVALID_ARGUMENT, "page_size 0"},
      {with([](auto& d) { d.num_pages = -1; }), LKV_ERR_INVALID_ARGUMENT, "num_pages -1"},
      {with([](auto& d) { d.num_pages = int64_t{1} << 31; }), LKV_ERR_INVALID_ARGUMENT,
       "page ids are int32"},
      {with([](auto& d) { d.max_batch = 0; }), LKV_ERR_INVALID_ARGUMENT, "max_batch 0"},
      {with([](auto& d) { d.max_batch = 257; }), LKV_ERR_INVALID_ARGUMENT, "max_batch 257"},
      {with([](auto& d) { d.residual = -1; }), LKV_ERR_INVALID_ARGUMENT, "residual -1"},
      {with([](auto& d) { d.num_groups = 0; }), LKV_ERR_INVALID_ARGUMENT, "num_groups 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fragment);
    EXPECT_LKV_STATUS(lkv_latent_cache_size(&c.desc, &s), c.code, c.fragment);
    // max_pages chooses num_pages itself; every other field is validated the same way.
    if (std::string(c.fragment).find("num_pages") == std::string::npos &&
        std::string(c.fragment).find("int32") == std::string::npos)
      EXPECT_LKV_STATUS(lkv_latent_cache_max_pages(&c.desc, int64_t{1} << 30, &s.arena_bytes),
                        c.code, c.fragment);
  }
}

TEST(CApiLatentCache, HugePoolsAreRejectedBeforeOverflow) {
  lkv_latent_cache_desc d = example_latent_desc();
  d.bits = 16;
  d.rank_k = d.rank_v = 1024;
  d.num_groups = 4096;
  d.page_size = 65536;
  d.num_pages = 2147483647;
  lkv_cache_sizes s{};
  EXPECT_LKV_STATUS(lkv_latent_cache_size(&d, &s), LKV_ERR_INVALID_ARGUMENT, "exceeds 2^62");
}

TEST(CApiLatentCache, NullPointersAreInvalidArguments) {
  const lkv_latent_cache_desc d = example_latent_desc();
  lkv_cache_sizes s{};
  int64_t n = 0;
  EXPECT_LKV_STATUS(lkv_latent_cache_size(nullptr, &s), LKV_ERR_INVALID_ARGUMENT, "desc is null");
  EXPECT_LKV_STATUS(lkv_latent_cache_size(&d, nullptr), LKV_ERR_INVALID_ARGUMENT, "sizes is null");
  EXPECT_LKV_STATUS(lkv_latent_cache_create(&d, &s, 1 << 20, nullptr), LKV_ERR_INVALID_ARGUMENT,
                    "cache is null");
  EXPECT_LKV_STATUS(lkv_latent_cache_max_pages(&d, 1 << 20, nullptr), LKV_ERR_INVALID_ARGUMENT,
                    "num_pages is null");
  EXPECT_LKV_STATUS(lkv_latent_cache_max_pages(nullptr, 1 << 20, &n), LKV_ERR_INVALID_ARGUMENT,
                    "desc is null");
  EXPECT_LKV_STATUS(lkv_latent_cache_views(nullptr, nullptr, nullptr), LKV_ERR_INVALID_ARGUMENT,
                    "cache is null");
  EXPECT_LKV_STATUS(lkv_latent_cache_check_pages(nullptr, 1, nullptr, nullptr, nullptr, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "cache is null");
  lkv_latent_cache_destroy(nullptr);
}

TEST(CApiLatentCache, MaxPagesIsTheLargestPoolThatFits) {
  lkv_latent_cache_desc d = example_latent_desc();
  int64_t n = 0;
  EXPECT_LKV_OK(lkv_latent_cache_max_pages(&d, 177664, &n));
  EXPECT_EQ(n, 10);
  EXPECT_LKV_OK(lkv_latent_cache_max_pages(&d, 177663, &n));
  EXPECT_EQ(n, 9);
  for (int64_t budget : {int64_t{1} << 20, int64_t{3} << 30}) {
    EXPECT_LKV_OK(lkv_latent_cache_max_pages(&d, budget, &n));
    lkv_cache_sizes s{};
    d.num_pages = n;
    ASSERT_EQ(lkv_latent_cache_size(&d, &s), LKV_OK);
    EXPECT_LE(s.arena_bytes, budget);
    d.num_pages = n + 1;
    ASSERT_EQ(lkv_latent_cache_size(&d, &s), LKV_OK);
    EXPECT_GT(s.arena_bytes, budget);
  }
  EXPECT_LKV_STATUS(lkv_latent_cache_max_pages(&d, 144384 + 3000, &n), LKV_ERR_OUT_OF_MEMORY,
                    "holds no page");
}

class CApiLatentPages : public ::testing::Test {
 protected:
  void SetUp() override {
    lkv_cache_sizes s{};
    ASSERT_EQ(lkv_latent_cache_size(&desc_, &s), LKV_OK);
    arena_ = std::make_unique<HostArena>(s.arena_bytes);
    ASSERT_EQ(lkv_latent_cache_create(&desc_, arena_->get(), s.arena_bytes, &cache_), LKV_OK);
  }
  void TearDown() override { lkv_latent_cache_destroy(cache_); }
  lkv_status check(const std::vector<int32_t>& indptr, const std::vector<int32_t>& indices,
                   const std::vector<int32_t>& lens, const int32_t* new_tokens = nullptr) {
    return lkv_latent_cache_check_pages(cache_, static_cast<int32_t>(lens.size()), indptr.data(),
                                        indices.data(), lens.data(), new_tokens);
  }
  lkv_latent_cache_desc desc_ = example_latent_desc();
  std::unique_ptr<HostArena> arena_;
  lkv_latent_cache* cache_ = nullptr;
};

// Window 32 + chunk 16, pages of 16: a sequence of T tokens keeps 16*floor((T-32)/16) in pages.
TEST_F(CApiLatentPages, ValidTablesPass) {
  // 100 tokens -> 64 in pages (4 pages); 40 -> 0; 47 -> 0 (still below 32 + 16).
  EXPECT_LKV_OK(check({0, 4, 4, 5}, {3, 0, 9, 1, 7}, {100, 40, 47}));
  const int32_t more[] = {11, 0, 0};  // 111 -> 64: still 4 pages
  EXPECT_LKV_OK(check({0, 4, 4, 5}, {3, 0, 9, 1, 7}, {100, 40, 47}, more));
}

TEST_F(CApiLatentPages, SequenceExceedingItsPagesIsReported) {
  EXPECT_LKV_STATUS(check({0, 3}, {3, 0, 9}, {100}), LKV_ERR_INVALID_ARGUMENT,
                    "sequence 0 of 100 tokens needs 4 pages of 16 tokens but its page table "
                    "lists 3");
  const int32_t more[] = {0, 16};  // 40 + 16 = 56 -> 16 tokens in pages: one page, none listed
  EXPECT_LKV_STATUS(check({0, 4, 4}, {3, 0, 9, 1}, {100, 40}, more), LKV_ERR_INVALID_ARGUMENT,
                    "sequence 1 of 56 tokens needs 1 pages");
}

TEST_F(CApiLatentPages, BadPageIdsAndIndptrAreReported) {
  EXPECT_LKV_STATUS(check({0, 1}, {10}, {0}), LKV_ERR_INVALID_ARGUMENT,
                    "page 10 outside the pool of 10 pages");
  EXPECT_LKV_STATUS(check({0, 1}, {-1}, {0}), LKV_ERR_INVALID_ARGUMENT, "page -1");
  EXPECT_LKV_STATUS(check({0, 2, 3}, {4, 5, 4}, {0, 0}), LKV_ERR_INVALID_ARGUMENT,
                    "page 4 is listed twice");
  EXPECT_LKV_STATUS(check({1, 2}, {4, 5}, {0}), LKV_ERR_INVALID_ARGUMENT, "indptr[0] is 1");
  EXPECT_LKV_STATUS(check({0, 2, 1}, {4, 5}, {0, 0}), LKV_ERR_INVALID_ARGUMENT,
                    "indptr decreases at sequence 1");
  EXPECT_LKV_STATUS(check({0, 0}, {}, {-3}), LKV_ERR_INVALID_ARGUMENT, "negative length");
  const std::vector<int32_t> lens(5, 0), indptr(6, 0);
  EXPECT_LKV_STATUS(check(indptr, {}, lens), LKV_ERR_INVALID_ARGUMENT,
                    "batch_size 5 exceeds the cache's max_batch 4");
}

// fp16 baseline: pages of 16 tokens x 4 heads x 64 dims x 2 B = 8192 B for K and for V.
TEST(CApiPagedCache, SizesCreationAndPageChecks) {
  const lkv_paged_cache_desc d = example_paged_desc();
  lkv_cache_sizes s{};
  EXPECT_LKV_OK(lkv_paged_cache_size(&d, &s));
  EXPECT_EQ(s.arena_bytes, 2 * 10 * 8192);
  EXPECT_EQ(s.bytes_per_page, 2 * 8192);
  EXPECT_EQ(s.fixed_bytes, 0);
  EXPECT_EQ(s.bytes_per_token, 4 * 4 * 64);
  HostArena arena(s.arena_bytes);
  lkv_paged_cache* cache = nullptr;
  EXPECT_LKV_STATUS(lkv_paged_cache_create(&d, arena.get(), s.arena_bytes - 1, &cache),
                    LKV_ERR_OUT_OF_MEMORY, "the cache needs 163840");
  ASSERT_EQ(lkv_paged_cache_create(&d, arena.get(), s.arena_bytes, &cache), LKV_OK);
  lkv_paged_view v{};
  EXPECT_LKV_OK(lkv_paged_cache_view(cache, &v));
  EXPECT_EQ(v.k, arena.get());
  EXPECT_EQ(static_cast<uint8_t*>(v.v), arena.get() + 10 * 8192);
  EXPECT_EQ(v.page_stride, 4 * 16 * 64);
  EXPECT_EQ(v.head_stride, 16 * 64);
  EXPECT_EQ(v.token_stride, 64);
  const std::vector<int32_t> indptr = {0, 2, 3}, indices = {0, 5, 9}, lens = {32, 1};
  EXPECT_LKV_OK(
      lkv_paged_cache_check_pages(cache, 2, indptr.data(), indices.data(), lens.data(), nullptr));
  const int32_t more[] = {1, 0};
  EXPECT_LKV_STATUS(
      lkv_paged_cache_check_pages(cache, 2, indptr.data(), indices.data(), lens.data(), more),
      LKV_ERR_INVALID_ARGUMENT, "sequence 0 of 33 tokens needs 3 pages");
  lkv_paged_cache_destroy(cache);
}

TEST(CApiPagedCache, BadDescriptionsGiveClearErrors) {
  lkv_cache_sizes s{};
  lkv_paged_cache_desc d = example_paged_desc();
  d.head_dim = 60;
  EXPECT_LKV_STATUS(lkv_paged_cache_size(&d, &s), LKV_ERR_INVALID_ARGUMENT, "head_dim 60");
  d = example_paged_desc();
  d.num_kv_heads = 0;
  EXPECT_LKV_STATUS(lkv_paged_cache_size(&d, &s), LKV_ERR_INVALID_ARGUMENT, "num_kv_heads 0");
  d = example_paged_desc();
  d.page_size = 0;
  EXPECT_LKV_STATUS(lkv_paged_cache_size(&d, &s), LKV_ERR_INVALID_ARGUMENT, "page_size 0");
  EXPECT_LKV_STATUS(lkv_paged_cache_size(nullptr, &s), LKV_ERR_INVALID_ARGUMENT, "desc is null");
}

}  // namespace
}  // namespace latentkv
