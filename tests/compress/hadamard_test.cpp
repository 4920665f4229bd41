#include "latentkv/compress/hadamard.h"

#include <gtest/gtest.h>

#include <string>

#include "compress/compress_test_util.h"
#include "latentkv/compress/group_decompose.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_gram;
using testing::random_matrix;
using testing::random_weight;

TEST(Paley, MatricesAreHadamard) {
  // Paley I: 4, 8, 12, 20, 24, 44, 48, 60, 68; Paley II: 28, 36, 76 (and 60 both ways).
  for (int k : {4, 8, 12, 20, 24, 28, 36, 44, 48, 60, 68, 76}) {
    const Eigen::MatrixXd h = paley_hadamard(k);
    ASSERT_EQ(h.rows(), k);
    EXPECT_EQ(h.cwiseAbs(), Eigen::MatrixXd::Ones(k, k)) << "order " << k;
    EXPECT_EQ(h * h.transpose(), k * Eigen::MatrixXd::Identity(k, k)) << "order " << k;
  }
  // 52: 51 = 3·17 and 25 = 5² (a prime power, not constructed); 16: 15 = 3·5 and 7 = 3 mod 4.
  EXPECT_EQ(code_of([] { paley_hadamard(52); }), StatusCode::kUnsupported);
  EXPECT_EQ(code_of([] { paley_hadamard(16); }), StatusCode::kUnsupported);
}

TEST(Fwht, MatchesTheSylvesterMatrix) {
  const int n = 16;
  Eigen::MatrixXd h(1, 1);
  h << 1;
  while (h.rows() < n) {
    Eigen::MatrixXd next(2 * h.rows(), 2 * h.rows());
    next << h, h, h, -h;
    h = next;
  }
  const Eigen::VectorXd x = random_matrix(n, 1, 1);
  Eigen::VectorXd y = x;
  fwht(y.data(), n);
  EXPECT_LT((y - h * x).norm(), 1e-12);
}

TEST(Rotation, BaseOrders) {
  EXPECT_EQ(hadamard_base_order(1), 1);
  EXPECT_EQ(hadamard_base_order(256), 1);
  EXPECT_EQ(hadamard_base_order(24), 12);
  EXPECT_EQ(hadamard_base_order(96), 12);
  EXPECT_EQ(hadamard_base_order(40), 20);
  EXPECT_EQ(hadamard_base_order(56), 28);
  EXPECT_EQ(hadamard_base_order(104), 104);  // 103 is a prime = 3 mod 4
  EXPECT_EQ(hadamard_base_order(184), 0);    // 8·23: needs order 92, not a Paley order
  EXPECT_EQ(hadamard_base_order(6), 0);
  EXPECT_EQ(hadamard_base_order(0), 0);
}

// R Rᵀ = I for every rank the allocator can produce up to 256 (granule 8), a few larger ones
// (random fallback 376, a large Paley base: 1000 = 500·2) and odd sizes.
TEST(Rotation, IsOrthonormalForEverySupportedSize) {
  std::vector<int> sizes = {1, 2, 3, 5, 7, 12, 100, 376, 512, 1000};
  for (int n = 8; n <= 256; n += 8) sizes.push_back(n);
  for (int n : sizes) {
    const Rotation rot = Rotation::make(n, RotationMode::kHadamardOrRandom, 7);
    ASSERT_EQ(rot.size(), n);
    EXPECT_EQ(rot.is_hadamard(), hadamard_base_order(n) > 0) << n;
    const Eigen::MatrixXd r = rot.matrix();
    EXPECT_LT((r * r.transpose() - Eigen::MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff(), 1e-13)
        << "size " << n;
  }
}

TEST(Rotation, EveryAllocatorRankUpTo4096IsSupported) {
  // Multiples of 8 up to group_size·head_dim = 32·128: Hadamard where constructible, the random
  // orthogonal fallback elsewhere. Built here up to 1024 (larger ones take long to build densely
  // and are covered by the base-order rule plus the sizes below).
  int hadamard = 0;
  for (int n = 8; n <= 4096; n += 8) {
    const int k = hadamard_base_order(n);
    if (k == 0) continue;
    ++hadamard;
    EXPECT_EQ(n % k, 0);
    if (n <= 1024) {
      EXPECT_TRUE(Rotation::make(n, RotationMode::kHadamard).is_hadamard()) << n;
    }
  }
  EXPECT_EQ(hadamard, 512 - 115);  // the other 115 sizes use the random orthogonal fallback
  // Large sizes apply in O(n log n) and preserve norms.
  for (int n : {4096, 3072, 2560, 3584}) {
    const Rotation rot = Rotation::make(n, RotationMode::kHadamard);
    Eigen::VectorXd x = random_matrix(n, 1, n);
    const Eigen::VectorXd x0 = x;
    rot.rotate(x.data());
    EXPECT_NEAR(x.norm(), x0.norm(), 1e-12 * x0.norm());
    rot.unrotate(x.data());
    EXPECT_LT((x - x0).norm(), 1e-12 * x0.norm());
  }
}

TEST(Rotation, RejectsSizesItCannotBuild) {
  try {
    Rotation::make(184, RotationMode::kHadamard);
    FAIL() << "expected kUnsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("184"), std::string::npos);
  }
  EXPECT_FALSE(Rotation::make(184, RotationMode::kHadamardOrRandom).is_hadamard());
  EXPECT_EQ(code_of([] { Rotation::make(0); }), StatusCode::kInvalidArgument);
}

TEST(Rotation, RandomModeIsSeededAndOrthonormal) {
  const Eigen::MatrixXd a = Rotation::make(24, RotationMode::kRandomOrthogonal, 1).matrix();
  const Eigen::MatrixXd b = Rotation::make(24, RotationMode::kRandomOrthogonal, 1).matrix();
  const Eigen::MatrixXd c = Rotation::make(24, RotationMode::kRandomOrthogonal, 2).matrix();
  EXPECT_EQ(a, b);
  EXPECT_GT((a - c).norm(), 1.0);
  EXPECT_LT((a * a.transpose() - Eigen::MatrixXd::Identity(24, 24)).norm(), 1e-13);
}

TEST(Rotation, FastApplyMatchesTheMatrix) {
  for (int n : {8, 12, 48, 56, 72, 184}) {
    const Rotation rot = Rotation::make(n, RotationMode::kHadamardOrRandom, 3);
    const Eigen::MatrixXd r = rot.matrix();
    const Eigen::RowVectorXd h = random_matrix(1, n, n);
    Eigen::RowVectorXd y = h;
    rot.rotate(y.data());
    EXPECT_LT((y - h * r).norm(), 1e-12 * h.norm()) << n;  // h ← h·R
    Eigen::RowVectorXf yf = h.cast<float>();
    rot.rotate(yf.data());
    EXPECT_LT((yf.cast<double>() - h * r).norm(), 1e-5 * h.norm()) << n;
    rot.unrotate(y.data());
    EXPECT_LT((y - h).norm(), 1e-12 * h.norm()) << n;
  }
}

TEST(FoldRotation, KeepsTheProductAndRotatesTheLatents) {
  const int d_model = 96, hd = 64, heads = 4;
  const MatrixRM w = random_weight(heads * hd, d_model, 4);
  const Whitening wh = whiten(random_gram(300, d_model, 5));
  // Ranks 24 (Hadamard 12·2), 40 (20·2), 64 (2^6), 56 (28·2); permuted heads.
  const GroupSpec spec{heads, hd, 1, {24, 40, 64, 56}, {2, 0, 3, 1}};
  ProjectionFactors f = decompose_projection(w, Eigen::VectorXf(), spec, &wh).factors;
  const ProjectionFactors before = f;
  fold_rotation(f, RotationMode::kHadamard);
  EXPECT_EQ(f.rotation, -1);  // ranks differ
  const Eigen::RowVectorXf x = random_matrix(1, d_model, 6).cast<float>();
  for (int g = 0; g < 4; ++g) {
    const int r = f.ranks[g];
    auto a_of = [&](const ProjectionFactors& p) {
      return Eigen::Map<const MatrixRM>(
                 p.a.data() + static_cast<size_t>(p.rank_offset(g)) * d_model, r, d_model)
          .cast<double>()
          .eval();
    };
    auto b_of = [&](const ProjectionFactors& p) {
      return Eigen::Map<const MatrixRM>(p.b.data() + p.b_offset(g), hd, r).cast<double>().eval();
    };
    const Eigen::MatrixXd ba0 = b_of(before) * a_of(before);
    const Eigen::MatrixXd ba1 = b_of(f) * a_of(f);
    EXPECT_LT((ba1 - ba0).norm(), 1e-6 * ba0.norm()) << "group " << g;  // (BR)(RᵀA) = BA
    // The new latent is the old latent rotated: x·(RᵀA)ᵀ = (x·Aᵀ)·R.
    Eigen::RowVectorXd h = x.cast<double>() * a_of(before).transpose();
    Rotation::make(r, RotationMode::kHadamard).rotate(h.data());
    const Eigen::RowVectorXd h1 = x.cast<double>() * a_of(f).transpose();
    EXPECT_LT((h1 - h).norm(), 1e-5 * h.norm()) << "group " << g;
  }
  EXPECT_EQ(code_of([&] { fold_rotation(f); }), StatusCode::kInvalidArgument) << "folded twice";

  ProjectionFactors uniform =
      decompose_projection(w, Eigen::VectorXf(), {heads, hd, 2, {48}, {}}, &wh).factors;
  fold_rotation(uniform);
  EXPECT_EQ(uniform.rotation, 48);
}

TEST(FoldRotation, RejectsAnUnrotatableRankWithoutTouchingTheFactors) {
  const int d_model = 64, hd = 32;
  const MatrixRM w = random_weight(2 * hd, d_model, 7);
  ProjectionFactors f =
      decompose_projection(w, Eigen::VectorXf(), {2, hd, 1, {16, 6}, {}}, nullptr).factors;
  const std::vector<float> a = f.a;
  EXPECT_EQ(code_of([&] { fold_rotation(f, RotationMode::kHadamard); }), StatusCode::kUnsupported);
  EXPECT_EQ(f.a, a);
  EXPECT_EQ(f.rotation, 0);
  fold_rotation(f, RotationMode::kHadamardOrRandom, 11);  // 6 gets the random orthogonal matrix
  EXPECT_EQ(f.rotation, -1);
}

}  // namespace
}  // namespace latentkv
