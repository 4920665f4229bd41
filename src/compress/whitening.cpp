#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>

#include "latentkv/compress/whitened_svd.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

// Cholesky of g; false when a pivot is non-positive or below min_pivot (numerically singular).
bool try_cholesky(const Eigen::MatrixXd& g, double min_pivot, Eigen::MatrixXd* l) {
  Eigen::LLT<Eigen::MatrixXd> llt(g);
  if (llt.info() != Eigen::Success) return false;
  *l = llt.matrixL();
  if (!l->allFinite()) return false;
  return l->diagonal().cwiseAbs2().minCoeff() >= min_pivot;
}

}  // namespace

Whitening whiten(const Eigen::MatrixXd& gram, const WhitenOptions& options) {
  const int64_t d = gram.rows();
  LKV_CHECK_ARG(d > 0 && gram.cols() == d, "whiten: Gram is ", gram.rows(), "x", gram.cols(),
                ", expected a non-empty square matrix");
  LKV_CHECK_ARG(options.min_pivot_rel >= 0 && options.damping_eps_rel > options.min_pivot_rel,
                "whiten: need 0 <= min_pivot_rel < damping_eps_rel, got ", options.min_pivot_rel,
                " and ", options.damping_eps_rel);
  if (!gram.allFinite())
    LKV_THROW(StatusCode::kNumericalError, "whiten: Gram has a NaN or Inf entry");
  const double max_abs = gram.cwiseAbs().maxCoeff();
  LKV_CHECK_ARG((gram - gram.transpose()).cwiseAbs().maxCoeff() <= 1e-12 * max_abs,
                "whiten: Gram is not symmetric");
  const double mean_diag = gram.trace() / static_cast<double>(d);
  if (!(mean_diag > 0))
    LKV_THROW(StatusCode::kNumericalError, "whiten: Gram has trace ", gram.trace(),
              " (no calibration tokens?)");

  Whitening out;
  const double min_pivot = options.min_pivot_rel * mean_diag;
  if (try_cholesky(gram, min_pivot, &out.l)) return out;
  if (!options.allow_damping)
    LKV_THROW(StatusCode::kNumericalError, "whiten: ", d, "x", d,
              " Gram is not numerically positive definite and damping is disabled");

  // Shift the spectrum so that its smallest eigenvalue becomes at least ε.
  const double lambda_min =
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(gram, Eigen::EigenvaluesOnly).eigenvalues()(0);
  const double shift = options.damping_eps_rel * mean_diag - std::min(lambda_min, 0.0);
  Eigen::MatrixXd damped = gram;
  damped.diagonal().array() += shift;
  if (!try_cholesky(damped, min_pivot, &out.l))
    LKV_THROW(StatusCode::kNumericalError, "whiten: Cholesky failed even after damping by ", shift);
  out.damping = shift;
  return out;
}

}  // namespace latentkv
