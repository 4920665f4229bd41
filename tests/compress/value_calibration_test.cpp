#include "latentkv/compress/value_calibration.h"

#include <gtest/gtest.h>

#include <Eigen/LU>
#include <limits>

#include "compress/compress_test_util.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_gram;
using testing::random_inputs;
using testing::random_matrix;
using testing::random_weight;

// Sequential-calibration statistics from explicit inputs: X (original model) and X̃ = X + noise
// (what an already-compressed preceding model would feed the layer).
struct Sequential {
  Eigen::MatrixXd x, x_tilde;
  CalibrationTarget target;
};

Sequential make_sequential(int tokens, int d, double noise, uint64_t seed) {
  Sequential s;
  s.x = random_inputs(tokens, d, seed);
  s.x_tilde = s.x + noise * random_inputs(tokens, d, seed + 7);
  s.target.gram_input = s.x_tilde.transpose() * s.x_tilde;
  s.target.cross = s.x_tilde.transpose() * s.x;
  s.target.gram_target = s.x.transpose() * s.x;
  return s;
}

TEST(Als, ObjectiveMatchesTheDefinitionOnExplicitData) {
  const int d = 20, m = 12, r = 4;
  const Sequential s = make_sequential(150, d, 0.3, 1);
  const Eigen::MatrixXd w = random_matrix(m, d, 2);
  const Eigen::MatrixXd b = random_matrix(m, r, 3), a = random_matrix(r, d, 4);
  const AlsProblem seq(w, s.target);
  const double direct =
      (s.x * w.transpose() - s.x_tilde * a.transpose() * b.transpose()).squaredNorm();
  EXPECT_NEAR(seq.objective(b, a), direct, 1e-10 * direct);
  EXPECT_NEAR(seq.target_energy(), (s.x * w.transpose()).squaredNorm(), 1e-12 * direct);

  const AlsProblem same(w, CalibrationTarget::same(s.target.gram_target));
  const double direct_same = (s.x * (w - b * a).transpose()).squaredNorm();
  EXPECT_NEAR(same.objective(b, a), direct_same, 1e-10 * direct_same);
}

// The derivation in value_calibration.h: each step zeroes the gradient of f in its block.
TEST(Als, StepsSolveTheirNormalEquations) {
  const int d = 16, m = 10, r = 3;
  const Sequential s = make_sequential(120, d, 0.5, 5);
  const Eigen::MatrixXd w = random_matrix(m, d, 6);
  const AlsProblem p(w, s.target);
  const Eigen::MatrixXd& g_in = s.target.gram_input;
  const Eigen::MatrixXd wct = w * s.target.cross.transpose();  // W Cᵀ
  const Eigen::MatrixXd a0 = random_matrix(r, d, 7);
  const Eigen::MatrixXd b = p.l_step(a0);
  // ∂f/∂B ∝ B A Γ̃ Aᵀ − W Cᵀ Aᵀ
  EXPECT_LT((b * a0 * g_in * a0.transpose() - wct * a0.transpose()).norm(),
            1e-9 * (wct * a0.transpose()).norm());
  const Eigen::MatrixXd a = p.r_step(b);
  // ∂f/∂A ∝ BᵀB A Γ̃ − Bᵀ W Cᵀ  (Γ̃ does not cancel here because C ≠ Γ̃)
  EXPECT_LT((b.transpose() * b * a * g_in - b.transpose() * wct).norm(),
            1e-9 * (b.transpose() * wct).norm());
  // With X̃ = X the R-step is exactly the design's (BᵀB)⁻¹ Bᵀ W.
  const AlsProblem same(w, CalibrationTarget::same(g_in));
  EXPECT_LT((same.r_step(b) - (b.transpose() * b).inverse() * b.transpose() * w).norm(),
            1e-10 * w.norm());
}

TEST(Als, NeverIncreasesAndStaysAboveTheOptimum) {
  const int d = 24, m = 16;
  const Sequential s = make_sequential(200, d, 0.4, 8);
  const Eigen::MatrixXd w = random_matrix(m, d, 9);
  const Whitening initial = whiten(s.target.gram_target);
  const AlsProblem p(w, s.target);
  for (int r : {1, 5, 12}) {
    const LowRank<double> init = truncated_svd(w, r, &initial);
    AlsOptions opts;
    opts.max_iterations = 200;
    opts.tolerance = 0;
    const AlsResult res = refine_als(p, init.b, init.a, opts);
    ASSERT_GE(res.objective.size(), 3u);
    for (size_t i = 1; i < res.objective.size(); ++i)
      ASSERT_LE(res.objective[i], res.objective[i - 1] + 1e-12 * p.target_energy())
          << "rank " << r << " half-step " << i;
    const LowRank<double> opt = p.optimal_factors(r);
    const double f_opt = p.objective(opt.b, opt.a);
    EXPECT_GE(res.objective.back(), f_opt - 1e-10 * p.target_energy());
    EXPECT_LT(res.objective.back(), res.objective.front()) << "sequential statistics: ALS helps";
    EXPECT_LT(res.objective.back() - f_opt, 0.05 * (res.objective.front() - f_opt))
        << "ALS closes most of the gap to the optimum";
    EXPECT_NEAR(p.objective(res.b, res.a), res.objective.back(), 1e-12 * p.target_energy());
  }
}

TEST(Als, CannotImproveTheWhitenedSvdOnItsOwnStatistics) {
  const int d = 24, m = 16, r = 6;
  const Eigen::MatrixXd g = random_gram(200, d, 10);
  const Eigen::MatrixXd w = random_matrix(m, d, 11);
  const AlsProblem p(w, CalibrationTarget::same(g));
  const LowRank<double> white = truncated_svd(w, r, &p.input_whitening());
  const AlsResult res = refine_als(p, white.b, white.a);
  EXPECT_NEAR(res.objective.back(), res.objective.front(), 1e-10 * p.target_energy());
  const std::vector<double> err = truncation_errors(white.singular_values);
  EXPECT_NEAR(res.objective.front(), err[r] * err[r], 1e-10 * p.target_energy());
}

// ALS under a different Gram (no cross statistics) converges to the whitened SVD under that Gram.
TEST(Als, WithADifferentGramConvergesToThatGramsWhitenedSvd) {
  const int d = 20, m = 12, r = 4;
  const Eigen::MatrixXd g1 = random_gram(200, d, 12), g2 = random_gram(200, d, 13);
  const Eigen::MatrixXd w = random_matrix(m, d, 14);
  const AlsProblem p(w, CalibrationTarget::same(g2));
  const LowRank<double> init = truncated_svd(w, r, &p.input_whitening());
  const Whitening w1 = whiten(g1);
  const LowRank<double> start = truncated_svd(w, r, &w1);
  AlsOptions opts;
  opts.max_iterations = 300;
  const AlsResult res = refine_als(p, start.b, start.a, opts);
  const std::vector<double> err = truncation_errors(init.singular_values);
  EXPECT_GT(res.objective.front(), err[r] * err[r] * (1 + 1e-6));
  EXPECT_NEAR(res.objective.back(), err[r] * err[r], 1e-4 * err[r] * err[r]);
}

TEST(Als, CalibrateValuesAndAblation) {
  const int d = 40, hd = 8, heads = 4;
  const Sequential s = make_sequential(300, d, 0.3, 15);
  const MatrixRM w = random_weight(heads * hd, d, 16);
  const Whitening initial = whiten(s.target.gram_target);
  const GroupSpec joint{heads, hd, heads, {10}, {}};
  const Decomposition dec = calibrate_values(w, Eigen::VectorXf(), joint, initial, s.target);
  dec.factors.validate();
  const ValueAblation ab = value_ablation(w, joint, s.target.gram_target, s.target);
  EXPECT_NEAR(dec.relative_error(), ab.whitened_als, 1e-9);
  EXPECT_LE(ab.optimum, ab.whitened_als + 1e-12);
  EXPECT_LT(ab.whitened_als, ab.whitened_svd);
  // The fp32 factors reproduce the reported error.
  const Eigen::Map<const MatrixRM> a(dec.factors.a.data(), 10, d);
  const Eigen::Map<const MatrixRM> b(dec.factors.b.data(), heads * hd, 10);
  const AlsProblem p(w.cast<double>(), s.target);
  EXPECT_NEAR(p.relative_error(b.cast<double>(), a.cast<double>()), dec.relative_error(), 1e-5);

  // Same statistics: whitened SVD beats plain, ALS adds nothing, and the optimum is the SVD.
  const GroupSpec groups{heads, hd, 2, {5}, {}};
  const ValueAblation same = value_ablation(w, groups, s.target.gram_target,
                                            CalibrationTarget::same(s.target.gram_target));
  EXPECT_LT(same.whitened_svd, same.plain_svd);
  EXPECT_NEAR(same.whitened_als, same.whitened_svd, 1e-8);
  EXPECT_NEAR(same.optimum, same.whitened_svd, 1e-8);
}

TEST(Als, RejectsBadInput) {
  const int d = 8;
  const Eigen::MatrixXd g = random_gram(50, d, 17);
  const Eigen::MatrixXd w = random_matrix(4, d, 18);
  CalibrationTarget t = CalibrationTarget::same(g);
  t.cross = g;  // cross without gram_target
  EXPECT_EQ(code_of([&] { AlsProblem p(w, t); }), StatusCode::kInvalidArgument);
  t = CalibrationTarget::same(g);
  t.gram_target = g;  // gram_target without cross
  EXPECT_EQ(code_of([&] { AlsProblem p(w, t); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { AlsProblem p(w, CalibrationTarget::same(random_gram(50, d + 1, 19))); }),
            StatusCode::kInvalidArgument);
  Eigen::MatrixXd bad = g;
  bad(0, 0) = std::numeric_limits<double>::infinity();
  EXPECT_EQ(code_of([&] { AlsProblem p(w, CalibrationTarget::same(bad)); }),
            StatusCode::kNumericalError);
  const AlsProblem p(w, CalibrationTarget::same(g));
  EXPECT_EQ(code_of([&] { p.objective(random_matrix(4, 2, 1), random_matrix(3, d, 2)); }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { refine_als(p, random_matrix(5, 2, 1), random_matrix(2, d, 2)); }),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace latentkv
