#include "latentkv/compress/hadamard.h"

#include <Eigen/QR>
#include <cmath>
#include <vector>

#include "latentkv/status.h"

namespace latentkv {
namespace {

using MatrixRMf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kPi = 3.14159265358979323846;

bool is_prime(int q) {
  if (q < 2) return false;
  for (int i = 2; static_cast<int64_t>(i) * i <= q; ++i)
    if (q % i == 0) return false;
  return true;
}

bool is_power_of_two(int n) { return n > 0 && (n & (n - 1)) == 0; }

bool paley_one(int k) { return k >= 4 && is_prime(k - 1) && (k - 1) % 4 == 3; }
bool paley_two(int k) { return k % 2 == 0 && is_prime(k / 2 - 1) && (k / 2 - 1) % 4 == 1; }

// Jacobsthal matrix of GF(q), q prime: Q_ij = χ(j − i), χ the quadratic character (χ(0) = 0).
Eigen::MatrixXd jacobsthal(int q) {
  std::vector<int> chi(q, -1);
  chi[0] = 0;
  for (int64_t x = 1; x < q; ++x) chi[(x * x) % q] = 1;
  Eigen::MatrixXd m(q, q);
  for (int i = 0; i < q; ++i)
    for (int j = 0; j < q; ++j) m(i, j) = chi[((j - i) % q + q) % q];
  return m;
}

// splitmix64: a tiny, well-mixed generator whose output is fully specified.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1]: 53 random bits, never 0 (log() below needs that).
  double uniform() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
  // Standard normal by Box–Muller (one value per call; the second is discarded for simplicity).
  double normal() {
    const double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * kPi * v);
  }

 private:
  uint64_t state_;
};

Eigen::MatrixXd random_orthogonal(int n, uint64_t seed) {
  SplitMix64 rng(seed);
  Eigen::MatrixXd g(n, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) g(i, j) = rng.normal();
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ();
  // Make diag(R) positive so that Q is Haar-distributed (not biased by Householder signs).
  const Eigen::MatrixXd& r = qr.matrixQR();
  for (int j = 0; j < n; ++j)
    if (r(j, j) < 0) q.col(j) *= -1.0;
  return q;
}

}  // namespace

int hadamard_base_order(int n) {
  if (n < 1) return 0;
  if (is_power_of_two(n)) return 1;
  // Smallest K = n / 2^m that has a Paley construction (K is a multiple of 4 for n > 2).
  int best = 0;
  for (int p = 1; n % p == 0; p <<= 1) {
    const int k = n / p;
    if (k % 4 == 0 && (paley_one(k) || paley_two(k))) best = k;
  }
  return best;
}

Eigen::MatrixXd paley_hadamard(int k) {
  if (paley_one(k)) {
    const int q = k - 1;
    Eigen::MatrixXd h = Eigen::MatrixXd::Identity(k, k);
    h.block(0, 1, 1, q).setOnes();
    h.block(1, 0, q, 1).setConstant(-1.0);
    h.block(1, 1, q, q) += jacobsthal(q);
    return h;
  }
  if (paley_two(k)) {
    const int q = k / 2 - 1;
    Eigen::MatrixXd c = Eigen::MatrixXd::Zero(q + 1, q + 1);
    c.block(0, 1, 1, q).setOnes();
    c.block(1, 0, q, 1).setOnes();
    c.block(1, 1, q, q) = jacobsthal(q);
    Eigen::Matrix2d zero_block, one_block;
    zero_block << 1, -1, -1, -1;
    one_block << 1, 1, 1, -1;
    Eigen::MatrixXd h(k, k);
    for (int i = 0; i <= q; ++i)
      for (int j = 0; j <= q; ++j)
        h.block<2, 2>(2 * i, 2 * j) = c(i, j) == 0 ? zero_block : c(i, j) * one_block;
    return h;
  }
  LKV_THROW(StatusCode::kUnsupported, "no Paley Hadamard matrix of order ", k,
            " (needs order-1 a prime = 3 mod 4, or order/2-1 a prime = 1 mod 4)");
}

Rotation Rotation::make(int n, RotationMode mode, uint64_t seed) {
  LKV_CHECK_ARG(n >= 1, "rotation size must be at least 1, got ", n);
  Rotation r;
  r.n_ = n;
  const int k = mode == RotationMode::kRandomOrthogonal ? 0 : hadamard_base_order(n);
  if (k > 0) {
    r.k_ = k;
    r.p_ = n / k;
    if (k > 1) r.h_k_ = paley_hadamard(k);
    return r;
  }
  if (mode == RotationMode::kHadamard)
    LKV_THROW(StatusCode::kUnsupported, "rank ", n,
              " has no Hadamard construction (needs K*2^m with K a Paley order); use the "
              "hadamard-or-random rotation mode or another rank");
  r.dense_ = random_orthogonal(n, seed);
  return r;
}

Eigen::MatrixXd Rotation::matrix() const {
  Eigen::MatrixXd m = Eigen::MatrixXd::Identity(n_, n_);
  for (int j = 0; j < n_; ++j) apply(m.col(j).data(), /*transpose=*/false);
  return m;
}

template <typename T>
void Rotation::apply(T* x, bool transpose) const {
  if (!is_hadamard()) {
    const Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> v(x, n_);
    const Eigen::VectorXd in = v.template cast<double>();
    const Eigen::VectorXd out = transpose ? (dense_.transpose() * in).eval() : (dense_ * in).eval();
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(x, n_) = out.cast<T>();
    return;
  }
  // x viewed as a row-major K×P matrix X: (H_K ⊗ H_P) x = H_K X H_P (H_P symmetric).
  for (int a = 0; a < k_; ++a) fwht(x + static_cast<int64_t>(a) * p_, p_);
  if (k_ > 1) {
    std::vector<double> col(k_);
    for (int b = 0; b < p_; ++b) {
      for (int c = 0; c < k_; ++c) col[c] = x[static_cast<int64_t>(c) * p_ + b];
      for (int a = 0; a < k_; ++a) {
        double s = 0.0;
        for (int c = 0; c < k_; ++c) s += (transpose ? h_k_(c, a) : h_k_(a, c)) * col[c];
        x[static_cast<int64_t>(a) * p_ + b] = static_cast<T>(s);
      }
    }
  }
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(n_)));
  for (int i = 0; i < n_; ++i) x[i] *= scale;
}

template void Rotation::apply<float>(float*, bool) const;
template void Rotation::apply<double>(double*, bool) const;

void fold_rotation(ProjectionFactors& factors, RotationMode mode, uint64_t seed) {
  factors.validate();
  LKV_CHECK_ARG(factors.rotation == 0, "fold_rotation: factors are already rotated (rotation ",
                factors.rotation, ")");
  const int d = factors.d_model;
  const int m = factors.group_size * factors.head_dim;
  // Build every rotation first so that an unsupported rank leaves the factors untouched.
  std::vector<Rotation> rotations;
  for (int g = 0; g < factors.num_groups(); ++g)
    rotations.push_back(Rotation::make(factors.ranks[g], mode, seed + g));
  for (int g = 0; g < factors.num_groups(); ++g) {
    const int r = factors.ranks[g];
    const Rotation& rot = rotations[g];
    // A_g ← Rᵀ A_g: rotate every column of A_g; B_g ← B_g R: rotate every row of B_g. In fp64.
    Eigen::Map<MatrixRMf> a(factors.a.data() + static_cast<size_t>(factors.rank_offset(g)) * d, r,
                            d);
    Eigen::Map<MatrixRMf> b(factors.b.data() + factors.b_offset(g), m, r);
    Eigen::VectorXd buf(r);
    for (int j = 0; j < d; ++j) {
      buf = a.col(j).cast<double>();
      rot.rotate(buf.data());
      a.col(j) = buf.cast<float>();
    }
    for (int i = 0; i < m; ++i) {
      buf = b.row(i).transpose().cast<double>();
      rot.rotate(buf.data());
      b.row(i) = buf.transpose().cast<float>();
    }
  }
  factors.rotation = factors.uniform_rank() ? factors.ranks.front() : -1;
}

}  // namespace latentkv
