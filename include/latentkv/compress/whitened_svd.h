// Truncated SVD, plain and whitened (design §3.2).
//
// Whitening: Γ = L Lᵀ (fp64 Cholesky). For any calibration matrix X with XᵀX = Γ,
//   ‖X (W − B A)ᵀ‖_F = ‖(W − B A) L‖_F,
// so truncating the SVD of W·L to rank r minimizes the output error on the calibration set, and
// the error left is exactly √(Σ_{i≥r} σ_i²) of W·L (truncation_errors()). The factors are
//   B = U_r Σ_r^{1/2}            [m, r]
//   A = Σ_r^{1/2} V_rᵀ L⁻¹        [r, n]   (a triangular solve with Lᵀ, never an explicit inverse)
// so that B·A = (U_r Σ_r V_rᵀ) L⁻¹. Plain SVD is the same with L = I (pass no whitening).
#pragma once

#include <Eigen/Core>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <vector>

#include "latentkv/status.h"

namespace latentkv {

/// How Γ is factorized, and what to do when it is not numerically positive definite.
struct WhitenOptions {
  /// Allow Γ + δ·I when the Cholesky factorization fails; otherwise fail with kNumericalError.
  bool allow_damping = true;
  /// δ = damping_eps_rel · trace(Γ)/d − min(λ_min(Γ), 0), which makes λ_min(Γ + δI) ≥ ε.
  double damping_eps_rel = 1e-6;
  /// A Cholesky pivot L_ii² below min_pivot_rel · trace(Γ)/d counts as a failure: Γ is then
  /// numerically singular (e.g. fewer tokens than d_model, or a dead input channel) and L⁻¹ would
  /// amplify rounding errors by more than 1/√min_pivot_rel. Must be below damping_eps_rel.
  double min_pivot_rel = 1e-12;
};

/// The Cholesky factor of a (possibly damped) Gram matrix.
struct Whitening {
  /// Lower-triangular L with L·Lᵀ = Γ + damping·I, [d, d] (upper triangle zero).
  Eigen::MatrixXd l;
  /// The δ added to the diagonal of Γ; 0 when Γ was factorized as given.
  double damping = 0.0;

  int dim() const { return static_cast<int>(l.rows()); }
  bool damped() const { return damping > 0.0; }
};

/// Factorizes a symmetric Gram matrix Γ ([d, d], fp64). Throws Error(kInvalidArgument) when Γ is
/// not square or not symmetric, kNumericalError when it has a NaN/Inf, a non-positive trace, or is
/// not numerically positive definite while damping is disallowed (or still fails after damping).
Whitening whiten(const Eigen::MatrixXd& gram, const WhitenOptions& options = {});

/// Which SVD routine computes the thin SVD. BDCSVD is the default: bench/decompose_bench
/// (BM_ThinSvd, [m, 576] blocks, this 2-core machine) measured it as fast as or faster than
/// JacobiSVD at every m from 8 to 192 (m = 8: 0.04 vs 0.07 ms; 64: 2.4 vs 3.7 ms; 128: 8.7 vs
/// 37 ms), and Eigen's BDCSVD already switches to Jacobi internally for tiny bidiagonal blocks.
/// JacobiSVD stays available for its higher relative accuracy on small singular values.
enum class SvdAlgorithm {
  kBdc,     ///< Eigen::BDCSVD (divide and conquer)
  kJacobi,  ///< Eigen::JacobiSVD (two-sided Jacobi with QR preconditioning)
};

/// Rank-r factors W ≈ B·A and the full spectrum they were cut from.
template <typename Scalar>
struct LowRank {
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  Matrix b;  ///< [m, r] = U_r Σ_r^{1/2}
  Matrix a;  ///< [r, n] = Σ_r^{1/2} V_rᵀ L⁻¹
  /// All min(m, n) singular values of W·L (of W when plain), descending.
  Vector singular_values;
};

/// err[r] = √(Σ_{i≥r} σ_i²) for r = 0..p (p = σ.size()): the truncation error ‖(W − B_r A_r) L‖_F
/// at every rank, so err[0] = ‖W L‖_F and err[r]/err[0] is the relative output error at rank r.
template <typename Vector>
std::vector<double> truncation_errors(const Vector& sigma) {
  const int p = static_cast<int>(sigma.size());
  std::vector<double> err(p + 1, 0.0);
  double tail = 0.0;  // summed from the small end for accuracy
  for (int i = p - 1; i >= 0; --i) {
    tail += static_cast<double>(sigma[i]) * static_cast<double>(sigma[i]);
    err[i] = std::sqrt(tail);
  }
  return err;
}

namespace detail {

template <typename Svd, typename Matrix>
void thin_svd_with(const Matrix& m, Matrix* u, typename LowRank<typename Matrix::Scalar>::Vector* s,
                   Matrix* v) {
  Svd svd(m, Eigen::ComputeThinU | Eigen::ComputeThinV);
  if (svd.info() != Eigen::Success)
    LKV_THROW(StatusCode::kNumericalError, "SVD of a ", m.rows(), "x", m.cols(),
              " matrix did not converge");
  *u = svd.matrixU();
  *s = svd.singularValues();
  *v = svd.matrixV();
}

template <typename Matrix>
void thin_svd(const Matrix& m, SvdAlgorithm algorithm, Matrix* u,
              typename LowRank<typename Matrix::Scalar>::Vector* s, Matrix* v) {
  if (algorithm == SvdAlgorithm::kJacobi) {
    thin_svd_with<Eigen::JacobiSVD<Matrix>>(m, u, s, v);
  } else {
    thin_svd_with<Eigen::BDCSVD<Matrix>>(m, u, s, v);
  }
}

}  // namespace detail

/// Rank-`rank` truncated SVD of w ([m, n], float or double): whitened when `whitening` is given
/// (its dim() must be n), plain otherwise. The SVD and the triangular solve run in w's scalar
/// type; the Cholesky factor (always computed in fp64 by whiten()) is cast to it.
/// Throws Error(kInvalidArgument) for rank outside [1, min(m, n)], a whitening of the wrong size
/// or non-finite w; kNumericalError when the SVD fails or its result is not finite.
template <typename Derived>
LowRank<typename Derived::Scalar> truncated_svd(const Eigen::MatrixBase<Derived>& w, int rank,
                                                const Whitening* whitening = nullptr,
                                                SvdAlgorithm algorithm = SvdAlgorithm::kBdc) {
  using Scalar = typename Derived::Scalar;
  using Matrix = typename LowRank<Scalar>::Matrix;
  const int m = static_cast<int>(w.rows());
  const int n = static_cast<int>(w.cols());
  const int p = std::min(m, n);
  LKV_CHECK_ARG(m > 0 && n > 0, "truncated_svd: empty matrix ", m, "x", n);
  LKV_CHECK_ARG(rank >= 1 && rank <= p, "truncated_svd: rank ", rank, " outside [1, ", p,
                "] for a ", m, "x", n, " matrix");
  LKV_CHECK_ARG(whitening == nullptr || whitening->dim() == n, "truncated_svd: whitening is ",
                whitening ? whitening->dim() : 0, "-dimensional, the matrix has ", n, " columns");
  LKV_CHECK_ARG(w.allFinite(), "truncated_svd: matrix has a NaN or Inf entry");

  Matrix l;
  Matrix target;
  if (whitening) {
    l = whitening->l.template cast<Scalar>();
    // W·L with L lower-triangular: a triangular product (half the flops of a dense GEMM).
    target = w * l.template triangularView<Eigen::Lower>();
  } else {
    target = w;
  }
  Matrix u, v;
  typename LowRank<Scalar>::Vector s;
  detail::thin_svd(target, algorithm, &u, &s, &v);

  LowRank<Scalar> out;
  // Scalar sqrt (not the packet path): a few hundred values, and GCC 12 warns spuriously about
  // Eigen's AVX-512 rsqrt packet.
  const typename LowRank<Scalar>::Vector sqrt_s =
      s.head(rank).unaryExpr([](Scalar x) { return std::sqrt(x); });
  out.b = u.leftCols(rank) * sqrt_s.asDiagonal();
  Matrix at = v.leftCols(rank) * sqrt_s.asDiagonal();  // Aᵀ before un-whitening, [n, r]
  if (whitening) {
    // A = Σ^{1/2} V_rᵀ L⁻¹  ⇔  Lᵀ Aᵀ = V_r Σ^{1/2}: one upper-triangular solve.
    l.transpose().template triangularView<Eigen::Upper>().solveInPlace(at);
  }
  out.a = at.transpose();
  out.singular_values = s;
  if (!out.a.allFinite() || !out.b.allFinite())
    LKV_THROW(StatusCode::kNumericalError, "truncated_svd: factors of a ", m, "x", n,
              " matrix are not finite (ill-conditioned Gram?)");
  return out;
}

}  // namespace latentkv
