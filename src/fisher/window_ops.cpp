#include "fisher/window_ops.h"

#include <algorithm>
#include <cmath>

namespace latentkv::fisher_detail {

namespace {
// Rows of logits formed at once: 64 × 49152 fp32 is 12 MB, enough to keep the GEMM efficient.
constexpr int64_t kLogitRows = 64;
// Rows per work item of the row-wise loops; dynamic scheduling so that a descheduled thread on a
// shared machine holds up only its current chunk.
constexpr int64_t kRowChunk = 32;
}  // namespace

template <typename Scalar>
void rms_norm_forward(const MatrixRMT<Scalar>& x, const Eigen::VectorXf& weight, double eps,
                      MatrixRMT<Scalar>* y, Vector<Scalar>* inv_rms) {
  const int64_t n = x.rows(), d = x.cols();
  y->resize(n, d);
  inv_rms->resize(n);
  const auto& w = as<Scalar>(weight);
#pragma omp parallel for schedule(dynamic, kRowChunk) if (n * d >= kMinParallelWork)
  for (int64_t t = 0; t < n; ++t) {
    // Mean of squares in double, as the inference path does.
    double ss = 0.0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(x(t, j)) * x(t, j);
    const Scalar inv = static_cast<Scalar>(1.0 / std::sqrt(ss / d + eps));
    (*inv_rms)(t) = inv;
    y->row(t) = (x.row(t).array() * inv) * w.transpose().array();
  }
}

template <typename Scalar>
void rms_norm_backward(const MatrixRMT<Scalar>& x, const Vector<Scalar>& inv_rms,
                       const Eigen::VectorXf& weight, const MatrixRMT<Scalar>& dy,
                       MatrixRMT<Scalar>* dx) {
  // y_j = x_j·r·w_j with r = (mean(x²) + eps)^(-1/2), dr/dx_j = -r³·x_j/d, hence with u = w∘dy:
  // dx_j = r·u_j - x_j·r³·(u·x)/d.
  const int64_t n = x.rows(), d = x.cols();
  const auto& w = as<Scalar>(weight);
#pragma omp parallel for schedule(dynamic, kRowChunk) if (n * d >= kMinParallelWork)
  for (int64_t t = 0; t < n; ++t) {
    const Scalar r = inv_rms(t);
    const auto u = (dy.row(t).array() * w.transpose().array()).eval();
    const Scalar ux = (u * x.row(t).array()).sum();
    dx->row(t).array() += r * u - x.row(t).array() * (r * r * r * ux / static_cast<Scalar>(d));
  }
}

template <typename Scalar>
void swiglu_forward(const MatrixRMT<Scalar>& gate, const MatrixRMT<Scalar>& up,
                    MatrixRMT<Scalar>* m) {
  m->resize(gate.rows(), gate.cols());
#pragma omp parallel for schedule(dynamic, kRowChunk) if (gate.size() >= kMinParallelWork)
  for (int64_t t = 0; t < gate.rows(); ++t) {
    const auto g = gate.row(t).array();
    m->row(t).array() = g / (Scalar(1) + (-g).exp()) * up.row(t).array();
  }
}

template <typename Scalar>
void swiglu_backward(const MatrixRMT<Scalar>& gate, const MatrixRMT<Scalar>& up,
                     MatrixRMT<Scalar>* dm, MatrixRMT<Scalar>* dup) {
  // m = g·σ(g)·u: dm/du = g·σ(g), dm/dg = u·σ(g)·(1 + g·(1 - σ(g))).
  dup->resize(gate.rows(), gate.cols());
#pragma omp parallel for schedule(dynamic, kRowChunk) if (gate.size() >= kMinParallelWork)
  for (int64_t t = 0; t < gate.rows(); ++t) {
    const auto g = gate.row(t).array();
    const auto sig = (Scalar(1) / (Scalar(1) + (-g).exp())).eval();
    auto dmt = dm->row(t).array();
    dup->row(t).array() = dmt * g * sig;
    dmt = dmt * up.row(t).array() * sig * (Scalar(1) + g * (Scalar(1) - sig));
  }
}

template <typename Scalar>
double lm_head_loss_backward(const MatrixRMT<Scalar>& z, const MatrixRM& lm_head,
                             const std::vector<TokenId>& tokens, MatrixRMT<Scalar>* dz) {
  const int64_t n = z.rows();
  const int64_t targets = n - 1;
  dz->setZero(n, z.cols());
  const auto& head = as<Scalar>(lm_head);
  double loss = 0.0;
  MatrixRMT<Scalar> logits;
  for (int64_t r0 = 0; r0 < targets; r0 += kLogitRows) {
    const int64_t rows = std::min(kLogitRows, targets - r0);
    gemm(z.middleRows(r0, rows), head.transpose(), &logits);
    double block_loss = 0.0;
#pragma omp parallel for schedule(dynamic, 8) reduction(+ : block_loss) \
    if (logits.size() >= kMinParallelWork)
    for (int64_t i = 0; i < rows; ++i) {
      auto row = logits.row(i).array();
      const int target = tokens[r0 + i + 1];
      const Scalar mx = row.maxCoeff();
      const double target_logit = static_cast<double>(row(target) - mx);
      row = (row - mx).exp();
      const double sum = static_cast<double>(row.sum());
      // loss_t = log Σ exp(l - max) - (l_target - max).
      block_loss += std::log(sum) - target_logit;
      // d loss / d logits = (softmax - onehot) / targets.
      row *= static_cast<Scalar>(1.0 / (sum * targets));
      row(target) -= static_cast<Scalar>(1.0 / targets);
    }
    loss += block_loss;
    auto dz_rows = dz->middleRows(r0, rows);
    gemm(logits, head, &dz_rows);
  }
  return loss / targets;
}

#define LKV_INSTANTIATE(S)                                                                        \
  template void rms_norm_forward<S>(const MatrixRMT<S>&, const Eigen::VectorXf&, double,          \
                                    MatrixRMT<S>*, Vector<S>*);                                   \
  template void rms_norm_backward<S>(const MatrixRMT<S>&, const Vector<S>&,                       \
                                     const Eigen::VectorXf&, const MatrixRMT<S>&, MatrixRMT<S>*); \
  template void swiglu_forward<S>(const MatrixRMT<S>&, const MatrixRMT<S>&, MatrixRMT<S>*);       \
  template void swiglu_backward<S>(const MatrixRMT<S>&, const MatrixRMT<S>&, MatrixRMT<S>*,       \
                                   MatrixRMT<S>*);                                                \
  template double lm_head_loss_backward<S>(const MatrixRMT<S>&, const MatrixRM&,                  \
                                           const std::vector<TokenId>&, MatrixRMT<S>*);
LKV_INSTANTIATE(float)
LKV_INSTANTIATE(double)
#undef LKV_INSTANTIATE

}  // namespace latentkv::fisher_detail
