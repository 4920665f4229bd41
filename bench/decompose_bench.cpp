// Decomposition cost on the CPU (issue 3): whitened SVD of one projection at Llama-7B size
// (4096×4096) and SmolLM2 size (d_model 576), the split between Cholesky and SVD, BDCSVD vs
// JacobiSVD, and Gram accumulation throughput.
//
// Γ is a random well-conditioned SPD matrix, I + S/(2√(2d)) with S a symmetric Gaussian matrix
// (spectrum inside [0.5, 1.5]); W has N(0, 1/d) entries. Numbers depend on the core count: run
// with OMP_NUM_THREADS set to the cores you actually have.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <chrono>
#include <random>

#include "latentkv/compress/calib_stats.h"
#include "latentkv/compress/whitened_svd.h"
#include "latentkv/model/llama.h"

namespace latentkv {
namespace {

Eigen::MatrixXd gaussian(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd m(rows, cols);
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) m(i, j) = normal(rng);
  return m;
}

Eigen::MatrixXd well_conditioned_gram(int d) {
  const Eigen::MatrixXd r = gaussian(d, d, 1);
  Eigen::MatrixXd g = (r + r.transpose()) / (4.0 * std::sqrt(2.0 * d));
  g.diagonal().array() += 1.0;
  return g;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Whole pipeline for one [m, d] projection at rank m/2: Cholesky of Γ, W·L, thin SVD, triangular
// solve. Counters split the time between the Cholesky and the rest.
template <typename Scalar>
void BM_WhitenedSvd(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0));
  const int d = static_cast<int>(state.range(1));
  const Eigen::MatrixXd gram = well_conditioned_gram(d);
  const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> w =
      (gaussian(m, d, 2) / std::sqrt(static_cast<double>(d))).cast<Scalar>();
  double chol = 0, svd = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const Whitening wh = whiten(gram);
    chol += seconds_since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    const LowRank<Scalar> lr = truncated_svd(w, m / 2, &wh, SvdAlgorithm::kBdc);
    svd += seconds_since(t1);
    benchmark::DoNotOptimize(lr.a.data());
  }
  state.counters["cholesky_s"] = benchmark::Counter(chol, benchmark::Counter::kAvgIterations);
  state.counters["svd_and_solve_s"] = benchmark::Counter(svd, benchmark::Counter::kAvgIterations);
}
BENCHMARK_TEMPLATE(BM_WhitenedSvd, double)
    ->Args({4096, 4096})
    ->Args({576, 576})
    ->Args({192, 576})
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK_TEMPLATE(BM_WhitenedSvd, float)
    ->Args({4096, 4096})
    ->Args({576, 576})
    ->Args({192, 576})
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

// Thin SVD of an [m, 576] block (m/64 heads of SmolLM2 width) by each routine: picks the default
// SvdAlgorithm.
template <SvdAlgorithm kAlg>
void BM_ThinSvd(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0));
  const Eigen::MatrixXd w = gaussian(m, 576, 3);
  for (auto _ : state) {
    const LowRank<double> lr = truncated_svd(w, 1, nullptr, kAlg);
    benchmark::DoNotOptimize(lr.b.data());
  }
}
BENCHMARK_TEMPLATE(BM_ThinSvd, SvdAlgorithm::kJacobi)
    ->Arg(8)
    ->Arg(16)
    ->Arg(32)
    ->Arg(48)
    ->Arg(64)
    ->Arg(96)
    ->Arg(128)
    ->Arg(192)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ThinSvd, SvdAlgorithm::kBdc)
    ->Arg(8)
    ->Arg(16)
    ->Arg(32)
    ->Arg(48)
    ->Arg(64)
    ->Arg(96)
    ->Arg(128)
    ->Arg(192)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Γ += xᵀx for a chunk of 512 tokens at d_model 576 and 4096.
void BM_GramAccumulate(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const MatrixRM x = gaussian(512, d, 4).cast<float>();
  LayerGram stats(d);
  for (auto _ : state) stats.accumulate(x);
  state.SetItemsProcessed(state.iterations() * x.rows());  // tokens/s
}
BENCHMARK(BM_GramAccumulate)->Arg(576)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace latentkv

BENCHMARK_MAIN();
