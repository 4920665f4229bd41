#include "latentkv/compress/value_calibration.h"

#include <Eigen/Cholesky>
#include <cmath>

#include "latentkv/status.h"

namespace latentkv {
namespace {

void check_square(const Eigen::MatrixXd& m, int64_t d, const char* name) {
  LKV_CHECK_ARG(m.rows() == d && m.cols() == d, "calibration target: ", name, " is ", m.rows(), "x",
                m.cols(), ", expected ", d, "x", d);
}

}  // namespace

CalibrationTarget CalibrationTarget::same(const Eigen::MatrixXd& gram) {
  CalibrationTarget t;
  t.gram_input = gram;
  return t;
}

AlsProblem::AlsProblem(const Eigen::MatrixXd& w, const CalibrationTarget& target,
                       const Whitening& input_whitening)
    : whitening_(input_whitening) {
  const int64_t d = w.cols();
  LKV_CHECK_ARG(w.rows() > 0 && d > 0, "ALS: empty weight block");
  LKV_CHECK_ARG(w.allFinite(), "ALS: weight block has a NaN or Inf entry");
  check_square(target.gram_input, d, "gram_input");
  LKV_CHECK_ARG(whitening_.dim() == d, "ALS: input whitening is ", whitening_.dim(),
                "-dimensional, d_model is ", d);
  const auto l = whitening_.l.triangularView<Eigen::Lower>();
  if (!target.sequential()) {
    LKV_CHECK_ARG(target.gram_target.size() == 0,
                  "calibration target: gram_target given without cross");
    LKV_CHECK_ARG(target.gram_input.allFinite(), "calibration target: Gram has a NaN or Inf entry");
    // X̃ = X: every statistic is the (damped) Γ = L Lᵀ, so f = ‖(W − BA) L‖²_F exactly.
    w_ = w;
    const Eigen::MatrixXd wl = w * l;
    p_ = wl * whitening_.l.transpose().triangularView<Eigen::Upper>();
    q_ = w;
    target_energy_ = wl.squaredNorm();
    return;
  }
  check_square(target.cross, d, "cross");
  check_square(target.gram_target, d, "gram_target");
  LKV_CHECK_ARG(target.cross.allFinite() && target.gram_target.allFinite(),
                "calibration target: statistics have a NaN or Inf entry");
  p_ = w * target.cross.transpose();
  // q = W Cᵀ Γ̃⁻¹: solve Γ̃ qᵀ = C Wᵀ with the two triangular factors.
  Eigen::MatrixXd qt = p_.transpose();
  l.solveInPlace(qt);
  whitening_.l.transpose().triangularView<Eigen::Upper>().solveInPlace(qt);
  q_ = qt.transpose();
  target_energy_ = (w * target.gram_target).cwiseProduct(w).sum();
}

AlsProblem::AlsProblem(const Eigen::MatrixXd& w, const CalibrationTarget& target,
                       const WhitenOptions& whiten_options)
    : AlsProblem(w, target, whiten(target.gram_input, whiten_options)) {}

double AlsProblem::objective(const Eigen::MatrixXd& b, const Eigen::MatrixXd& a) const {
  LKV_CHECK_ARG(b.rows() == p_.rows() && a.cols() == p_.cols() && b.cols() == a.rows(),
                "ALS: factors ", b.rows(), "x", b.cols(), " and ", a.rows(), "x", a.cols(),
                " do not fit a ", p_.rows(), "x", p_.cols(), " block");
  const auto l = whitening_.l.triangularView<Eigen::Lower>();
  if (w_.size() > 0) return ((w_ - b * a) * l).squaredNorm();
  const Eigen::MatrixXd al = a * l;
  const double quadratic = (b.transpose() * b).cwiseProduct(al * al.transpose()).sum();
  const double cross = (b.transpose() * p_).cwiseProduct(a).sum();
  return target_energy_ - 2.0 * cross + quadratic;
}

double AlsProblem::relative_error(const Eigen::MatrixXd& b, const Eigen::MatrixXd& a) const {
  if (!(target_energy_ > 0)) return 0.0;
  return std::sqrt(std::max(0.0, objective(b, a)) / target_energy_);
}

Eigen::MatrixXd AlsProblem::l_step(const Eigen::MatrixXd& a) const {
  LKV_CHECK_ARG(a.cols() == p_.cols(), "ALS: A has ", a.cols(), " columns, expected ", p_.cols());
  const Eigen::MatrixXd al = a * whitening_.l.triangularView<Eigen::Lower>();
  const Eigen::MatrixXd gram = al * al.transpose();  // A Γ̃ Aᵀ, symmetric PSD [r, r]
  // LDLT treats (near-)zero pivots as zero, i.e. applies the pseudo-inverse: still a minimizer.
  return gram.ldlt().solve((p_ * a.transpose()).transpose()).transpose();
}

Eigen::MatrixXd AlsProblem::r_step(const Eigen::MatrixXd& b) const {
  LKV_CHECK_ARG(b.rows() == q_.rows(), "ALS: B has ", b.rows(), " rows, expected ", q_.rows());
  const Eigen::MatrixXd gram = b.transpose() * b;
  return gram.ldlt().solve(b.transpose() * q_);
}

LowRank<double> AlsProblem::optimal_factors(int rank) const {
  return truncated_svd(q_, rank, &whitening_);
}

AlsResult refine_als(const AlsProblem& problem, Eigen::MatrixXd b, Eigen::MatrixXd a,
                     const AlsOptions& options) {
  LKV_CHECK_ARG(options.max_iterations >= 0 && options.tolerance >= 0,
                "ALS: max_iterations and tolerance must be non-negative");
  AlsResult out;
  out.objective.push_back(problem.objective(b, a));
  for (int it = 0; it < options.max_iterations; ++it) {
    const double before = out.objective.back();
    b = problem.l_step(a);
    out.objective.push_back(problem.objective(b, a));
    a = problem.r_step(b);
    out.objective.push_back(problem.objective(b, a));
    if (before - out.objective.back() < options.tolerance * problem.target_energy()) break;
  }
  if (!b.allFinite() || !a.allFinite())
    LKV_THROW(StatusCode::kNumericalError, "ALS: factors became non-finite");
  out.b = std::move(b);
  out.a = std::move(a);
  return out;
}

Decomposition calibrate_values(const MatrixRM& w_v, const Eigen::VectorXf& bias,
                               const GroupSpec& spec, const Whitening& initial,
                               const CalibrationTarget& target, const AlsOptions& options) {
  Decomposition out;
  ProjectionFactors& f = out.factors;
  f = allocate_factors(w_v, bias, spec);
  LKV_CHECK_ARG(initial.dim() == f.d_model, "calibrate_values: initial whitening is ",
                initial.dim(), "-dimensional, d_model is ", f.d_model);
  const Whitening input = whiten(target.gram_input);
  for (int g = 0; g < f.num_groups(); ++g) {
    const int r = f.ranks[g];
    const Eigen::MatrixXd wg = group_rows(w_v, spec, g);
    const LowRank<double> init = truncated_svd(wg, r, &initial);
    const AlsProblem problem(wg, target, input);
    const AlsResult res = refine_als(problem, init.b, init.a, options);
    Eigen::Map<MatrixRM>(f.a.data() + static_cast<size_t>(f.rank_offset(g)) * f.d_model, r,
                         f.d_model) = res.a.cast<float>();
    Eigen::Map<MatrixRM>(f.b.data() + f.b_offset(g), wg.rows(), r) = res.b.cast<float>();
    out.singular_values.push_back(init.singular_values);
    out.discarded_energy += std::max(0.0, res.objective.back());
    out.total_energy += problem.target_energy();
  }
  f.validate();
  return out;
}

ValueAblation value_ablation(const MatrixRM& w, const GroupSpec& spec,
                             const Eigen::MatrixXd& initial_gram, const CalibrationTarget& target,
                             const AlsOptions& options) {
  spec.validate(static_cast<int>(w.cols()));
  const Whitening initial = whiten(initial_gram);
  const Whitening input = whiten(target.gram_input);
  const std::vector<int> ranks = spec.group_ranks();
  double f_plain = 0, f_white = 0, f_als = 0, f_opt = 0, energy = 0;
  for (int g = 0; g < spec.num_groups(); ++g) {
    const Eigen::MatrixXd wg = group_rows(w, spec, g);
    const AlsProblem problem(wg, target, input);
    const LowRank<double> plain = truncated_svd(wg, ranks[g]);
    const LowRank<double> white = truncated_svd(wg, ranks[g], &initial);
    const AlsResult als = refine_als(problem, white.b, white.a, options);
    const LowRank<double> opt = problem.optimal_factors(ranks[g]);
    f_plain += problem.objective(plain.b, plain.a);
    f_white += problem.objective(white.b, white.a);
    f_als += als.objective.back();
    f_opt += problem.objective(opt.b, opt.a);
    energy += problem.target_energy();
  }
  auto rel = [energy](double f) { return energy > 0 ? std::sqrt(std::max(0.0, f) / energy) : 0.0; };
  return {rel(f_plain), rel(f_white), rel(f_als), rel(f_opt)};
}

}  // namespace latentkv
