#include "latentkv/fisher/fisher_scores.h"

#include <cmath>

#include "latentkv/status.h"

namespace latentkv {

const char* fisher_reduction_name(FisherReduction reduction) {
  return reduction == FisherReduction::kRms ? "rms" : "mean_square";
}

FisherReduction parse_fisher_reduction(const std::string& name) {
  if (name == "mean_square") return FisherReduction::kMeanSquare;
  if (name == "rms") return FisherReduction::kRms;
  LKV_THROW(StatusCode::kInvalidArgument, "unknown Fisher reduction '", name,
            "' (use mean_square or rms)");
}

std::vector<double> FisherScores::unit_scores() const {
  std::vector<double> units;
  units.reserve(2 * key.size());
  for (size_t l = 0; l < key.size(); ++l) {
    units.push_back(key[l]);
    units.push_back(value[l]);
  }
  return units;
}

double FisherScores::group_score(int layer, bool value_proj, const std::vector<int>& heads) const {
  LKV_CHECK_ARG(has_head_scores(), "these Fisher scores have no per-head scores");
  LKV_CHECK_ARG(layer >= 0 && layer < n_layers(), "layer ", layer, " outside [0, ", n_layers(),
                ")");
  LKV_CHECK_ARG(!heads.empty(), "a group needs at least one KV head");
  const std::vector<double>& per_head = value_proj ? value_heads : key_heads;
  double sum = 0.0;
  for (int h : heads) {
    LKV_CHECK_ARG(h >= 0 && h < num_kv_heads, "KV head ", h, " outside [0, ", num_kv_heads, ")");
    sum += per_head[static_cast<size_t>(layer) * num_kv_heads + h];
  }
  return sum / static_cast<double>(heads.size());
}

void FisherScores::validate() const {
  LKV_CHECK_ARG(!key.empty(), "Fisher scores cover no layer");
  LKV_CHECK_ARG(key.size() == value.size(), "Fisher scores: ", key.size(), " k_proj scores but ",
                value.size(), " v_proj scores");
  LKV_CHECK_ARG(num_kv_heads >= 1, "Fisher scores: num_kv_heads must be >= 1, got ", num_kv_heads);
  LKV_CHECK_ARG(num_samples >= 0, "Fisher scores: num_samples must be >= 0, got ", num_samples);
  const size_t heads = key.size() * static_cast<size_t>(num_kv_heads);
  LKV_CHECK_ARG(
      key_heads.size() == value_heads.size() && (key_heads.empty() || key_heads.size() == heads),
      "Fisher scores: per-head vectors have ", key_heads.size(), " and ", value_heads.size(),
      " entries, expected 0 or ", heads);
  auto check = [](const std::vector<double>& v, const char* what) {
    for (size_t i = 0; i < v.size(); ++i) {
      LKV_CHECK_ARG(std::isfinite(v[i]) && v[i] >= 0, "Fisher score ", what, "[", i, "] = ", v[i],
                    " is not a finite non-negative number");
    }
  };
  check(key, "k");
  check(value, "v");
  check(key_heads, "k_head");
  check(value_heads, "v_head");
}

void FisherScores::check_for(const LlamaConfig& config,
                             const std::string& expected_model_id) const {
  validate();
  LKV_CHECK_ARG(n_layers() == config.n_layers, "Fisher scores are for ", n_layers(),
                " layers, the model has ", config.n_layers);
  LKV_CHECK_ARG(num_kv_heads == config.num_kv_heads, "Fisher scores are for ", num_kv_heads,
                " KV heads, the model has ", config.num_kv_heads);
  LKV_CHECK_ARG(model_id.empty() || expected_model_id.empty() || model_id == expected_model_id,
                "Fisher scores were computed for model ", model_id, ", not ", expected_model_id);
}

FisherAccumulator::FisherAccumulator(const LlamaConfig& config)
    : num_kv_heads_(config.num_kv_heads), head_dim_(config.head_dim) {
  LKV_CHECK_ARG(
      config.n_layers > 0 && config.num_kv_heads > 0 && config.head_dim > 0 && config.d_model > 0,
      "Fisher accumulator: model dimensions must be positive");
  sum_sq_.assign(
      2 * static_cast<size_t>(config.n_layers),
      Eigen::MatrixXd::Zero(int64_t{config.num_kv_heads} * config.head_dim, config.d_model));
}

void FisherAccumulator::add(const KvProjectionGradients<float>& gradients) {
  const size_t n_layers = sum_sq_.size() / 2;
  LKV_CHECK_ARG(gradients.wk.size() == n_layers && gradients.wv.size() == n_layers,
                "gradients cover ", gradients.wk.size(), "/", gradients.wv.size(),
                " layers, the accumulator ", n_layers);
  for (size_t u = 0; u < sum_sq_.size(); ++u) {
    const MatrixRM& g = (u % 2 == 0) ? gradients.wk[u / 2] : gradients.wv[u / 2];
    LKV_CHECK_ARG(g.rows() == sum_sq_[u].rows() && g.cols() == sum_sq_[u].cols(),
                  "gradient of layer ", u / 2, (u % 2 ? " v_proj" : " k_proj"), " is [", g.rows(),
                  ", ", g.cols(), "], expected [", sum_sq_[u].rows(), ", ", sum_sq_[u].cols(), "]");
    if (!g.allFinite()) {
      LKV_THROW(StatusCode::kNumericalError, "gradient of layer ", u / 2,
                (u % 2 ? " v_proj" : " k_proj"), " is not finite");
    }
  }
  for (size_t u = 0; u < sum_sq_.size(); ++u) {
    const MatrixRM& g = (u % 2 == 0) ? gradients.wk[u / 2] : gradients.wv[u / 2];
    sum_sq_[u].array() += g.cast<double>().array().square();
  }
  ++num_samples_;
}

FisherScores FisherAccumulator::scores(FisherReduction reduction,
                                       const std::string& model_id) const {
  LKV_CHECK_ARG(num_samples_ > 0, "no calibration window was accumulated");
  FisherScores s;
  s.model_id = model_id;
  s.reduction = reduction;
  s.num_samples = num_samples_;
  s.num_kv_heads = num_kv_heads_;
  const double inv_n = 1.0 / static_cast<double>(num_samples_);
  for (size_t u = 0; u < sum_sq_.size(); ++u) {
    std::vector<double>& heads = (u % 2 == 0) ? s.key_heads : s.value_heads;
    double total = 0.0;
    for (int h = 0; h < num_kv_heads_; ++h) {
      const auto block = sum_sq_[u].middleRows(int64_t{h} * head_dim_, head_dim_).array() * inv_n;
      const double score = reduction == FisherReduction::kRms ? block.sqrt().mean() : block.mean();
      heads.push_back(score);
      total += score;
    }
    ((u % 2 == 0) ? s.key : s.value).push_back(total / num_kv_heads_);
  }
  return s;
}

}  // namespace latentkv
