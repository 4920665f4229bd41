#include "latentkv/compress/layer_study.h"

#include <algorithm>
#include <cmath>

#include "latentkv/compress/group_decompose.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

// Relative error on the target of one configuration, summed over the groups of `spec`.
double evaluate(const MatrixRM& w, const GroupSpec& spec, const Whitening* svd_whitening,
                const CalibrationTarget& target, const Whitening& input, bool als,
                const AlsOptions& als_options) {
  const int rank = spec.ranks.front();
  double f = 0.0, energy = 0.0;
  for (int g = 0; g < spec.num_groups(); ++g) {
    const Eigen::MatrixXd wg = group_rows(w, spec, g);
    const AlsProblem problem(wg, target, input);
    const LowRank<double> lr = truncated_svd(wg, rank, svd_whitening);
    f += als ? refine_als(problem, lr.b, lr.a, als_options).objective.back()
             : problem.objective(lr.b, lr.a);
    energy += problem.target_energy();
  }
  return energy > 0 ? std::sqrt(std::max(0.0, f) / energy) : 0.0;
}

}  // namespace

std::vector<LayerStudyRow> layer_study(const MatrixRM& w_k, const MatrixRM& w_v,
                                       const Eigen::MatrixXd& gram, int num_kv_heads, int head_dim,
                                       const CalibrationTarget& target,
                                       const LayerStudyOptions& options) {
  const int group_size = options.group_size > 0 ? options.group_size : num_kv_heads;
  LKV_CHECK_ARG(w_k.rows() == w_v.rows() && w_k.cols() == w_v.cols(), "layer study: W_k is ",
                w_k.rows(), "x", w_k.cols(), " but W_v is ", w_v.rows(), "x", w_v.cols());
  LKV_CHECK_ARG(!options.rank_fractions.empty(), "layer study: no rank fractions");
  for (double frac : options.rank_fractions)
    LKV_CHECK_ARG(frac > 0 && frac <= 1, "layer study: rank fraction ", frac, " outside (0, 1]");
  const int d_model = static_cast<int>(w_k.cols());
  const Whitening whitening = whiten(gram);
  const Whitening input = whiten(target.gram_input);

  std::vector<LayerStudyRow> rows;
  for (const char* proj : {"k", "v"}) {
    const MatrixRM& w = proj[0] == 'k' ? w_k : w_v;
    GroupSpec consecutive{num_kv_heads, head_dim, group_size, {1}, {}};
    consecutive.validate(d_model);
    GroupSpec similar = consecutive;
    const int width = std::min(group_size * head_dim, d_model);
    for (double frac : options.rank_fractions) {
      const int rank =
          std::clamp(static_cast<int>(std::lround(frac * group_size * head_dim)), 1, width);
      consecutive.ranks = similar.ranks = {rank};
      similar.group_heads = similarity_group_heads(w, num_kv_heads, head_dim, group_size,
                                                   &whitening, options.similarity_method, rank);
      auto add = [&](const char* factorization, const GroupSpec& spec, const char* grouping,
                     bool als) {
        const bool whitened = factorization[0] == 'w';
        rows.push_back(
            {proj, frac, rank, factorization, grouping, als,
             evaluate(w, spec, whitened ? &whitening : nullptr, target, input, als, options.als)});
      };
      add("plain_svd", consecutive, "consecutive", false);
      add("whitened_svd", consecutive, "consecutive", false);
      add("whitened_svd", similar, "similarity", false);
      add("whitened_svd", consecutive, "consecutive", true);
      add("whitened_svd", similar, "similarity", true);
    }
  }
  return rows;
}

}  // namespace latentkv
