#include "latentkv/compress/fold_vo.h"

#include <vector>

#include "latentkv/status.h"

namespace latentkv {
namespace {

void check_heads(const ProjectionFactors& value, int num_qo_heads) {
  value.validate();
  LKV_CHECK_ARG(num_qo_heads > 0 && num_qo_heads % value.num_kv_heads == 0, "num_qo_heads ",
                num_qo_heads, " is not a multiple of num_kv_heads ", value.num_kv_heads);
}

// Rank of the value group read by every query head.
std::vector<int> query_head_ranks(const ProjectionFactors& value, int num_qo_heads) {
  const int gqa = num_qo_heads / value.num_kv_heads;
  std::vector<int> ranks(num_qo_heads);
  for (int h = 0; h < num_qo_heads; ++h) ranks[h] = value.ranks[value.head_location(h / gqa).first];
  return ranks;
}

}  // namespace

FoldedOutputProjection fold_value_into_output(const ProjectionFactors& value, const MatrixRM& w_o,
                                              const Eigen::VectorXf& bias_o, int num_qo_heads) {
  check_heads(value, num_qo_heads);
  const int d = value.d_model;
  const int hd = value.head_dim;
  LKV_CHECK_ARG(w_o.rows() == d && w_o.cols() == int64_t{num_qo_heads} * hd, "fold: W_o is ",
                w_o.rows(), "x", w_o.cols(), ", expected ", d, "x", int64_t{num_qo_heads} * hd);
  LKV_CHECK_ARG(bias_o.size() == 0 || bias_o.size() == d, "fold: o_proj bias has ", bias_o.size(),
                " entries, expected 0 or ", d);
  const int gqa = num_qo_heads / value.num_kv_heads;

  FoldedOutputProjection out;
  out.d_model = d;
  out.num_qo_heads = num_qo_heads;
  out.head_offsets.assign(1, 0);
  for (int r : query_head_ranks(value, num_qo_heads))
    out.head_offsets.push_back(out.head_offsets.back() + r);
  Eigen::MatrixXd folded(d, out.width());
  Eigen::VectorXd bias = Eigen::VectorXd::Zero(d);
  for (int h = 0; h < num_qo_heads; ++h) {
    const int kv = h / gqa;
    const auto [g, slot] = value.head_location(kv);
    const int r = value.ranks[g];
    const Eigen::Map<const MatrixRM> b_g(value.b.data() + value.b_offset(g),
                                         int64_t{value.group_size} * hd, r);
    const Eigen::MatrixXd w_oh = w_o.middleCols(int64_t{h} * hd, hd).cast<double>();
    folded.middleCols(out.head_offsets[h], r) =
        w_oh * b_g.middleRows(int64_t{slot} * hd, hd).cast<double>();
    if (!value.bias.empty())
      bias += w_oh * Eigen::Map<const Eigen::VectorXf>(value.bias.data() + int64_t{kv} * hd, hd)
                         .cast<double>();
  }
  if (bias_o.size() > 0) bias += bias_o.cast<double>();
  out.w.resize(static_cast<size_t>(d) * out.width());
  Eigen::Map<MatrixRM>(out.w.data(), d, out.width()) = folded.cast<float>();
  if (!value.bias.empty() || bias_o.size() > 0) {
    out.bias.resize(d);
    Eigen::Map<Eigen::VectorXf>(out.bias.data(), d) = bias.cast<float>();
  }
  return out;
}

OutputPathCosts output_path_costs(const ProjectionFactors& value, int num_qo_heads,
                                  const DecodeCostParams& params) {
  check_heads(value, num_qo_heads);
  LKV_CHECK_ARG(params.context_len >= 0 && params.batch_size >= 1 && params.weight_bytes > 0 &&
                    params.value_cache_bytes_per_token >= 0,
                "decode cost: need context_len >= 0, batch_size >= 1, weight_bytes > 0 and "
                "value_cache_bytes_per_token >= 0");
  const double d = value.d_model;
  const double hd = value.head_dim;
  const double batch = params.batch_size;
  double sum_head_ranks = 0.0;  // Σ_h r_{g(h)} over query heads
  for (int r : query_head_ranks(value, num_qo_heads)) sum_head_ranks += r;
  const double b_v_elems = static_cast<double>(value.b.size());  // Σ_g group_size·head_dim·r_g
  const double w_o_elems = d * num_qo_heads * hd;
  const double cache =
      batch * static_cast<double>(params.context_len) * params.value_cache_bytes_per_token;

  OutputPathCosts c;
  c.folded.weight_bytes = d * sum_head_ranks * params.weight_bytes;
  c.folded.cache_bytes = cache;
  c.folded.flops = 2.0 * batch * d * sum_head_ranks;
  c.unfolded.weight_bytes = (b_v_elems + w_o_elems) * params.weight_bytes;
  c.unfolded.cache_bytes = cache;
  c.unfolded.flops = 2.0 * batch * (hd * sum_head_ranks + w_o_elems);
  return c;
}

}  // namespace latentkv
