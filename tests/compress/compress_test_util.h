// Seeded random problems shared by the compression tests.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <random>

#include "latentkv/model/llama.h"
#include "latentkv/status.h"

namespace latentkv::testing {

/// [rows, cols] matrix of N(0, 1) entries from a fixed seed.
inline Eigen::MatrixXd random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd m(rows, cols);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) m(i, j) = normal(rng);
  return m;
}

/// Calibration-like inputs: [tokens, d] with column scales spread over two decades and a shared
/// component, so that Γ is far from a multiple of I and whitening changes the answer.
inline Eigen::MatrixXd random_inputs(int64_t tokens, int64_t d, uint64_t seed) {
  Eigen::MatrixXd x = random_matrix(tokens, d, seed);
  const Eigen::MatrixXd mix = random_matrix(d, d, seed + 1) * 0.3;
  x += x * mix;
  for (int64_t j = 0; j < d; ++j) x.col(j) *= std::pow(10.0, 2.0 * j / d - 1.0);
  return x;
}

/// Γ = XᵀX of random_inputs (exactly symmetric).
inline Eigen::MatrixXd random_gram(int64_t tokens, int64_t d, uint64_t seed) {
  const Eigen::MatrixXd x = random_inputs(tokens, d, seed);
  Eigen::MatrixXd g = x.transpose() * x;
  return (0.5 * (g + g.transpose())).eval();
}

/// fp32 row-major weight with N(0, 1/d) entries.
inline MatrixRM random_weight(int64_t rows, int64_t cols, uint64_t seed) {
  return (random_matrix(rows, cols, seed) / std::sqrt(static_cast<double>(cols))).cast<float>();
}

/// The StatusCode of the Error that fn() throws, kOk when it throws none.
template <typename Fn>
StatusCode code_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return StatusCode::kOk;
}

}  // namespace latentkv::testing
