// Group-head decomposition of a key or value projection (design §3.2–§3.3).
//
// W ([num_kv_heads·head_dim, d_model]) is cut into num_groups = num_kv_heads / group_size groups
// of KV heads; group g stacks the rows of heads group_heads[g·group_size + s], s = 0..group_size-1,
// and is factorized on its own (whitened or plain truncated SVD) to rank ranks[g]. group_size 1 is
// per-head (M-LRD), num_kv_heads is joint (J-LRD). Works for MHA and GQA alike: only KV heads are
// factorized.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "latentkv/compress/whitened_svd.h"
#include "latentkv/factors.h"
#include "latentkv/model/llama.h"

namespace latentkv {

/// How the KV heads of one projection are grouped and how far each group is truncated.
struct GroupSpec {
  int num_kv_heads = 0;
  int head_dim = 0;
  int group_size = 0;  ///< must divide num_kv_heads
  /// Rank of each group ([num_groups]), or a single rank used for every group.
  std::vector<int> ranks;
  /// KV head at (group g, slot s) = group_heads[g·group_size + s]; empty = consecutive heads.
  std::vector<int> group_heads;

  int num_groups() const { return group_size > 0 ? num_kv_heads / group_size : 0; }
  /// Throws Error(kInvalidArgument) naming the first problem: non-positive sizes, group_size not
  /// dividing num_kv_heads, a wrong number of ranks, a rank outside [1, min(group_size·head_dim,
  /// d_model)], or group_heads that is not a permutation of 0..num_kv_heads-1.
  void validate(int d_model) const;
  /// ranks expanded to one entry per group.
  std::vector<int> group_ranks() const;
  /// group_heads, or the consecutive grouping when empty.
  std::vector<int> resolved_group_heads() const;
};

/// Precision of the SVD and triangular solves (the Cholesky of Γ is always fp64).
enum class SvdPrecision { kFloat64, kFloat32 };

struct DecomposeOptions {
  SvdAlgorithm algorithm = SvdAlgorithm::kBdc;
  SvdPrecision precision = SvdPrecision::kFloat64;
};

/// Factors of one projection plus what the decomposition saw.
struct Decomposition {
  ProjectionFactors factors;
  /// Singular values of each group's W_g·L (W_g when plain), descending, [num_groups].
  std::vector<Eigen::VectorXd> singular_values;
  /// Squared truncation error of the whole projection in the whitened norm, Σ_g Σ_{i≥r_g} σ_{g,i}²
  /// (= ‖(W − BA) L‖²_F; divide by Σ_g Σ_i σ_{g,i}² = ‖W L‖²_F for the relative error).
  double discarded_energy = 0.0;
  double total_energy = 0.0;

  /// Relative output error on the calibration set, √(discarded / total).
  double relative_error() const;
};

/// The rows of W for group g of `spec`, in slot order: [group_size·head_dim, d_model] (fp64).
Eigen::MatrixXd group_rows(const MatrixRM& w, const GroupSpec& spec, int g);

/// Factors with every field but the values of A and B set from `spec` (A and B zero-filled to
/// their final sizes). Validates W's shape, the spec and the bias like decompose_projection().
ProjectionFactors allocate_factors(const MatrixRM& w, const Eigen::VectorXf& bias,
                                   const GroupSpec& spec);

/// Decomposes W ([num_kv_heads·head_dim, d_model]) group by group. `whitening` (the layer's
/// Cholesky factor, dim d_model) selects the whitened SVD; nullptr gives the plain SVD. `bias`
/// ([num_kv_heads·head_dim] or empty) is copied into the factors unchanged.
/// Throws Error(kInvalidArgument) for inconsistent shapes or spec, kNumericalError when an SVD
/// fails.
Decomposition decompose_projection(const MatrixRM& w, const Eigen::VectorXf& bias,
                                   const GroupSpec& spec, const Whitening* whitening,
                                   const DecomposeOptions& options = {});

}  // namespace latentkv
