#include "latentkv/compress/group_decompose.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "compress/compress_test_util.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_gram;
using testing::random_weight;

// B_g·A_g of group g from the stored fp32 factors, in fp64.
Eigen::MatrixXd group_product(const ProjectionFactors& f, int g) {
  const int m = f.group_size * f.head_dim;
  const Eigen::Map<const MatrixRM> a(f.a.data() + static_cast<size_t>(f.rank_offset(g)) * f.d_model,
                                     f.ranks[g], f.d_model);
  const Eigen::Map<const MatrixRM> b(f.b.data() + f.b_offset(g), m, f.ranks[g]);
  return b.cast<double>() * a.cast<double>();
}

struct Shape {
  int num_kv_heads, head_dim, group_size, rank_step;
};

// Awkward shapes: head_dim 64 and 128, group sizes 1/2/3/4/8, ranks that are not multiples of 32
// and differ per group, consecutive and permuted head orders.
class GroupDecomposeShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(GroupDecomposeShapes, EachGroupLeavesExactlyItsDiscardedSpectrum) {
  const Shape s = GetParam();
  const int d_model = 100;
  const MatrixRM w =
      random_weight(int64_t{s.num_kv_heads} * s.head_dim, d_model, 100 + s.group_size);
  const Whitening wh = whiten(random_gram(300, d_model, 7));
  GroupSpec spec{s.num_kv_heads, s.head_dim, s.group_size, {}, {}};
  for (int g = 0; g < spec.num_groups(); ++g) spec.ranks.push_back(5 + g * s.rank_step);
  spec.group_heads = consecutive_group_heads(s.num_kv_heads);
  std::reverse(spec.group_heads.begin(), spec.group_heads.end());

  const Decomposition dec = decompose_projection(w, Eigen::VectorXf(), spec, &wh);
  const ProjectionFactors& f = dec.factors;
  f.validate();
  EXPECT_EQ(f.ranks, spec.ranks);
  EXPECT_EQ(f.group_heads, spec.group_heads);
  EXPECT_EQ(f.rotation, 0);
  ASSERT_EQ(static_cast<int>(dec.singular_values.size()), spec.num_groups());
  double discarded = 0, total = 0;
  for (int g = 0; g < spec.num_groups(); ++g) {
    const Eigen::MatrixXd wg = group_rows(w, spec, g);
    // group_rows stacks the heads named by group_heads in slot order.
    for (int slot = 0; slot < s.group_size; ++slot) {
      const int head = spec.group_heads[g * s.group_size + slot];
      EXPECT_EQ(wg.middleRows(slot * s.head_dim, s.head_dim),
                w.middleRows(int64_t{head} * s.head_dim, s.head_dim).cast<double>());
    }
    const std::vector<double> err = truncation_errors(dec.singular_values[g]);
    const double got = ((wg - group_product(f, g)) * wh.l).norm();
    // fp32 storage of A and B limits agreement to ~1e-6 of the group's energy.
    EXPECT_NEAR(got, err[f.ranks[g]], 2e-6 * err[0]) << "group " << g;
    discarded += err[f.ranks[g]] * err[f.ranks[g]];
    total += err[0] * err[0];
  }
  EXPECT_NEAR(dec.discarded_energy, discarded, 1e-12 * total);
  EXPECT_NEAR(dec.total_energy, total, 1e-12 * total);
  EXPECT_NEAR(dec.relative_error(), std::sqrt(discarded / total), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GroupDecomposeShapes,
                         ::testing::Values(Shape{1, 64, 1, 0}, Shape{3, 64, 1, 11},
                                           Shape{3, 64, 3, 0}, Shape{4, 64, 2, 9},
                                           Shape{4, 128, 4, 0}, Shape{6, 64, 3, 13},
                                           Shape{8, 64, 8, 0}, Shape{8, 128, 2, 21},
                                           Shape{8, 64, 4, 7}));

TEST(GroupDecompose, FullRankGroupsReproduceTheirRows) {
  const int d_model = 80, hd = 16, heads = 4;
  const MatrixRM w = random_weight(heads * hd, d_model, 1);
  const Whitening wh = whiten(random_gram(300, d_model, 2));
  const GroupSpec spec{heads, hd, 2, {32}, {3, 0, 2, 1}};
  const Decomposition dec = decompose_projection(w, Eigen::VectorXf(), spec, &wh);
  for (int g = 0; g < 2; ++g)
    EXPECT_LT((group_rows(w, spec, g) - group_product(dec.factors, g)).norm(), 1e-5 * w.norm());
  EXPECT_LT(dec.relative_error(), 1e-7);
}

TEST(GroupDecompose, PlainAndFloat32Paths) {
  const int d_model = 64, hd = 16, heads = 2;
  const MatrixRM w = random_weight(heads * hd, d_model, 3);
  const GroupSpec spec{heads, hd, 1, {6}, {}};
  const Decomposition plain = decompose_projection(w, Eigen::VectorXf(), spec, nullptr);
  for (int g = 0; g < 2; ++g) {
    const std::vector<double> err = truncation_errors(plain.singular_values[g]);
    EXPECT_NEAR((group_rows(w, spec, g) - group_product(plain.factors, g)).norm(), err[6],
                2e-6 * err[0]);
  }
  const Whitening wh = whiten(random_gram(200, d_model, 4));
  DecomposeOptions f32;
  f32.precision = SvdPrecision::kFloat32;
  const Decomposition a = decompose_projection(w, Eigen::VectorXf(), spec, &wh);
  const Decomposition b = decompose_projection(w, Eigen::VectorXf(), spec, &wh, f32);
  EXPECT_NEAR(a.relative_error(), b.relative_error(), 1e-4 * a.relative_error());
}

TEST(GroupDecompose, CopiesTheBias) {
  const MatrixRM w = random_weight(32, 40, 5);
  const Eigen::VectorXf bias = Eigen::VectorXf::LinSpaced(32, -1, 1);
  const Decomposition dec = decompose_projection(w, bias, {2, 16, 2, {8}, {}}, nullptr);
  ASSERT_EQ(dec.factors.bias.size(), 32u);
  EXPECT_EQ(dec.factors.bias[31], 1.0f);
}

TEST(GroupDecompose, RejectsBadSpecsAndShapes) {
  const int d_model = 48, hd = 16;
  const MatrixRM w = random_weight(3 * hd, d_model, 6);
  const Whitening wh = whiten(random_gram(200, d_model, 7));
  auto run = [&](GroupSpec spec) {
    return code_of([&] { decompose_projection(w, Eigen::VectorXf(), spec, &wh); });
  };
  EXPECT_EQ(run({3, hd, 3, {8}, {}}), StatusCode::kOk);
  EXPECT_EQ(run({3, hd, 2, {8}, {}}), StatusCode::kInvalidArgument) << "group_size 2 of 3 heads";
  EXPECT_EQ(run({3, hd, 0, {8}, {}}), StatusCode::kInvalidArgument) << "group_size 0";
  EXPECT_EQ(run({3, hd, 1, {0}, {}}), StatusCode::kInvalidArgument) << "rank 0";
  EXPECT_EQ(run({3, hd, 1, {17}, {}}), StatusCode::kInvalidArgument) << "rank > group width";
  EXPECT_EQ(run({3, hd, 3, {49}, {}}), StatusCode::kInvalidArgument) << "rank > d_model";
  EXPECT_EQ(run({3, hd, 1, {4, 4}, {}}), StatusCode::kInvalidArgument) << "2 ranks, 3 groups";
  EXPECT_EQ(run({3, hd, 1, {4}, {0, 1, 1}}), StatusCode::kInvalidArgument) << "not a permutation";
  EXPECT_EQ(run({3, hd, 1, {4}, {0, 1}}), StatusCode::kInvalidArgument) << "short group_heads";
  EXPECT_EQ(run({4, hd, 1, {4}, {}}), StatusCode::kInvalidArgument) << "W has 3 heads";
  EXPECT_EQ(code_of([&] {
              decompose_projection(w, Eigen::VectorXf::Zero(5), {3, hd, 1, {4}, {}}, &wh);
            }),
            StatusCode::kInvalidArgument)
      << "bias size";
  const Whitening small = whiten(random_gram(200, d_model - 1, 8));
  EXPECT_EQ(code_of([&] {
              decompose_projection(w, Eigen::VectorXf(), {3, hd, 1, {4}, {}}, &small);
            }),
            StatusCode::kInvalidArgument)
      << "whitening dim";
  MatrixRM nan = w;
  nan(0, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(code_of([&] {
              decompose_projection(nan, Eigen::VectorXf(), {3, hd, 1, {4}, {}}, &wh);
            }),
            StatusCode::kInvalidArgument)
      << "NaN weight";
}

}  // namespace
}  // namespace latentkv
