// Orthonormal rotations of the latent space, folded into the factors (design §3.7).
//
// SVD orders latent channels by energy, so a few channels carry most of it and ruin per-token
// low-bit quantization. Folding an orthonormal R (r×r) per group, A ← Rᵀ A and B ← B R, leaves
// B·A unchanged and turns the latent row vector h = x·Aᵀ into h·R, which spreads every channel's
// energy over all r channels.
//
// Sizes:
//  * Hadamard: r = K·2^m with R = (H_K ⊗ H_{2^m}) / √r, H_{2^m} Sylvester (applied by the fast
//    Walsh–Hadamard transform) and H_K a Paley matrix generated here: Paley I (H_K = I + S,
//    S = [[0, 1ᵀ], [−1, Q]], Q the Jacobsthal matrix of GF(q)) when q = K − 1 is a prime ≡ 3 mod
//    4 (orders 12, 20, 24, 44, 48, 60, ...), Paley II (C = [[0, 1ᵀ], [1, Q]], entries 0 → [[1, −1],
//    [−1, −1]] and ±1 → ±[[1, 1], [1, −1]]) when q = K/2 − 1 is a prime ≡ 1 mod 4 (orders 28, 36,
//    60, ...). The smallest such K is used. Prime powers q are not constructed.
//  * Random orthogonal: a Haar-distributed matrix from the QR decomposition of a Gaussian matrix
//    (R-diagonal sign fix), drawn from a generator of our own (splitmix64 + Box–Muller) because
//    std::normal_distribution's output is implementation-defined. Any size; applied densely.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "latentkv/factors.h"

namespace latentkv {

/// Which rotation a size gets.
enum class RotationMode {
  kHadamard,          ///< Hadamard only; sizes without a construction are rejected
  kHadamardOrRandom,  ///< Hadamard where constructible, seeded random orthogonal otherwise
  kRandomOrthogonal,  ///< always the seeded random orthogonal matrix
};

/// The small Hadamard order K (1, or a Paley order ≥ 12) with n = K·2^m, or 0 when no
/// construction covers n. n = 1, 2, 4, 8, ... give K = 1.
int hadamard_base_order(int n);

/// The unnormalized Paley Hadamard matrix of order k (entries ±1, H Hᵀ = k I). Throws
/// Error(kUnsupported) unless k − 1 is a prime ≡ 3 mod 4 or k/2 − 1 a prime ≡ 1 mod 4.
Eigen::MatrixXd paley_hadamard(int k);

/// In-place unnormalized fast Walsh–Hadamard transform of x[n], n a power of two: x ← H_n x with
/// H_n the Sylvester matrix (symmetric), n·log2(n) additions.
template <typename T>
void fwht(T* x, int n) {
  for (int len = 1; len < n; len <<= 1)
    for (int i = 0; i < n; i += len << 1)
      for (int j = i; j < i + len; ++j) {
        const T u = x[j], v = x[j + len];
        x[j] = u + v;
        x[j + len] = u - v;
      }
}

/// An orthonormal r×r rotation with a fast way to apply it to latent vectors.
class Rotation {
 public:
  /// Builds the rotation of size n ≥ 1 under `mode`. `seed` picks the random matrix (unused for
  /// Hadamard sizes). Throws Error(kInvalidArgument) for n < 1 and Error(kUnsupported) when mode
  /// is kHadamard and n has no Hadamard construction.
  static Rotation make(int n, RotationMode mode = RotationMode::kHadamardOrRandom,
                       uint64_t seed = 0);

  int size() const { return n_; }
  bool is_hadamard() const { return dense_.size() == 0; }

  /// R as a dense orthonormal [n, n] matrix.
  Eigen::MatrixXd matrix() const;

  /// h ← h·R for one latent row vector h[n] (what folding does to a cached latent).
  void rotate(float* h) const { apply(h, /*transpose=*/true); }
  void rotate(double* h) const { apply(h, /*transpose=*/true); }
  /// h ← h·Rᵀ (undoes rotate()).
  void unrotate(float* h) const { apply(h, /*transpose=*/false); }
  void unrotate(double* h) const { apply(h, /*transpose=*/false); }

 private:
  // Column-vector form: x ← R x (transpose = false) or x ← Rᵀ x (transpose = true).
  template <typename T>
  void apply(T* x, bool transpose) const;

  int n_ = 0;
  int k_ = 1;              // Hadamard: base order; n = k_ · p_
  int p_ = 1;              // Hadamard: power-of-two factor
  Eigen::MatrixXd h_k_;    // Hadamard: unnormalized H_K (empty when K = 1)
  Eigen::MatrixXd dense_;  // random orthogonal: R itself
};

/// Folds a rotation into every group of `factors`: A_g ← R_gᵀ A_g, B_g ← B_g R_g with R_g of size
/// ranks[g] (group g uses seed + g for a random matrix). Sets factors.rotation to the group rank
/// when all ranks are equal, else to −1 (rotated, size = each group's rank). Throws
/// Error(kUnsupported) when a rank cannot be rotated under `mode`, kInvalidArgument when the
/// factors are inconsistent or already rotated.
void fold_rotation(ProjectionFactors& factors, RotationMode mode = RotationMode::kHadamardOrRandom,
                   uint64_t seed = 0);

}  // namespace latentkv
