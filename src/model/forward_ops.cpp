#include "model/forward_ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace latentkv::detail {

bool worth_threads(int64_t work) { return work >= kMinParallelWork && !omp_in_parallel(); }

// Threads split the output columns (rows of W) into contiguous slices, each a single-threaded
// Eigen product. Eigen's own OpenMP GEMM is not used: it synchronizes its threads with busy
// waits on shared packed panels, which for these skinny products (depth 576) was measured ~3x
// slower on 2 cores than one thread; independent slices need no synchronization but the join.
void linear(const Eigen::Ref<const MatrixRM>& x, const MatrixRM& w, Eigen::Ref<MatrixRM> y,
            bool accumulate) {
  const int64_t n = x.rows(), out = w.rows();
  auto slice = [&](int64_t o0, int64_t len) {
    auto yb = y.middleCols(o0, len);
    if (accumulate) {
      yb.noalias() += x * w.middleRows(o0, len).transpose();
    } else {
      yb.noalias() = x * w.middleRows(o0, len).transpose();
    }
  };
  // Below the threshold (which is under Eigen's own, 50000 per thread), Eigen stays serial too.
  if (!worth_threads(n * out * w.cols())) {
    slice(0, out);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t per = ((out + nt - 1) / nt + 15) / 16 * 16;  // whole SIMD packets per slice
    const int64_t o0 = std::min(out, t * per), len = std::min(per, out - o0);
    if (len > 0) slice(o0, len);
  }
}

void add_bias(Eigen::Ref<MatrixRM> y, const Eigen::VectorXf& bias) {
  if (bias.size() == 0) return;
  y.rowwise() += bias.transpose();
}

void rms_norm(const Eigen::Ref<const MatrixRM>& x, const Eigen::VectorXf& weight, double eps,
              Eigen::Ref<MatrixRM> y) {
  const int64_t n = x.rows(), d = x.cols();
#pragma omp parallel for schedule(static) if (worth_threads(n * d))
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x.row(i).data();
    double ss = 0.0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(xi[j]) * xi[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<float>(ss / d) + eps));
    y.row(i) = (x.row(i).array() * inv) * weight.transpose().array();
  }
}

void silu_mul(Eigen::Ref<MatrixRM> gate, const Eigen::Ref<const MatrixRM>& up) {
  const int64_t n = gate.rows();
  // exp() costs ~10 multiply-adds: weigh the work accordingly.
#pragma omp parallel for schedule(static) if (worth_threads(10 * n * gate.cols()))
  for (int64_t i = 0; i < n; ++i) {
    auto g = gate.row(i).array();
    g = g / (1.0f + (-g).exp()) * up.row(i).array();
  }
}

}  // namespace latentkv::detail
