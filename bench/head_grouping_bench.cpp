// Head-similarity grouping of keys (design §3.4): time of each partition method (0 consecutive,
// 1 greedy, 2 swap refinement, 3 exhaustive, 4 best whitened error of 0-2) and, as counters,
// its CKA objective and the whitened relative error of the grouped decomposition at a fixed rank
// (25 % of the group width), on synthetic keys with planted structure.
//
// Keys: num_kv_heads heads of head_dim 64 over d_model 256, in a shuffled order so that the
// consecutive grouping is uninformed. Structures:
//   planted  (0): head h is an orthogonal mix of one of num_kv_heads/group_size prototype heads
//   plus
//                 Gaussian noise of relative size 1 — a good grouping can find the prototypes;
//   mixture  (1): head h is a random mixture (squared-uniform weights) of the same prototypes, each
//                 orthogonally mixed, plus noise 0.5 — soft clusters, where greedy choices can err;
//   random   (2): unstructured Gaussian heads — grouping should not matter.
// Γ comes from correlated random inputs.
#include <benchmark/benchmark.h>

#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "latentkv/compress/group_decompose.h"
#include "latentkv/compress/head_grouping.h"

namespace latentkv {
namespace {

constexpr int kHeadDim = 64;
constexpr int kDModel = 256;

Eigen::MatrixXd gaussian(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd m(rows, cols);
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) m(i, j) = normal(rng);
  return m;
}

struct Problem {
  MatrixRM w_k;
  Whitening whitening;
};

Problem make_problem(int heads, int group_size, int structure) {
  const int clusters = heads / group_size;
  std::vector<int> cluster_of(heads);
  for (int h = 0; h < heads; ++h) cluster_of[h] = h % clusters;
  std::shuffle(cluster_of.begin(), cluster_of.end(), std::mt19937(heads));
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<double> uniform;
  Problem p;
  p.w_k.resize(heads * kHeadDim, kDModel);
  for (int h = 0; h < heads; ++h) {
    auto mixed_proto = [&](int c, uint64_t seed) {
      const Eigen::MatrixXd q = gaussian(kHeadDim, kHeadDim, seed).householderQr().householderQ();
      return (q * gaussian(kHeadDim, kDModel, 10 + c)).eval();
    };
    Eigen::MatrixXd head = Eigen::MatrixXd::Zero(kHeadDim, kDModel);
    if (structure == 0) {
      head = mixed_proto(cluster_of[h], 1000 + h) + gaussian(kHeadDim, kDModel, 2000 + h);
    } else if (structure == 1) {
      for (int c = 0; c < clusters; ++c) {
        const double u = uniform(rng);
        head += u * u * mixed_proto(c, 1000 + h * clusters + c);
      }
      head /= head.norm() / std::sqrt(double{kHeadDim} * kDModel);
      head += 0.5 * gaussian(kHeadDim, kDModel, 2000 + h);
    } else {
      head = gaussian(kHeadDim, kDModel, 3000 + h);
    }
    p.w_k.middleRows(h * kHeadDim, kHeadDim) = head.cast<float>();
  }
  Eigen::MatrixXd x = gaussian(4 * kDModel, kDModel, 5);
  x += x * gaussian(kDModel, kDModel, 6) * 0.3;
  p.whitening = whiten(x.transpose() * x);
  return p;
}

enum Method { kConsecutive, kGreedy, kSwap, kExhaustive, kBestError };

// Args: num_kv_heads, group_size, structure, method.
void BM_Grouping(benchmark::State& state) {
  const int heads = static_cast<int>(state.range(0));
  const int gs = static_cast<int>(state.range(1));
  const int structure = static_cast<int>(state.range(2));
  const Method method = static_cast<Method>(state.range(3));
  if (method == kExhaustive && count_partitions(heads, gs) > 1e7) {
    state.SkipWithError("too many partitions for exhaustive search");
    return;
  }
  const Problem p = make_problem(heads, gs, structure);
  const Eigen::MatrixXd cka = head_similarity_cka(p.w_k, heads, kHeadDim, &p.whitening);
  std::vector<int> groups;
  for (auto _ : state) {
    switch (method) {
      case kConsecutive:
        groups = consecutive_group_heads(heads);
        break;
      case kGreedy:
        groups = group_heads_greedy(cka, gs);
        break;
      case kSwap:
        groups = group_heads_search(cka, gs, {/*max_exhaustive=*/0});
        break;
      case kExhaustive:
        groups = group_heads_search(cka, gs, {std::numeric_limits<double>::infinity()});
        break;
      case kBestError:
        groups = similarity_group_heads(p.w_k, heads, kHeadDim, gs, &p.whitening,
                                        GroupingMethod::kBestError, gs * kHeadDim / 4);
        break;
    }
    benchmark::DoNotOptimize(groups.data());
  }
  const GroupSpec spec{heads, kHeadDim, gs, {gs * kHeadDim / 4}, groups};
  state.counters["objective"] = grouping_objective(cka, groups, gs);
  state.counters["rel_error"] =
      decompose_projection(p.w_k, Eigen::VectorXf(), spec, &p.whitening).relative_error();
}

void grouping_args(benchmark::internal::Benchmark* b) {
  for (auto [heads, gs] : {std::pair{8, 2}, std::pair{16, 4}, std::pair{32, 4}})
    for (int structure : {0, 1, 2})
      for (int method : {kConsecutive, kGreedy, kSwap, kExhaustive, kBestError})
        b->Args({heads, gs, structure, method});
}
BENCHMARK(BM_Grouping)
    ->Apply(grouping_args)
    ->ArgNames({"heads", "group_size", "structure", "method"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace latentkv

BENCHMARK_MAIN();
