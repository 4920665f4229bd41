#include "latentkv/compress/whitened_svd.h"

#include <gtest/gtest.h>

#include <limits>

#include "compress/compress_test_util.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_gram;
using testing::random_inputs;
using testing::random_matrix;

TEST(Whiten, FactorsAWellConditionedGramWithoutDamping) {
  const Eigen::MatrixXd g = random_gram(200, 30, 1);
  const Whitening w = whiten(g);
  EXPECT_FALSE(w.damped());
  EXPECT_EQ(w.damping, 0.0);
  EXPECT_LT((w.l * w.l.transpose() - g).norm() / g.norm(), 1e-14);
  EXPECT_EQ(w.l.triangularView<Eigen::StrictlyUpper>().toDenseMatrix().norm(), 0.0);
}

TEST(Whiten, DampsASingularGramAndReportsIt) {
  // 10 tokens in 24 dimensions: Γ has rank 10.
  const Eigen::MatrixXd g = random_gram(10, 24, 2);
  const Whitening w = whiten(g);
  ASSERT_TRUE(w.damped());
  const double eps = WhitenOptions{}.damping_eps_rel * g.trace() / 24;
  EXPECT_GE(w.damping, eps);
  EXPECT_LT(w.damping, 2 * eps);  // λ_min ≈ 0, so δ ≈ ε
  Eigen::MatrixXd damped = g;
  damped.diagonal().array() += w.damping;
  EXPECT_LT((w.l * w.l.transpose() - damped).norm() / g.norm(), 1e-13);

  WhitenOptions strict;
  strict.allow_damping = false;
  EXPECT_EQ(code_of([&] { whiten(g, strict); }), StatusCode::kNumericalError);
}

TEST(Whiten, DampsADeadInputChannel) {
  Eigen::MatrixXd g = random_gram(100, 12, 3);
  g.row(5).setZero();
  g.col(5).setZero();
  EXPECT_TRUE(whiten(g).damped());
  WhitenOptions strict;
  strict.allow_damping = false;
  EXPECT_EQ(code_of([&] { whiten(g, strict); }), StatusCode::kNumericalError);
}

TEST(Whiten, RejectsBadGrams) {
  Eigen::MatrixXd g = random_gram(50, 6, 4);
  EXPECT_EQ(code_of([&] { whiten(Eigen::MatrixXd(4, 5)); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { whiten(Eigen::MatrixXd()); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { whiten(Eigen::MatrixXd::Zero(6, 6)); }), StatusCode::kNumericalError);
  Eigen::MatrixXd asym = g;
  asym(0, 3) += 1.0;
  EXPECT_EQ(code_of([&] { whiten(asym); }), StatusCode::kInvalidArgument);
  Eigen::MatrixXd nan = g;
  nan(2, 2) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(code_of([&] { whiten(nan); }), StatusCode::kNumericalError);
  nan(2, 2) = std::numeric_limits<double>::infinity();
  EXPECT_EQ(code_of([&] { whiten(nan); }), StatusCode::kNumericalError);
  WhitenOptions bad;
  bad.damping_eps_rel = bad.min_pivot_rel;
  EXPECT_EQ(code_of([&] { whiten(g, bad); }), StatusCode::kInvalidArgument);
}

// ‖X (W − BA)ᵀ‖_F = ‖(W − BA) L‖_F = √(Σ discarded σ²), at every rank, for both algorithms.
TEST(TruncatedSvd, WhitenedErrorIsTheDiscardedSpectrum) {
  const int m = 24, n = 40;
  const Eigen::MatrixXd x = random_inputs(300, n, 5);
  const Eigen::MatrixXd g = x.transpose() * x;
  const Whitening wh = whiten(0.5 * (g + g.transpose()));
  const Eigen::MatrixXd w = random_matrix(m, n, 6);
  for (SvdAlgorithm alg : {SvdAlgorithm::kBdc, SvdAlgorithm::kJacobi}) {
    for (int r : {1, 7, 23, 24}) {
      const LowRank<double> lr = truncated_svd(w, r, &wh, alg);
      ASSERT_EQ(lr.b.rows(), m);
      ASSERT_EQ(lr.b.cols(), r);
      ASSERT_EQ(lr.a.rows(), r);
      ASSERT_EQ(lr.a.cols(), n);
      ASSERT_EQ(lr.singular_values.size(), m);
      const std::vector<double> err = truncation_errors(lr.singular_values);
      const Eigen::MatrixXd e = w - lr.b * lr.a;
      const double whitened = (e * wh.l).norm();
      const double output = (x * e.transpose()).norm();
      const double scale = err[0];
      EXPECT_NEAR(whitened, err[r], 1e-10 * scale) << "rank " << r;
      EXPECT_NEAR(output, err[r], 1e-9 * scale) << "rank " << r;
    }
  }
}

TEST(TruncatedSvd, PlainErrorIsTheDiscardedSpectrum) {
  const Eigen::MatrixXd w = random_matrix(30, 17, 7);
  for (int r : {1, 5, 17}) {
    const LowRank<double> lr = truncated_svd(w, r);
    const std::vector<double> err = truncation_errors(lr.singular_values);
    EXPECT_NEAR((w - lr.b * lr.a).norm(), err[r], 1e-12 * err[0]);
  }
}

TEST(TruncatedSvd, FactorsSplitTheSpectrumSymmetrically) {
  const Whitening wh = whiten(random_gram(100, 20, 8));
  const Eigen::MatrixXd w = random_matrix(12, 20, 9);
  const LowRank<double> lr = truncated_svd(w, 5, &wh);
  const Eigen::MatrixXd s = lr.singular_values.head(5).asDiagonal();
  const Eigen::MatrixXd al = lr.a * wh.l;
  EXPECT_LT((lr.b.transpose() * lr.b - s).norm(), 1e-12 * s.norm());  // BᵀB = Σ_r
  EXPECT_LT((al * al.transpose() - s).norm(), 1e-10 * s.norm());      // (AL)(AL)ᵀ = Σ_r
}

TEST(TruncatedSvd, FullRankReproducesTheMatrix) {
  const Whitening wh = whiten(random_gram(100, 20, 10));
  const Eigen::MatrixXd w = random_matrix(8, 20, 11);
  const LowRank<double> lr = truncated_svd(w, 8, &wh);
  EXPECT_LT((w - lr.b * lr.a).norm(), 1e-11 * w.norm());
}

TEST(TruncatedSvd, WhitenedBeatsPlainInTheOutputNorm) {
  const Whitening wh = whiten(random_gram(400, 32, 12));
  const Eigen::MatrixXd w = random_matrix(16, 32, 13);
  for (int r : {2, 8}) {
    const LowRank<double> white = truncated_svd(w, r, &wh);
    const LowRank<double> plain = truncated_svd(w, r);
    const double e_white = ((w - white.b * white.a) * wh.l).norm();
    const double e_plain = ((w - plain.b * plain.a) * wh.l).norm();
    EXPECT_LT(e_white, e_plain) << "rank " << r;
  }
}

TEST(TruncatedSvd, Float32AgreesWithFloat64) {
  const Whitening wh = whiten(random_gram(300, 48, 14));
  const Eigen::MatrixXd w = random_matrix(32, 48, 15);
  const LowRank<double> d = truncated_svd(w, 10, &wh);
  const LowRank<float> f = truncated_svd(w.cast<float>().eval(), 10, &wh);
  const Eigen::MatrixXd prod_f = (f.b * f.a).cast<double>();
  const double err_d = ((w - d.b * d.a) * wh.l).norm();
  const double err_f = ((w - prod_f) * wh.l).norm();
  EXPECT_NEAR(err_f, err_d, 1e-4 * err_d);
  EXPECT_LT((f.singular_values.cast<double>() - d.singular_values).norm(),
            1e-5 * d.singular_values.norm());
}

TEST(TruncatedSvd, WorksOnADampedGram) {
  const Eigen::MatrixXd g = random_gram(6, 16, 16);
  const Whitening wh = whiten(g);
  ASSERT_TRUE(wh.damped());
  const Eigen::MatrixXd w = random_matrix(8, 16, 17);
  const LowRank<double> lr = truncated_svd(w, 3, &wh);
  const std::vector<double> err = truncation_errors(lr.singular_values);
  EXPECT_NEAR(((w - lr.b * lr.a) * wh.l).norm(), err[3], 1e-9 * err[0]);
}

TEST(TruncatedSvd, RejectsBadInput) {
  const Whitening wh = whiten(random_gram(50, 10, 18));
  const Eigen::MatrixXd w = random_matrix(6, 10, 19);
  EXPECT_EQ(code_of([&] { truncated_svd(w, 0, &wh); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { truncated_svd(w, 7, &wh); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { truncated_svd(w.transpose().eval(), 2, &wh); }),
            StatusCode::kInvalidArgument);  // whitening is 10-dim, matrix has 6 columns
  Eigen::MatrixXd nan = w;
  nan(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(code_of([&] { truncated_svd(nan, 2, &wh); }), StatusCode::kInvalidArgument);
}

TEST(TruncationErrors, ArePrefixSumsOfTheTail) {
  Eigen::VectorXd s(4);
  s << 4, 3, 2, 1;
  const std::vector<double> err = truncation_errors(s);
  ASSERT_EQ(err.size(), 5u);
  EXPECT_DOUBLE_EQ(err[0], std::sqrt(30.0));
  EXPECT_DOUBLE_EQ(err[1], std::sqrt(14.0));
  EXPECT_DOUBLE_EQ(err[3], 1.0);
  EXPECT_DOUBLE_EQ(err[4], 0.0);
}

}  // namespace
}  // namespace latentkv
