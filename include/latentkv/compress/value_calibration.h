// Offline value calibration by alternating least squares (design §3.5, ReCalKV OVC).
//
// Objective. The compressed layer sees inputs X̃ (from an already-compressed preceding model in
// sequential calibration; X̃ = X otherwise) and should reproduce the original outputs X·Wᵀ:
//   f(B, A) = ‖X Wᵀ − X̃ Aᵀ Bᵀ‖²_F
//           = tr(W Γ_t Wᵀ) − 2 tr(W Cᵀ Aᵀ Bᵀ) + tr(B A Γ̃ Aᵀ Bᵀ),
// with Γ̃ = X̃ᵀX̃ (input Gram), C = X̃ᵀX (cross moment) and Γ_t = XᵀX (target Gram). With X̃ = X,
// C = Γ̃ = Γ_t = Γ and f = ‖(W − BA) L‖²_F.
//
// Exact block minimizers (setting the gradient to zero):
//   L-step (B for fixed A):  B = W Cᵀ Aᵀ (A Γ̃ Aᵀ)⁻¹       — the design's W Γ Aᵀ (A Γ Aᵀ)⁻¹ when X̃ =
//   X. R-step (A for fixed B):  Bᵀ B A Γ̃ = Bᵀ W Cᵀ  ⇒  A = (BᵀB)⁻¹ Bᵀ (W Cᵀ Γ̃⁻¹).
// When X̃ = X, W Cᵀ Γ̃⁻¹ = W and the R-step is the design's (BᵀB)⁻¹ Bᵀ W: Γ cancels there because
// A's rows are unconstrained, so it is the Γ-weighted least-squares update, not an approximation
// of it. Γ only stays in the R-step when the statistics differ (C ≠ Γ̃), which is the case this
// module implements in general.
//
// Both steps minimize f exactly over one block, so f never increases (up to rounding). The global
// minimum over rank-r products is known in closed form (reduced-rank regression): with
// Γ̃ = L̃ L̃ᵀ, f = const + ‖B A L̃ − W Cᵀ L̃⁻ᵀ‖²_F, so the optimum is the whitened truncated SVD of
// Q = W Cᵀ Γ̃⁻¹ under L̃ (optimal_calibrated_factors()). ALS converges towards it; with X̃ = X that
// optimum is the whitened SVD itself, so ALS started there cannot improve anything (the ablation
// shows it). Damping of Γ̃, when whiten() needed it, is part of the objective (Γ̃ + δI).
#pragma once

#include <Eigen/Core>
#include <vector>

#include "latentkv/compress/group_decompose.h"
#include "latentkv/compress/whitened_svd.h"
#include "latentkv/factors.h"
#include "latentkv/model/llama.h"

namespace latentkv {

/// Statistics of the calibration objective, all [d_model, d_model] fp64.
struct CalibrationTarget {
  Eigen::MatrixXd gram_input;   ///< Γ̃ = X̃ᵀX̃ (or Γ when X̃ = X)
  Eigen::MatrixXd cross;        ///< C = X̃ᵀX; empty when X̃ = X
  Eigen::MatrixXd gram_target;  ///< Γ_t = XᵀX; empty when X̃ = X (then Γ_t = Γ̃)

  /// Same-statistics target (X̃ = X).
  static CalibrationTarget same(const Eigen::MatrixXd& gram);
  bool sequential() const { return cross.size() > 0; }
};

/// The objective for one weight block W ([m, d_model]) with everything that does not depend on
/// (B, A) precomputed.
class AlsProblem {
 public:
  /// `input_whitening` must be whiten(target.gram_input) (passed in so that the groups of a layer
  /// share one factorization). Throws Error(kInvalidArgument) on shape mismatches (cross without
  /// gram_target or the reverse, any matrix not [d_model, d_model]) or non-finite input.
  AlsProblem(const Eigen::MatrixXd& w, const CalibrationTarget& target,
             const Whitening& input_whitening);
  /// Same, factorizing Γ̃ itself; throws Error(kNumericalError) when it cannot.
  AlsProblem(const Eigen::MatrixXd& w, const CalibrationTarget& target,
             const WhitenOptions& whiten_options = {});

  /// f(B, A) as defined above (≥ 0 up to rounding).
  double objective(const Eigen::MatrixXd& b, const Eigen::MatrixXd& a) const;
  /// tr(W Γ_t Wᵀ) = ‖X Wᵀ‖²_F, the scale for relative errors.
  double target_energy() const { return target_energy_; }
  /// √(f / target_energy): relative output error on the calibration set.
  double relative_error(const Eigen::MatrixXd& b, const Eigen::MatrixXd& a) const;

  /// B = W Cᵀ Aᵀ (A Γ̃ Aᵀ)⁻¹ (pseudo-inverse when singular).
  Eigen::MatrixXd l_step(const Eigen::MatrixXd& a) const;
  /// A = (BᵀB)⁻¹ Bᵀ W Cᵀ Γ̃⁻¹ (pseudo-inverse when singular).
  Eigen::MatrixXd r_step(const Eigen::MatrixXd& b) const;

  /// Global minimizer at `rank` (closed form, see the file comment).
  LowRank<double> optimal_factors(int rank) const;

  const Whitening& input_whitening() const { return whitening_; }

 private:
  Eigen::MatrixXd w_;    // W when X̃ = X (f is then evaluated directly), else empty
  Eigen::MatrixXd p_;    // W Cᵀ, [m, d]
  Eigen::MatrixXd q_;    // W Cᵀ Γ̃⁻¹, [m, d] (= W when X̃ = X)
  Whitening whitening_;  // of Γ̃
  double target_energy_ = 0.0;
};

struct AlsOptions {
  int max_iterations = 20;
  /// Stop when an iteration lowers f by less than this fraction of target_energy().
  double tolerance = 1e-12;
};

struct AlsResult {
  Eigen::MatrixXd b;  ///< [m, r]
  Eigen::MatrixXd a;  ///< [r, d_model]
  /// f before the first step, then after every half-step (L, R, L, R, ...).
  std::vector<double> objective;
};

/// Refines (b, a) by ALS, one iteration = L-step then R-step. Throws Error(kInvalidArgument) when
/// the shapes of b and a do not match the problem.
AlsResult refine_als(const AlsProblem& problem, Eigen::MatrixXd b, Eigen::MatrixXd a,
                     const AlsOptions& options = {});

/// Decomposes W_v ([num_kv_heads·head_dim, d_model]) group by group with the whitened SVD under
/// `initial` (the Cholesky factor of the Gram the SVD uses), then refines every group by ALS on
/// `target`. ReCalKV factorizes values jointly: spec.group_size = num_kv_heads. The returned
/// Decomposition's energies are measured on `target` (f and tr(W Γ_t Wᵀ) summed over groups);
/// its singular values are those of the initial SVD.
Decomposition calibrate_values(const MatrixRM& w_v, const Eigen::VectorXf& bias,
                               const GroupSpec& spec, const Whitening& initial,
                               const CalibrationTarget& target, const AlsOptions& options = {});

/// Relative output errors of one projection on the calibration target, for the OVC ablation.
struct ValueAblation {
  double plain_svd = 0.0;     ///< plain SVD of each group
  double whitened_svd = 0.0;  ///< whitened SVD under the initial Gram
  double whitened_als = 0.0;  ///< whitened SVD + ALS on the target
  double optimum = 0.0;       ///< closed-form optimum on the target (a floor for the others)
};

/// Runs the three factorizations of W (all groups of `spec`) and reports √(Σ_g f_g / Σ_g
/// tr(W_g Γ_t W_gᵀ)) for each on `target`. `initial_gram` is what the SVDs are whitened with.
ValueAblation value_ablation(const MatrixRM& w, const GroupSpec& spec,
                             const Eigen::MatrixXd& initial_gram, const CalibrationTarget& target,
                             const AlsOptions& options = {});

}  // namespace latentkv
