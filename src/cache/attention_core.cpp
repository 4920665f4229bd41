#include "cache/attention_core.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "latentkv/status.h"
#include "model/forward_ops.h"

namespace latentkv::detail {

namespace {
// Query rows per attention task: a block only scores the keys its last row can see, so a causal
// prefill wastes at most one block of masked work per row.
constexpr int64_t kQueryBlock = 64;
}  // namespace

void RopeAngles::append(const std::vector<int64_t>& positions,
                        const std::vector<double>& inv_freq) {
  half = static_cast<int>(inv_freq.size());
  const size_t old = cos.size();
  cos.resize(old + positions.size() * half);
  sin.resize(old + positions.size() * half);
  for (size_t i = 0; i < positions.size(); ++i)
    for (int f = 0; f < half; ++f) {
      const double angle = static_cast<double>(positions[i]) * inv_freq[f];
      cos[old + i * half + f] = std::cos(angle);
      sin[old + i * half + f] = std::sin(angle);
    }
}

void RopeAngles::rotate(float* row, int heads, int64_t t) const {
  const double* c = &cos[t * half];
  const double* s = &sin[t * half];
  for (int h = 0; h < heads; ++h) {
    float* x = row + int64_t{h} * 2 * half;
    for (int f = 0; f < half; ++f) {
      const double a = x[f], b = x[f + half];
      x[f] = static_cast<float>(a * c[f] - b * s[f]);
      x[f + half] = static_cast<float>(b * c[f] + a * s[f]);
    }
  }
}

void causal_attention(const MatrixRM& q, int head_dim, const std::vector<RowsView>& keys,
                      const std::vector<RowsView>& values, const std::vector<int64_t>& out_col,
                      const std::vector<int64_t>& visible, MatrixRM& out,
                      std::vector<std::vector<float>>& scratch) {
  using ConstMap = Eigen::Map<const MatrixRM, 0, Eigen::OuterStride<>>;
  const int64_t n = q.rows(), heads = static_cast<int64_t>(keys.size());
  const int64_t row_blocks = (n + kQueryBlock - 1) / kQueryBlock;
  const int64_t widest = *std::max_element(visible.begin(), visible.end());
  const int64_t work = n * widest * heads * 2 * head_dim;
  scratch.resize(static_cast<size_t>(omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic) if (work >= kParallelWork)
  for (int64_t task = 0; task < heads * row_blocks; ++task) {
    const int64_t h = task / row_blocks, r0 = (task % row_blocks) * kQueryBlock;
    const int64_t rows = std::min(kQueryBlock, n - r0);
    const int64_t limit = *std::max_element(visible.begin() + r0, visible.begin() + r0 + rows);
    const ConstMap kh(keys[h].data, limit, head_dim, Eigen::OuterStride<>(keys[h].stride));
    const ConstMap vh(values[h].data, limit, values[h].cols,
                      Eigen::OuterStride<>(values[h].stride));
    // Every score row starts on a 64-byte boundary: Eigen's vectorized exp() peels the unaligned
    // head of a row into scalar std::exp, which rounds differently, so without this the result
    // would depend on which thread's buffer (and its address) a task landed on — enough to flip
    // low-bit quantization codes downstream and make perplexity vary from run to run.
    constexpr int64_t kAlignFloats = 16;
    const int64_t ld = (limit + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    std::vector<float>& buf = scratch[omp_get_thread_num()];
    if (static_cast<int64_t>(buf.size()) < rows * ld + kAlignFloats)
      buf.resize(static_cast<size_t>(rows * ld + kAlignFloats));
    const uintptr_t addr = reinterpret_cast<uintptr_t>(buf.data());
    float* base = buf.data() + ((64 - addr % 64) % 64) / sizeof(float);
    Eigen::Map<MatrixRM, 0, Eigen::OuterStride<>> s(base, rows, limit, Eigen::OuterStride<>(ld));
    s.noalias() = q.block(r0, h * head_dim, rows, head_dim) * kh.transpose();
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t seen = visible[r0 + r];
      auto row = s.row(r).head(seen).array();
      row = (row - row.maxCoeff()).exp();
      double sum = 0.0;
      for (int64_t t = 0; t < seen; ++t) sum += row[t];
      row *= static_cast<float>(1.0 / sum);
      if (seen < limit) s.row(r).tail(limit - seen).setZero();
    }
    out.block(r0, out_col[h], rows, values[h].cols).noalias() = s * vh;
  }
}

void project(const Eigen::Ref<const MatrixRM>& x, const MatrixRM& w, Eigen::Ref<MatrixRM> y) {
  if (x.rows() * w.rows() * w.cols() >= kParallelWork) {
    linear(x, w, y);
  } else {
    y.noalias() = x * w.transpose();
  }
}

void check_finite_rows(const Eigen::Ref<const MatrixRM>& x, const char* what) {
  if (x.allFinite()) return;
  for (int64_t i = 0; i < x.rows(); ++i)
    for (int64_t j = 0; j < x.cols(); ++j)
      if (!std::isfinite(x(i, j)))
        LKV_THROW(StatusCode::kNumericalError, what, ": hidden state of chunk row ", i,
                  " has a non-finite value at column ", j);
}

void check_new_positions(const std::vector<int64_t>& positions, int64_t last) {
  for (size_t i = 0; i < positions.size(); ++i) {
    LKV_CHECK_ARG(positions[i] >= 0, "position ", positions[i], " is negative");
    LKV_CHECK_ARG(positions[i] > last, "positions must increase: position ", positions[i],
                  " follows ", last);
    last = positions[i];
  }
}

std::vector<int64_t> query_visibility(const Eigen::Ref<const MatrixRM>& x, int d_model,
                                      const std::vector<int64_t>& positions,
                                      const std::vector<int64_t>& cached, const char* what) {
  const int64_t n = x.rows();
  LKV_CHECK_ARG(n >= 1 && x.cols() == d_model, what, " input is [", n, ", ", x.cols(),
                "], expected [n >= 1, ", d_model, "]");
  LKV_CHECK_ARG(static_cast<int64_t>(positions.size()) == n, positions.size(), " positions for ", n,
                " queries");
  LKV_CHECK_ARG(!cached.empty(), what, " over an empty cache");
  check_finite_rows(x, what);
  std::vector<int64_t> visible(n);
  for (int64_t i = 0; i < n; ++i) {
    LKV_CHECK_ARG(i == 0 || positions[i] >= positions[i - 1],
                  "query positions must not decrease: ", positions[i], " follows ",
                  positions[i - 1]);
    visible[i] = std::upper_bound(cached.begin(), cached.end(), positions[i]) - cached.begin();
    LKV_CHECK_ARG(visible[i] >= 1, "query at position ", positions[i],
                  " precedes every cached token (first at ", cached.front(), ")");
  }
  return visible;
}

}  // namespace latentkv::detail
