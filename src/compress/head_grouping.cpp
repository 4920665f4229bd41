#include "latentkv/compress/head_grouping.h"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>

#include "latentkv/compress/group_decompose.h"
#include "latentkv/factors.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

void check_grouping_args(const Eigen::MatrixXd& similarity, int group_size) {
  const int n = static_cast<int>(similarity.rows());
  LKV_CHECK_ARG(n > 0 && similarity.cols() == n, "grouping: similarity matrix is ",
                similarity.rows(), "x", similarity.cols(), ", expected square and non-empty");
  LKV_CHECK_ARG(group_size > 0 && n % group_size == 0, "grouping: group_size ", group_size,
                " does not divide num_kv_heads ", n);
  LKV_CHECK_ARG(similarity.allFinite(), "grouping: similarity matrix has a NaN or Inf entry");
}

using Groups = std::vector<std::vector<int>>;

// Canonical flat form: slots ascending inside a group, groups ordered by their smallest head.
std::vector<int> flatten(Groups groups) {
  for (auto& g : groups) std::sort(g.begin(), g.end());
  std::sort(groups.begin(), groups.end());
  std::vector<int> flat;
  for (const auto& g : groups) flat.insert(flat.end(), g.begin(), g.end());
  return flat;
}

Groups split(const std::vector<int>& flat, int group_size) {
  Groups groups;
  for (size_t i = 0; i < flat.size(); i += group_size)
    groups.emplace_back(flat.begin() + i, flat.begin() + i + group_size);
  return groups;
}

// Depth-first enumeration of all partitions: each group starts with the smallest unassigned head
// (so that every partition is produced once) and its other members are chosen in increasing
// order. The objective is summed incrementally as members are added.
class Exhaustive {
 public:
  Exhaustive(const Eigen::MatrixXd& sim, int group_size)
      : sim_(sim), n_(static_cast<int>(sim.rows())), gs_(group_size), used_(n_, false) {}

  std::vector<int> run() {
    open_group(0.0);
    return best_;
  }

 private:
  void open_group(double objective) {
    int first = 0;
    while (first < n_ && used_[first]) ++first;
    if (first == n_) {
      if (objective > best_objective_) {
        best_objective_ = objective;
        best_ = current_;
      }
      return;
    }
    used_[first] = true;
    current_.push_back(first);
    add_members(first + 1, gs_ - 1, objective);
    current_.pop_back();
    used_[first] = false;
  }

  void add_members(int start, int left, double objective) {
    if (left == 0) {
      open_group(objective);
      return;
    }
    const size_t group_begin = current_.size() - (gs_ - left);
    for (int h = start; h <= n_ - left; ++h) {
      if (used_[h]) continue;
      double gain = 0.0;
      for (size_t i = group_begin; i < current_.size(); ++i) gain += sim_(h, current_[i]);
      used_[h] = true;
      current_.push_back(h);
      add_members(h + 1, left - 1, objective + gain);
      current_.pop_back();
      used_[h] = false;
    }
  }

  const Eigen::MatrixXd& sim_;
  const int n_, gs_;
  std::vector<bool> used_;
  std::vector<int> current_, best_;
  double best_objective_ = -std::numeric_limits<double>::infinity();
};

// Best-improvement swap refinement; each accepted swap raises the objective, so it terminates.
std::vector<int> refine_by_swaps(const Eigen::MatrixXd& sim, std::vector<int> start,
                                 int group_size) {
  Groups groups = split(start, group_size);
  const int num_groups = static_cast<int>(groups.size());
  // Summed similarity of head h to the members of group p other than `except`.
  auto affinity = [&](int h, int p, int except) {
    double s = 0.0;
    for (int m : groups[p])
      if (m != except) s += sim(h, m);
    return s;
  };
  constexpr double kMinGain = 1e-12;
  while (true) {
    double best_gain = kMinGain;
    int bp = -1, bi = -1, bq = -1, bj = -1;
    for (int p = 0; p < num_groups; ++p)
      for (int q = p + 1; q < num_groups; ++q)
        for (int i = 0; i < group_size; ++i)
          for (int j = 0; j < group_size; ++j) {
            const int a = groups[p][i], b = groups[q][j];
            const double gain =
                affinity(b, p, a) - affinity(a, p, a) + affinity(a, q, b) - affinity(b, q, b);
            if (gain > best_gain) {
              best_gain = gain;
              bp = p, bi = i, bq = q, bj = j;
            }
          }
    if (bp < 0) break;
    std::swap(groups[bp][bi], groups[bq][bj]);
  }
  return flatten(groups);
}

}  // namespace

Eigen::MatrixXd head_similarity_cka(const MatrixRM& w_k, int num_kv_heads, int head_dim,
                                    const Whitening* whitening) {
  LKV_CHECK_ARG(num_kv_heads > 0 && head_dim > 0,
                "CKA: num_kv_heads and head_dim must be positive");
  LKV_CHECK_ARG(w_k.rows() == int64_t{num_kv_heads} * head_dim, "CKA: W_k has ", w_k.rows(),
                " rows, expected num_kv_heads*head_dim = ", int64_t{num_kv_heads} * head_dim);
  LKV_CHECK_ARG(whitening == nullptr || whitening->dim() == w_k.cols(), "CKA: whitening is ",
                whitening ? whitening->dim() : 0, "-dimensional, W_k has ", w_k.cols(), " columns");
  LKV_CHECK_ARG(w_k.allFinite(), "CKA: W_k has a NaN or Inf entry");
  // Row block i of Y is X_iᵀ = W_{k,i} L; centring X_i over its rows = centring each row of Y.
  Eigen::MatrixXd y = w_k.cast<double>();
  if (whitening) y = y * whitening->l.triangularView<Eigen::Lower>();
  y.colwise() -= y.rowwise().mean();
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(y.rows(), y.rows());
  gram.selfadjointView<Eigen::Lower>().rankUpdate(y);
  gram = gram.selfadjointView<Eigen::Lower>();

  auto block_sq = [&](int i, int j) {
    return gram.block(int64_t{i} * head_dim, int64_t{j} * head_dim, head_dim, head_dim)
        .squaredNorm();
  };
  Eigen::VectorXd self(num_kv_heads);
  for (int i = 0; i < num_kv_heads; ++i) self(i) = std::sqrt(block_sq(i, i));
  Eigen::MatrixXd cka = Eigen::MatrixXd::Identity(num_kv_heads, num_kv_heads);
  for (int i = 0; i < num_kv_heads; ++i)
    for (int j = 0; j < i; ++j) {
      const double denom = self(i) * self(j);
      cka(i, j) = cka(j, i) = denom > 0 ? block_sq(i, j) / denom : 0.0;
    }
  return cka;
}

double grouping_objective(const Eigen::MatrixXd& similarity, const std::vector<int>& group_heads,
                          int group_size) {
  check_grouping_args(similarity, group_size);
  LKV_CHECK_ARG(group_heads.size() == static_cast<size_t>(similarity.rows()),
                "grouping: group_heads has ", group_heads.size(), " entries for ",
                similarity.rows(), " heads");
  double total = 0.0;
  for (size_t g = 0; g < group_heads.size(); g += group_size)
    for (int s = 0; s < group_size; ++s)
      for (int t = 0; t < s; ++t) total += similarity(group_heads[g + s], group_heads[g + t]);
  return total;
}

std::vector<int> group_heads_greedy(const Eigen::MatrixXd& similarity, int group_size) {
  check_grouping_args(similarity, group_size);
  const int n = static_cast<int>(similarity.rows());
  if (group_size == 1 || group_size == n) return consecutive_group_heads(n);
  std::vector<bool> used(n, false);
  Groups groups;
  for (int made = 0; made < n / group_size; ++made) {
    int bi = -1, bj = -1;
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j)
        if (!used[i] && !used[j] && (bi < 0 || similarity(i, j) > similarity(bi, bj)))
          bi = i, bj = j;
    std::vector<int> group = {bi, bj};
    used[bi] = used[bj] = true;
    while (static_cast<int>(group.size()) < group_size) {
      int best = -1;
      double best_sum = 0.0;
      for (int h = 0; h < n; ++h) {
        if (used[h]) continue;
        double sum = 0.0;
        for (int m : group) sum += similarity(h, m);
        if (best < 0 || sum > best_sum) best = h, best_sum = sum;
      }
      group.push_back(best);
      used[best] = true;
    }
    groups.push_back(group);
  }
  return flatten(groups);
}

double count_partitions(int num_heads, int group_size) {
  LKV_CHECK_ARG(group_size > 0 && num_heads > 0 && num_heads % group_size == 0,
                "count_partitions: group_size ", group_size, " does not divide ", num_heads);
  const int k = num_heads / group_size;
  return std::exp(std::lgamma(num_heads + 1.0) - k * std::lgamma(group_size + 1.0) -
                  std::lgamma(k + 1.0));
}

std::vector<int> group_heads_search(const Eigen::MatrixXd& similarity, int group_size,
                                    const GroupingSearchOptions& options) {
  check_grouping_args(similarity, group_size);
  const int n = static_cast<int>(similarity.rows());
  if (group_size == 1 || group_size == n) return consecutive_group_heads(n);
  if (count_partitions(n, group_size) <= options.max_exhaustive)
    return flatten(split(Exhaustive(similarity, group_size).run(), group_size));
  std::vector<int> start = group_heads_greedy(similarity, group_size);
  const std::vector<int> consecutive = consecutive_group_heads(n);
  if (grouping_objective(similarity, consecutive, group_size) >
      grouping_objective(similarity, start, group_size))
    start = consecutive;
  return refine_by_swaps(similarity, start, group_size);
}

double grouped_truncation_error(const MatrixRM& w, int num_kv_heads, int head_dim, int group_size,
                                const std::vector<int>& group_heads, int rank,
                                const Whitening* whitening) {
  const GroupSpec spec{num_kv_heads, head_dim, group_size, {rank}, group_heads};
  spec.validate(static_cast<int>(w.cols()));
  LKV_CHECK_ARG(whitening == nullptr || whitening->dim() == w.cols(), "grouping: whitening is ",
                whitening ? whitening->dim() : 0, "-dimensional, W has ", w.cols(), " columns");
  double discarded = 0.0, total = 0.0;
  for (int g = 0; g < spec.num_groups(); ++g) {
    Eigen::MatrixXd y = group_rows(w, spec, g);
    if (whitening) y = y * whitening->l.triangularView<Eigen::Lower>();
    Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(y.rows(), y.rows());
    gram.selfadjointView<Eigen::Lower>().rankUpdate(y);
    // Eigenvalues of W_g Γ W_gᵀ = σ² of W_g L, ascending; the top `rank` are kept.
    const Eigen::VectorXd ev =
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(gram, Eigen::EigenvaluesOnly).eigenvalues();
    for (int i = 0; i < ev.size(); ++i) {
      const double e = std::max(ev(i), 0.0);  // rounding can leave tiny negative values
      total += e;
      if (i < ev.size() - rank) discarded += e;
    }
  }
  return total > 0 ? std::sqrt(discarded / total) : 0.0;
}

std::vector<int> similarity_group_heads(const MatrixRM& w_k, int num_kv_heads, int head_dim,
                                        int group_size, const Whitening* whitening,
                                        GroupingMethod method, int rank) {
  LKV_CHECK_ARG(num_kv_heads > 0 && group_size > 0 && num_kv_heads % group_size == 0,
                "grouping: group_size ", group_size, " does not divide num_kv_heads ",
                num_kv_heads);
  if (method == GroupingMethod::kBestError)
    LKV_CHECK_ARG(rank >= 1 && rank <= group_size * head_dim, "grouping: rank ", rank,
                  " outside [1, group_size*head_dim = ", group_size * head_dim, "]");
  const std::vector<int> consecutive = consecutive_group_heads(num_kv_heads);
  if (method == GroupingMethod::kConsecutive || group_size == 1 || group_size == num_kv_heads)
    return consecutive;
  const Eigen::MatrixXd cka = head_similarity_cka(w_k, num_kv_heads, head_dim, whitening);
  if (method == GroupingMethod::kGreedy) return group_heads_greedy(cka, group_size);
  if (method == GroupingMethod::kSearch) return group_heads_search(cka, group_size);
  std::vector<int> best = consecutive;
  double best_error = grouped_truncation_error(w_k, num_kv_heads, head_dim, group_size, consecutive,
                                               rank, whitening);
  for (const std::vector<int>& candidate :
       {group_heads_greedy(cka, group_size), group_heads_search(cka, group_size)}) {
    if (candidate == best) continue;
    const double error = grouped_truncation_error(w_k, num_kv_heads, head_dim, group_size,
                                                  candidate, rank, whitening);
    if (error < best_error) best = candidate, best_error = error;
  }
  return best;
}

}  // namespace latentkv
