// The pipeline's use of the rank allocators: budget kinds, error weights, missing inputs.
#include "latentkv/pipeline/allocate.h"

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace latentkv {
namespace {

const KvLayout kLayout{2, 2, 16, 1};  // 2 layers, 2 KV heads of 16, per-head groups

FisherScores scores() {
  FisherScores f;
  f.num_kv_heads = 2;
  f.key = {1.0, 2.0};
  f.value = {4.0, 8.0};
  f.key_heads = {1.0, 1.0, 3.0, 1.0};
  f.value_heads = {2.0, 6.0, 8.0, 8.0};
  return f;
}

CalibStats stats_with_scale(double s0, double s1) {
  CalibStats st = CalibStats::empty(2, 4);
  st.layers[0] = LayerGram::from_gram(Eigen::MatrixXd::Identity(4, 4) * s0 * 10, 10);
  st.layers[1] = LayerGram::from_gram(Eigen::MatrixXd::Identity(4, 4) * s1 * 10, 10);
  return st;
}

AllocationInputs inputs(const FisherScores* f, const CalibStats* st) {
  AllocationInputs in;
  in.fisher = f;
  in.stats = st;
  in.group_heads.assign(4, {0, 1});
  for (int i = 0; i < 8; ++i) {  // σ descending, larger for later groups
    std::vector<double> s(16);
    for (int j = 0; j < 16; ++j) s[j] = (i + 1) * std::pow(0.8, j);
    in.spectra.push_back(s);
  }
  return in;
}

CompressOptions options(BudgetSpec budget, int bits) {
  CompressOptions o = preset_options("latentkv");
  o.granule = 4;
  o.budget = budget;
  o.quant.bits = bits;
  return o;
}

TEST(Allocate, BudgetKindsMapToSpecs) {
  const AllocationSpec bytes =
      allocation_spec(options({BudgetSpec::Kind::kBytesFraction, 0.5}, 4), kLayout);
  EXPECT_EQ(bytes.quant.bits, 4);
  EXPECT_EQ(bytes.budget.resolve(kLayout), 128);  // 0.5 · 4·2·2·16
  const AllocationSpec abs =
      allocation_spec(options({BudgetSpec::Kind::kBytesPerToken, 100}, 4), kLayout);
  EXPECT_EQ(abs.budget.resolve(kLayout), 100);
  const AllocationSpec rank =
      allocation_spec(options({BudgetSpec::Kind::kRankFraction, 0.5}, 2), kLayout);
  EXPECT_EQ(rank.quant.bits, 16);  // ranks decided as if fp16
  EXPECT_LKV_ERROR(allocation_spec(options({BudgetSpec::Kind::kBytesFraction, 2}, 4), kLayout),
                   StatusCode::kInvalidArgument, "budget fraction");
}

TEST(Allocate, ErrorWeights) {
  const FisherScores f = scores();
  const CalibStats st = stats_with_scale(2.0, 4.0);  // mean squared input 2 and 4
  CompressOptions o = options({BudgetSpec::Kind::kBytesFraction, 0.5}, 16);
  o.error_weight = ErrorWeight::kFisher;
  // Per-head scores exist and groups are single heads: each group gets its head's score.
  EXPECT_EQ(group_error_weights(o, kLayout, inputs(&f, &st)),
            (std::vector<double>{1, 1, 2, 6, 3, 1, 8, 8}));
  o.error_weight = ErrorWeight::kFisherPerInput;
  EXPECT_EQ(group_error_weights(o, kLayout, inputs(&f, &st)),
            (std::vector<double>{0.5, 0.5, 1, 3, 0.75, 0.25, 2, 2}));
  o.error_weight = ErrorWeight::kNone;
  EXPECT_EQ(group_error_weights(o, kLayout, inputs(nullptr, nullptr)), std::vector<double>(8, 1));
  // Joint groups use the projection score.
  const KvLayout joint{2, 2, 16, 2};
  o.error_weight = ErrorWeight::kFisher;
  AllocationInputs in = inputs(&f, &st);
  in.spectra.resize(4);
  EXPECT_EQ(group_error_weights(o, joint, in), (std::vector<double>{1, 4, 2, 8}));
}

TEST(Allocate, EveryAllocatorHonoursTheBudget) {
  const FisherScores f = scores();
  const CalibStats st = stats_with_scale(1, 1);
  for (AllocatorKind a :
       {AllocatorKind::kUniform, AllocatorKind::kPalu, AllocatorKind::kGreedyError}) {
    CompressOptions o = options({BudgetSpec::Kind::kBytesFraction, 0.4}, 4);
    o.allocator = a;
    const RankAllocation r = allocate_ranks(o, kLayout, inputs(&f, &st));
    EXPECT_EQ(r.method, allocator_name(a));
    EXPECT_LE(r.bytes_per_token, static_cast<int64_t>(0.4 * 256));
  }
}

TEST(Allocate, MissingInputs) {
  CompressOptions o = options({BudgetSpec::Kind::kBytesFraction, 0.5}, 16);
  o.allocator = AllocatorKind::kPalu;
  EXPECT_LKV_ERROR(allocate_ranks(o, kLayout, inputs(nullptr, nullptr)),
                   StatusCode::kInvalidArgument, "palu allocator needs Fisher scores");
  o.allocator = AllocatorKind::kGreedyError;
  o.error_weight = ErrorWeight::kFisherPerInput;
  const FisherScores f = scores();
  EXPECT_LKV_ERROR(allocate_ranks(o, kLayout, inputs(&f, nullptr)), StatusCode::kInvalidArgument,
                   "needs the calibration statistics");
  AllocationInputs short_spectra = inputs(&f, nullptr);
  short_spectra.spectra.pop_back();
  o.error_weight = ErrorWeight::kFisher;
  EXPECT_LKV_ERROR(allocate_ranks(o, kLayout, short_spectra), StatusCode::kInvalidArgument,
                   "spectra for 7 groups, expected 8");
}

}  // namespace
}  // namespace latentkv
