#include "latentkv/compress/group_decompose.h"

#include <algorithm>
#include <cmath>

#include "latentkv/status.h"

namespace latentkv {

void GroupSpec::validate(int d_model) const {
  LKV_CHECK_ARG(num_kv_heads > 0 && head_dim > 0 && d_model > 0,
                "group spec: num_kv_heads, head_dim and d_model must be positive, got ",
                num_kv_heads, ", ", head_dim, ", ", d_model);
  LKV_CHECK_ARG(group_size > 0 && num_kv_heads % group_size == 0, "group spec: group_size ",
                group_size, " does not divide num_kv_heads ", num_kv_heads);
  LKV_CHECK_ARG(ranks.size() == 1 || static_cast<int>(ranks.size()) == num_groups(),
                "group spec: ", ranks.size(), " ranks given for ", num_groups(),
                " groups (give one, or one per group)");
  const int max_rank = std::min(group_size * head_dim, d_model);
  for (int r : ranks)
    LKV_CHECK_ARG(r >= 1 && r <= max_rank, "group spec: rank ", r, " outside [1, ", max_rank,
                  "] (group width group_size*head_dim = ", group_size * head_dim,
                  ", d_model = ", d_model, ")");
  if (!group_heads.empty()) {
    LKV_CHECK_ARG(static_cast<int>(group_heads.size()) == num_kv_heads,
                  "group spec: group_heads has ", group_heads.size(), " entries for ", num_kv_heads,
                  " KV heads");
    std::vector<bool> seen(num_kv_heads, false);
    for (int h : group_heads) {
      LKV_CHECK_ARG(h >= 0 && h < num_kv_heads && !seen[h],
                    "group spec: group_heads is not a permutation of 0..", num_kv_heads - 1);
      seen[h] = true;
    }
  }
}

std::vector<int> GroupSpec::group_ranks() const {
  if (ranks.size() == 1) return std::vector<int>(num_groups(), ranks.front());
  return ranks;
}

std::vector<int> GroupSpec::resolved_group_heads() const {
  return group_heads.empty() ? consecutive_group_heads(num_kv_heads) : group_heads;
}

double Decomposition::relative_error() const {
  return total_energy > 0 ? std::sqrt(discarded_energy / total_energy) : 0.0;
}

Eigen::MatrixXd group_rows(const MatrixRM& w, const GroupSpec& spec, int g) {
  LKV_CHECK_ARG(g >= 0 && g < spec.num_groups(), "group_rows: group ", g, " outside [0, ",
                spec.num_groups(), ")");
  LKV_CHECK_ARG(
      w.rows() == int64_t{spec.num_kv_heads} * spec.head_dim, "group_rows: W has ", w.rows(),
      " rows, expected num_kv_heads*head_dim = ", int64_t{spec.num_kv_heads} * spec.head_dim);
  const std::vector<int> heads = spec.resolved_group_heads();
  const int hd = spec.head_dim;
  Eigen::MatrixXd out(spec.group_size * hd, w.cols());
  for (int s = 0; s < spec.group_size; ++s) {
    const int head = heads[g * spec.group_size + s];
    out.middleRows(s * hd, hd) = w.middleRows(int64_t{head} * hd, hd).cast<double>();
  }
  return out;
}

namespace {

// Factorizes one group in the requested precision and copies the factors (row-major float) into
// the factor storage.
template <typename Scalar>
Eigen::VectorXd factor_group(const Eigen::MatrixXd& wg, int rank, const Whitening* whitening,
                             SvdAlgorithm algorithm, float* a_out, float* b_out) {
  const LowRank<Scalar> lr = truncated_svd(wg.cast<Scalar>().eval(), rank, whitening, algorithm);
  Eigen::Map<MatrixRM>(a_out, rank, wg.cols()) = lr.a.template cast<float>();
  Eigen::Map<MatrixRM>(b_out, wg.rows(), rank) = lr.b.template cast<float>();
  return lr.singular_values.template cast<double>();
}

}  // namespace

ProjectionFactors allocate_factors(const MatrixRM& w, const Eigen::VectorXf& bias,
                                   const GroupSpec& spec) {
  const int d_model = static_cast<int>(w.cols());
  spec.validate(d_model);
  LKV_CHECK_ARG(
      w.rows() == int64_t{spec.num_kv_heads} * spec.head_dim, "decompose: W has ", w.rows(),
      " rows, expected num_kv_heads*head_dim = ", int64_t{spec.num_kv_heads} * spec.head_dim);
  LKV_CHECK_ARG(bias.size() == 0 || bias.size() == w.rows(), "decompose: bias has ", bias.size(),
                " entries, expected 0 or ", w.rows());
  ProjectionFactors f;
  f.d_model = d_model;
  f.head_dim = spec.head_dim;
  f.num_kv_heads = spec.num_kv_heads;
  f.group_size = spec.group_size;
  f.ranks = spec.group_ranks();
  f.group_heads = spec.resolved_group_heads();
  f.a.assign(static_cast<size_t>(f.total_rank()) * d_model, 0.0f);
  f.b.assign(static_cast<size_t>(f.total_rank()) * spec.group_size * spec.head_dim, 0.0f);
  f.bias.assign(bias.data(), bias.data() + bias.size());
  return f;
}

Decomposition decompose_projection(const MatrixRM& w, const Eigen::VectorXf& bias,
                                   const GroupSpec& spec, const Whitening* whitening,
                                   const DecomposeOptions& options) {
  Decomposition out;
  ProjectionFactors& f = out.factors;
  f = allocate_factors(w, bias, spec);
  LKV_CHECK_ARG(whitening == nullptr || whitening->dim() == f.d_model, "decompose: whitening is ",
                whitening ? whitening->dim() : 0, "-dimensional, d_model is ", f.d_model);
  for (int g = 0; g < spec.num_groups(); ++g) {
    const Eigen::MatrixXd wg = group_rows(w, spec, g);
    float* a_out = f.a.data() + static_cast<size_t>(f.rank_offset(g)) * f.d_model;
    float* b_out = f.b.data() + f.b_offset(g);
    const Eigen::VectorXd s =
        options.precision == SvdPrecision::kFloat64
            ? factor_group<double>(wg, f.ranks[g], whitening, options.algorithm, a_out, b_out)
            : factor_group<float>(wg, f.ranks[g], whitening, options.algorithm, a_out, b_out);
    const std::vector<double> err = truncation_errors(s);
    out.discarded_energy += err[f.ranks[g]] * err[f.ranks[g]];
    out.total_energy += err[0] * err[0];
    out.singular_values.push_back(s);
  }
  f.validate();
  return out;
}

}  // namespace latentkv
