#include "latentkv/compress/rank_allocation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "support/expect_error.h"

namespace latentkv {
namespace {

// SmolLM2-135M: 30 layers, 3 KV heads of width 64.
KvLayout smollm2(int group_size) { return KvLayout{30, 3, 64, group_size}; }

AllocationSpec make_spec(KvLayout layout, int granule, KvBudget budget, int bits = 16,
                         int quant_group = 0) {
  AllocationSpec s;
  s.layout = layout;
  s.granule = granule;
  s.budget = budget;
  s.quant.bits = bits;
  s.quant.quant_group = quant_group;
  return s;
}

// Invariants every allocation must satisfy.
void expect_valid(const RankAllocation& a, const AllocationSpec& spec) {
  const KvLayout& l = spec.layout;
  ASSERT_EQ(a.ranks.size(), static_cast<size_t>(l.num_units()) * l.num_groups());
  for (int r : a.ranks) {
    EXPECT_GE(r, spec.granule);
    EXPECT_LE(r, l.group_capacity());
    EXPECT_EQ(r % spec.granule, 0) << r;
  }
  EXPECT_EQ(a.bytes_per_token, kv_bytes_per_token(a.ranks, spec.quant));
  EXPECT_EQ(a.budget_bytes_per_token, spec.budget.resolve(l));
  EXPECT_LE(a.bytes_per_token, a.budget_bytes_per_token);
  EXPECT_EQ(a.fp16_bytes_per_token, l.fp16_bytes_per_token());
}

std::vector<double> smollm2_like_scores(unsigned seed) {
  // Fisher scores spread over two orders of magnitude, values larger than keys on average, as
  // measured on real models.
  std::mt19937 rng(seed);
  std::lognormal_distribution<double> dist(0.0, 1.0);
  std::vector<double> s(60);
  for (size_t u = 0; u < s.size(); ++u) s[u] = dist(rng) * (u % 2 ? 3.0 : 1.0) * 1e-6;
  return s;
}

TEST(KvBudget, ResolvesFractionsAndBytes) {
  const KvLayout l = smollm2(1);
  EXPECT_EQ(l.fp16_bytes_per_token(), 23040);  // 2 B × (K + V) × 3·64 × 30 layers
  EXPECT_EQ(KvBudget::fraction(0.5).resolve(l), 11520);
  EXPECT_EQ(KvBudget::fraction(0.3).resolve(l), 6912);  // 0.3 is inexact in binary
  EXPECT_EQ(KvBudget::fraction(1.0).resolve(l), 23040);
  EXPECT_EQ(KvBudget::bytes_per_token(5000.7).resolve(l), 5000);
}

TEST(KvBudget, RejectsBadValues) {
  const KvLayout l = smollm2(1);
  EXPECT_LKV_ERROR(KvBudget::fraction(0).resolve(l), StatusCode::kInvalidArgument, "(0, 1]");
  EXPECT_LKV_ERROR(KvBudget::fraction(-0.2).resolve(l), StatusCode::kInvalidArgument, "(0, 1]");
  EXPECT_LKV_ERROR(KvBudget::fraction(1.01).resolve(l), StatusCode::kInvalidArgument, "(0, 1]");
  EXPECT_LKV_ERROR(KvBudget::fraction(std::nan("")).resolve(l), StatusCode::kInvalidArgument,
                   "finite");
  EXPECT_LKV_ERROR(KvBudget::bytes_per_token(0).resolve(l), StatusCode::kInvalidArgument,
                   "must be > 0");
  EXPECT_LKV_ERROR(KvBudget::bytes_per_token(std::numeric_limits<double>::infinity()).resolve(l),
                   StatusCode::kInvalidArgument, "finite");
}

TEST(AllocationSpec, RejectsBadSpecs) {
  const KvBudget half = KvBudget::fraction(0.5);
  EXPECT_LKV_ERROR(make_spec(smollm2(2), 16, half).validate(), StatusCode::kInvalidArgument,
                   "group_size 2 does not divide num_kv_heads 3");
  EXPECT_LKV_ERROR(make_spec(smollm2(1), 24, half).validate(), StatusCode::kInvalidArgument,
                   "rank granule 24 does not divide the group capacity");
  EXPECT_LKV_ERROR(make_spec(smollm2(1), 0, half).validate(), StatusCode::kInvalidArgument,
                   "rank granule 0");
  EXPECT_LKV_ERROR(make_spec(smollm2(1), 16, half, 5).validate(), StatusCode::kInvalidArgument,
                   "latent bits 5");
  EXPECT_LKV_ERROR(make_spec(smollm2(1), 16, half, 4, 32).validate(), StatusCode::kInvalidArgument,
                   "quant_group 32 does not divide the rank granule");
  EXPECT_LKV_ERROR(make_spec(KvLayout{0, 3, 64, 1}, 16, half).validate(),
                   StatusCode::kInvalidArgument, "must be > 0");
  EXPECT_LKV_ERROR(make_spec(smollm2(1), 16, KvBudget::fraction(2)).validate(),
                   StatusCode::kInvalidArgument, "(0, 1]");
}

TEST(Allocation, BudgetBelowMinimumIsRejected) {
  // Minimum: 60 units × 3 groups × 16 channels × 2 B = 5760 B/token = 25 % of fp16.
  const AllocationSpec spec = make_spec(smollm2(1), 16, KvBudget::fraction(0.2));
  EXPECT_LKV_ERROR(allocate_uniform(spec), StatusCode::kInvalidArgument,
                   "4608 bytes/token is below the minimum of 5760");
  EXPECT_LKV_ERROR(allocate_palu(spec, smollm2_like_scores(1)), StatusCode::kInvalidArgument,
                   "below the minimum");
  EXPECT_LKV_ERROR(allocate_greedy_error(spec, {}), StatusCode::kInvalidArgument,
                   "below the minimum");
  // Exactly the minimum is fine.
  const RankAllocation a =
      allocate_uniform(make_spec(smollm2(1), 16, KvBudget::bytes_per_token(5760)));
  EXPECT_EQ(a.bytes_per_token, 5760);
}

TEST(UniformAllocation, PicksTheLargestFittingRank) {
  for (int bits : {16, 4, 3, 2}) {
    for (double f : {0.25, 0.3, 0.5, 0.7, 1.0}) {
      const AllocationSpec spec = make_spec(smollm2(1), 16, KvBudget::fraction(f), bits);
      const RankAllocation a = allocate_uniform(spec);
      SCOPED_TRACE(testing::Message() << bits << " bits, fraction " << f);
      expect_valid(a, spec);
      const int r = a.ranks.front();
      for (int x : a.ranks) EXPECT_EQ(x, r);
      if (r < 64) {  // one more granule everywhere would not fit
        EXPECT_GT(180 * latent_bytes_per_token(r + 16, spec.quant), a.budget_bytes_per_token);
      }
    }
  }
  // fp16 at 50 %: rank 32 of 64 is exactly half the bytes.
  const RankAllocation half = allocate_uniform(make_spec(smollm2(1), 16, KvBudget::fraction(0.5)));
  EXPECT_EQ(half.ranks.front(), 32);
  EXPECT_EQ(half.bytes_per_token, 11520);
  EXPECT_DOUBLE_EQ(half.kept_fraction(), 0.5);
}

// Palu with one group per unit and granule 1 is its proportional split with no rounding.
AllocationSpec small_palu_spec(double fraction) {
  // 2 layers (4 units), 2 KV heads × 8 = capacity 16 per unit, fp16 reference 128 B/token.
  return make_spec(KvLayout{2, 2, 8, 2}, 1, KvBudget::fraction(fraction));
}

TEST(PaluAllocation, ProportionalSplitWithoutRemainder) {
  const RankAllocation a = allocate_palu(small_palu_spec(0.5), {1, 3, 2, 2});
  EXPECT_EQ(a.ranks, (std::vector<int>{4, 12, 8, 8}));
  EXPECT_EQ(a.rank_target, 32);
  EXPECT_EQ(a.bytes_per_token, 64);
  EXPECT_EQ(a.method, "palu");
}

TEST(PaluAllocation, CapsAtCapacityAndHandsOutTheRemainderInPasses) {
  // Shares 32·F/7 = 4.57, 4.57, 4.57, 18.3 → floors 4, 4, 4, 16 (capped); 4 ranks left go one at
  // a time to the non-full units in ascending order of fractional share: 0, 1, 2, then 0 again.
  const RankAllocation a = allocate_palu(small_palu_spec(0.5), {1, 1, 1, 4});
  EXPECT_EQ(a.ranks, (std::vector<int>{6, 5, 5, 16}));
  EXPECT_EQ(a.total_rank(), 32);
}

TEST(PaluAllocation, RemainderGoesToTheSmallestFractionFirstAsInPalusCode) {
  // Shares 4.57, 9.14, 9.14, 9.14 → floors 4, 9, 9, 9; the one rank left goes to the smallest
  // fractional part (0.14, unit 1), not the largest (0.57, unit 0): Palu sorts ascending.
  const RankAllocation a = allocate_palu(small_palu_spec(0.5), {1, 2, 2, 2});
  EXPECT_EQ(a.ranks, (std::vector<int>{4, 10, 9, 9}));
}

TEST(PaluAllocation, SplitsOverGroupsAndRoundsLikePython) {
  // 1 layer, 4 KV heads × 8 in groups of 2: capacity 32 per unit, 16 per group; granule 4.
  const KvLayout l{1, 4, 8, 2};
  // T = 40: 20 per unit, 10 per group, round(2.5) = 2 (ties to even) → 8.
  RankAllocation a = allocate_palu(make_spec(l, 4, KvBudget::fraction(40.0 / 64)), {1, 1});
  EXPECT_EQ(a.ranks, (std::vector<int>{8, 8, 8, 8}));
  EXPECT_EQ(a.rank_target, 40);
  // T = 24: 6 per group rounds up to 8 (round(1.5) = 2), 64 B > the 48 B budget, so T drops to
  // 23: units get 12 and 11 (the tie on fractional share goes to unit 0), groups 6 → 8 and
  // 5 → 4 (round(1.25) = 1): 48 B.
  a = allocate_palu(make_spec(l, 4, KvBudget::fraction(24.0 / 64)), {1, 1});
  EXPECT_EQ(a.ranks, (std::vector<int>{8, 8, 4, 4}));
  EXPECT_EQ(a.rank_target, 23);
  EXPECT_EQ(a.bytes_per_token, 48);
}

TEST(PaluAllocation, RespectsEveryBudgetOnTheRealShape) {
  for (int group_size : {1, 3}) {
    for (int granule : {8, 16, 32}) {
      for (int bits : {16, 4, 3, 2}) {
        for (double f : {0.3, 0.5, 0.7, 1.0}) {
          const AllocationSpec spec =
              make_spec(smollm2(group_size), granule, KvBudget::fraction(f), bits);
          SCOPED_TRACE(testing::Message() << "group_size " << group_size << " granule " << granule
                                          << " bits " << bits << " fraction " << f);
          RankAllocation a;
          try {
            a = allocate_palu(spec, smollm2_like_scores(7));
          } catch (const Error& e) {
            // Only a budget below the minimum may be refused.
            EXPECT_NE(std::string(e.what()).find("below the minimum"), std::string::npos);
            continue;
          }
          expect_valid(a, spec);
          // How close it gets: rounding moves each group by at most half a granule, and the
          // even split loses less than one rank per group, so the result stays within one
          // granule per group of the budget.
          // (A budget above the cost of full rank cannot be used up.)
          const int64_t groups = 60 * spec.layout.num_groups();
          const int64_t full =
              groups * latent_bytes_per_token(spec.layout.group_capacity(), spec.quant);
          EXPECT_GE(a.bytes_per_token, std::min(full, a.budget_bytes_per_token) -
                                           groups * latent_bytes_per_token(granule, spec.quant));
        }
      }
    }
  }
}

TEST(PaluAllocation, RejectsBadScores) {
  const AllocationSpec spec = make_spec(smollm2(1), 16, KvBudget::fraction(0.5));
  std::vector<double> s = smollm2_like_scores(1);
  EXPECT_LKV_ERROR(allocate_palu(spec, std::vector<double>(59, 1.0)), StatusCode::kInvalidArgument,
                   "needs 60 unit scores");
  s[7] = -1e-6;
  EXPECT_LKV_ERROR(allocate_palu(spec, s), StatusCode::kInvalidArgument, "unit 7 (layer 3 v_proj)");
  s[7] = std::nan("");
  EXPECT_LKV_ERROR(allocate_palu(spec, s), StatusCode::kInvalidArgument, "finite");
  EXPECT_LKV_ERROR(allocate_palu(spec, std::vector<double>(60, 0.0)), StatusCode::kInvalidArgument,
                   "all zero");
}

// Random profiles: decreasing drops (singular values are sorted), random weights.
std::vector<GroupErrorProfile> random_profiles(size_t n, int steps, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<GroupErrorProfile> groups(n);
  for (GroupErrorProfile& g : groups) {
    g.weight = 0.1 + u(rng);
    double d = 1.0 + 10 * u(rng);
    for (int j = 0; j < steps; ++j) {
      g.drops.push_back(d);
      d *= u(rng);
    }
  }
  return groups;
}

double weighted_error(const std::vector<int>& ranks, const std::vector<GroupErrorProfile>& groups,
                      int granule) {
  double e = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    for (size_t j = ranks[i] / granule; j < groups[i].drops.size(); ++j) {
      e += groups[i].weight * groups[i].drops[j];
    }
  }
  return e;
}

TEST(GreedyErrorAllocation, IsOptimalForFp16LatentsAgainstBruteForce) {
  // 2 layers × K/V × 1 KV head of 8, granule 2: 4 groups with ranks in {2, 4, 6, 8}.
  const KvLayout l{2, 1, 8, 1};
  for (unsigned seed = 0; seed < 20; ++seed) {
    const std::vector<GroupErrorProfile> groups = random_profiles(4, 4, seed);
    for (int64_t budget_bytes : {16, 22, 32, 40, 58, 64}) {
      const AllocationSpec spec = make_spec(l, 2, KvBudget::bytes_per_token(budget_bytes));
      const RankAllocation a = allocate_greedy_error(spec, groups);
      expect_valid(a, spec);
      double best = std::numeric_limits<double>::infinity();
      for (int code = 0; code < 256; ++code) {
        std::vector<int> r(4);
        for (int i = 0; i < 4; ++i) r[i] = 2 * (1 + ((code >> (2 * i)) & 3));
        if (kv_bytes_per_token(r, spec.quant) <= budget_bytes) {
          best = std::min(best, weighted_error(r, groups, 2));
        }
      }
      EXPECT_NEAR(weighted_error(a.ranks, groups, 2), best, 1e-12 * best)
          << "seed " << seed << " budget " << budget_bytes;
    }
  }
}

TEST(GreedyErrorAllocation, FillsTheBudgetWithQuantizedLatents) {
  for (int bits : {16, 4, 3, 2}) {
    for (int quant_group : {0, 8}) {
      for (double f : {0.3, 0.5}) {
        const AllocationSpec spec =
            make_spec(smollm2(1), 16, KvBudget::fraction(f), bits, quant_group);
        SCOPED_TRACE(testing::Message()
                     << bits << " bits, quant_group " << quant_group << ", fraction " << f);
        const std::vector<GroupErrorProfile> groups = random_profiles(180, 4, 3);
        const RankAllocation a = allocate_greedy_error(spec, groups);
        expect_valid(a, spec);
        // Maximal: no group can take one more granule within the budget.
        for (size_t i = 0; i < a.ranks.size(); ++i) {
          if (a.ranks[i] == 64) continue;
          const int64_t add = latent_bytes_per_token(a.ranks[i] + 16, spec.quant) -
                              latent_bytes_per_token(a.ranks[i], spec.quant);
          EXPECT_GT(a.bytes_per_token + add, a.budget_bytes_per_token) << "group " << i;
        }
      }
    }
  }
}

TEST(GreedyErrorAllocation, FavoursHeavilyWeightedGroupsAndSkipsUselessRank) {
  // 1 layer, 1 KV head of 8, granule 2: K and V groups with identical drops, V weighted 100×.
  const KvLayout l{1, 1, 8, 1};
  std::vector<GroupErrorProfile> groups(2);
  groups[0] = {1.0, {8, 4, 2, 1}};
  groups[1] = {100.0, {8, 4, 2, 1}};
  RankAllocation a = allocate_greedy_error(make_spec(l, 2, KvBudget::bytes_per_token(20)), groups);
  EXPECT_EQ(a.ranks, (std::vector<int>{2, 8}));
  // A group whose remaining drops are zero gets nothing more even with budget to spare.
  groups[0] = {1.0, {8, 0, 0, 0}};
  a = allocate_greedy_error(make_spec(l, 2, KvBudget::fraction(1.0)), groups);
  EXPECT_EQ(a.ranks, (std::vector<int>{2, 8}));
  EXPECT_EQ(a.bytes_per_token, 20);
}

TEST(GreedyErrorAllocation, RejectsBadProfiles) {
  const KvLayout l{1, 1, 8, 1};
  const AllocationSpec spec = make_spec(l, 2, KvBudget::fraction(0.5));
  std::vector<GroupErrorProfile> groups(2, GroupErrorProfile{1.0, {4, 3, 2, 1}});
  EXPECT_LKV_ERROR(allocate_greedy_error(spec, {groups[0]}), StatusCode::kInvalidArgument,
                   "needs 2 group profiles");
  groups[1].drops.pop_back();
  EXPECT_LKV_ERROR(allocate_greedy_error(spec, groups), StatusCode::kInvalidArgument,
                   "group 1 has 3 error drops, expected group_capacity/granule = 4");
  groups[1] = {-1.0, {4, 3, 2, 1}};
  EXPECT_LKV_ERROR(allocate_greedy_error(spec, groups), StatusCode::kInvalidArgument,
                   "group 1 weight -1");
  groups[1] = {1.0, {4, 3, std::numeric_limits<double>::infinity(), 1}};
  EXPECT_LKV_ERROR(allocate_greedy_error(spec, groups), StatusCode::kInvalidArgument,
                   "error drop inf");
}

TEST(GranuleErrorDrops, SumsSquaredSingularValuesPerGranule) {
  EXPECT_EQ(granule_error_drops({3, 2, 1}, 4, 2), (std::vector<double>{13, 1}));
  EXPECT_EQ(granule_error_drops({}, 4, 2), (std::vector<double>{0, 0}));
  // The drops add up to the whole truncation error at rank 0: Σσ².
  const std::vector<double> d = granule_error_drops({5, 4, 3, 2, 1, 0.5}, 8, 4);
  EXPECT_DOUBLE_EQ(d[0] + d[1], 25 + 16 + 9 + 4 + 1 + 0.25);
  EXPECT_LKV_ERROR(granule_error_drops({1}, 8, 3), StatusCode::kInvalidArgument,
                   "rank granule 3 does not divide the group capacity 8");
  EXPECT_LKV_ERROR(granule_error_drops({1, 1, 1}, 2, 1), StatusCode::kInvalidArgument,
                   "3 singular values for a group of capacity 2");
  EXPECT_LKV_ERROR(granule_error_drops({1, -1}, 2, 1), StatusCode::kInvalidArgument,
                   "singular value 1 = -1");
}

TEST(RankAllocation, UnitRanksFollowUnitOrder) {
  const AllocationSpec spec = make_spec(KvLayout{2, 2, 8, 1}, 4, KvBudget::fraction(0.5));
  const RankAllocation a = allocate_palu(spec, {1, 2, 3, 4});
  EXPECT_EQ(a.unit_ranks(1, true), (std::vector<int>{a.ranks[6], a.ranks[7]}));
  EXPECT_EQ(a.unit_ranks(0, false), (std::vector<int>{a.ranks[0], a.ranks[1]}));
  EXPECT_LKV_ERROR(a.unit_ranks(2, false), StatusCode::kInvalidArgument, "layer 2 outside");
}

}  // namespace
}  // namespace latentkv
