#include "latentkv/pipeline/compress_model.h"

#include <Eigen/SVD>
#include <algorithm>
#include <chrono>
#include <cmath>

#include "latentkv/compress/fold_vo.h"
#include "latentkv/compress/group_decompose.h"
#include "latentkv/compress/hadamard.h"
#include "latentkv/compress/head_grouping.h"
#include "latentkv/compress/value_calibration.h"
#include "latentkv/compress/whitened_svd.h"
#include "latentkv/pipeline/allocate.h"
#include "latentkv/pipeline/sequential_stats.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Singular values of every group of W·L (W when plain), descending.
std::vector<std::vector<double>> group_spectra(const MatrixRM& w, const GroupSpec& spec,
                                               const Whitening* whitening) {
  std::vector<std::vector<double>> out;
  for (int g = 0; g < spec.num_groups(); ++g) {
    Eigen::MatrixXd m = group_rows(w, spec, g);
    if (whitening) m = m * whitening->l.triangularView<Eigen::Lower>();
    const Eigen::BDCSVD<Eigen::MatrixXd> svd(m);  // values only
    if (svd.info() != Eigen::Success)
      LKV_THROW(StatusCode::kNumericalError, "SVD of a ", m.rows(), "x", m.cols(),
                " group did not converge");
    const Eigen::VectorXd& s = svd.singularValues();
    out.emplace_back(s.data(), s.data() + s.size());
  }
  return out;
}

// W rebuilt from its factors, [num_kv_heads·head_dim, d_model] in original head order (fp64).
Eigen::MatrixXd reconstruct(const ProjectionFactors& f) {
  Eigen::MatrixXd w(int64_t{f.num_kv_heads} * f.head_dim, f.d_model);
  using ConstMap =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
  for (int g = 0; g < f.num_groups(); ++g) {
    const int r = f.ranks[g];
    const ConstMap a(f.a.data() + static_cast<int64_t>(f.rank_offset(g)) * f.d_model, r, f.d_model);
    const ConstMap b(f.b.data() + f.b_offset(g), int64_t{f.group_size} * f.head_dim, r);
    const Eigen::MatrixXd wg = b.cast<double>() * a.cast<double>();
    for (int s = 0; s < f.group_size; ++s) {
      const int head = f.group_heads[g * f.group_size + s];
      w.middleRows(int64_t{head} * f.head_dim, f.head_dim) =
          wg.middleRows(int64_t{s} * f.head_dim, f.head_dim);
    }
  }
  return w;
}

// Relative output error on the calibration set, ‖(W − BA)L‖_F / ‖W L‖_F.
double output_error(const MatrixRM& w, const ProjectionFactors& f, const Whitening& wh) {
  const Eigen::MatrixXd w64 = w.cast<double>();
  const Eigen::MatrixXd diff = (w64 - reconstruct(f)) * wh.l.triangularView<Eigen::Lower>();
  const Eigen::MatrixXd full = w64 * wh.l.triangularView<Eigen::Lower>();
  const double total = full.squaredNorm();
  return total > 0 ? std::sqrt(diff.squaredNorm() / total) : 0.0;
}

// Per-group rank used to choose the key grouping before ranks are allocated: the budget's kept
// fraction of the group width, as if every group got the same share.
int grouping_rank(const CompressOptions& o, const KvLayout& layout) {
  const double bits_ratio = 16.0 / o.quant.bits;
  double frac = o.budget.value;
  if (o.budget.kind == BudgetSpec::Kind::kBytesFraction) frac *= bits_ratio;
  if (o.budget.kind == BudgetSpec::Kind::kBytesPerToken)
    frac = frac / static_cast<double>(layout.fp16_bytes_per_token()) * bits_ratio;
  const int cap = layout.group_capacity();
  const int r = static_cast<int>(std::lround(std::min(1.0, frac) * cap / o.granule)) * o.granule;
  return std::clamp(r, std::min(o.granule, cap), cap);
}

bool fold_layer(const CompressOptions& o, const ProjectionFactors& value, int num_qo_heads) {
  switch (o.fold) {
    case FoldPolicy::kAlways:
      return true;
    case FoldPolicy::kNever:
      return false;
    case FoldPolicy::kCostModel: {
      DecodeCostParams p;
      p.context_len = 4096;  // the decision depends on weight bytes only (fold_vo.h)
      for (int r : value.ranks) p.value_cache_bytes_per_token += latent_bytes_per_token(r, o.quant);
      return output_path_costs(value, num_qo_heads, p).prefer_folded();
    }
  }
  return false;
}

}  // namespace

CompressedModel compress_model(const CompressInputs& in, const CompressOptions& o,
                               const CompressProgress& progress, CompressReport* report) {
  o.validate();
  LKV_CHECK_ARG(in.weights != nullptr && in.stats != nullptr,
                "compress_model: weights and calibration statistics are required");
  const LlamaWeights& weights = *in.weights;
  const LlamaConfig& c = weights.config;
  in.stats->check_shape(c.n_layers, c.d_model);
  const int group_size = o.group_size == 0 ? c.num_kv_heads : o.group_size;
  LKV_CHECK_ARG(group_size <= c.num_kv_heads && c.num_kv_heads % group_size == 0, "group size ",
                group_size, " does not divide the model's ", c.num_kv_heads, " KV heads");
  LKV_CHECK_ARG(!o.needs_fisher() || in.fisher != nullptr, "allocator '",
                allocator_name(o.allocator), "' needs Fisher scores");
  if (in.fisher && o.needs_fisher()) in.fisher->check_for(c, in.base_sha256);
  const KvLayout layout{c.n_layers, c.num_kv_heads, c.head_dim, group_size};
  CompressReport local;
  CompressReport& rep = report ? *report : local;
  rep = {};
  const auto t0 = Clock::now();

  // Whitening, key grouping and spectra of every layer.
  std::vector<Whitening> whitening(c.n_layers);
  std::vector<GroupSpec> key_spec(c.n_layers), value_spec(c.n_layers);
  AllocationInputs alloc_in;
  alloc_in.fisher = in.fisher;
  alloc_in.stats = in.stats;
  const int proxy_rank = grouping_rank(o, layout);
  for (int l = 0; l < c.n_layers; ++l) {
    whitening[l] = whiten(in.stats->layers[l].gram());
    if (whitening[l].damped()) rep.damped_layers.push_back(l);
    const Whitening* wh = o.whiten ? &whitening[l] : nullptr;
    const LlamaLayerWeights& lw = weights.layers[l];
    for (GroupSpec* s : {&key_spec[l], &value_spec[l]}) {
      s->num_kv_heads = c.num_kv_heads;
      s->head_dim = c.head_dim;
      s->group_size = group_size;
      s->ranks = {layout.group_capacity()};
      s->group_heads = consecutive_group_heads(c.num_kv_heads);
    }
    if (group_size > 1 && group_size < c.num_kv_heads)
      key_spec[l].group_heads = similarity_group_heads(lw.wk, c.num_kv_heads, c.head_dim,
                                                       group_size, wh, o.key_grouping, proxy_rank);
    for (const bool value : {false, true}) {
      const GroupSpec& s = value ? value_spec[l] : key_spec[l];
      for (auto& sv : group_spectra(value ? lw.wv : lw.wk, s, wh))
        alloc_in.spectra.push_back(std::move(sv));
      alloc_in.group_heads.push_back(s.group_heads);
    }
    if (progress.decompose) progress.decompose(l + 1, 2 * c.n_layers);
  }
  rep.allocation = allocate_ranks(o, layout, alloc_in);

  // Factors at the allocated ranks.
  std::vector<LatentLayerFactors> factors(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const Whitening* wh = o.whiten ? &whitening[l] : nullptr;
    const LlamaLayerWeights& lw = weights.layers[l];
    key_spec[l].ranks = rep.allocation.unit_ranks(l, false);
    value_spec[l].ranks = rep.allocation.unit_ranks(l, true);
    factors[l].key = decompose_projection(lw.wk, lw.bk, key_spec[l], wh).factors;
    factors[l].value = decompose_projection(lw.wv, lw.bv, value_spec[l], wh).factors;
    if (progress.decompose) progress.decompose(c.n_layers + l + 1, 2 * c.n_layers);
  }
  rep.decompose_seconds = seconds_since(t0);

  if (o.value_method == ValueMethod::kSequentialAls) {
    LKV_CHECK_ARG(!in.sequential_windows.empty(),
                  "value method 'sequential_als' needs calibration windows");
    const auto ts = Clock::now();
    LatentCacheConfig fp16;  // the low-rank error only: quantization comes after calibration
    fp16.key.residual = fp16.value.residual = 0;
    const std::vector<CalibrationTarget> targets = collect_sequential_targets(
        weights, factors, fp16, in.sequential_windows, progress.sequential);
    rep.sequential_seconds = seconds_since(ts);
    for (int l = 0; l < c.n_layers; ++l) {
      const LlamaLayerWeights& lw = weights.layers[l];
      factors[l].value =
          calibrate_values(lw.wv, lw.bv, value_spec[l], whitening[l], targets[l]).factors;
    }
  }

  const auto tf = Clock::now();
  CompressedModel m;
  m.base = BaseModelIdentity::of(c, in.base_sha256);
  m.key_quant = m.value_quant = o.quant;
  m.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayerWeights& lw = weights.layers[l];
    CompressedLayer& out = m.layers[l];
    out.factors = std::move(factors[l]);
    out.key_error = output_error(lw.wk, out.factors.key, whitening[l]);
    out.value_error = output_error(lw.wv, out.factors.value, whitening[l]);
    if (o.quant.bits < 16) {
      fold_rotation(out.factors.key, o.rotation, /*seed=*/2 * static_cast<uint64_t>(l));
      fold_rotation(out.factors.value, o.rotation, /*seed=*/2 * static_cast<uint64_t>(l) + 1);
    }
    if (fold_layer(o, out.factors.value, c.num_qo_heads)) {
      out.factors.folded_output =
          fold_value_into_output(out.factors.value, lw.wo, lw.bo, c.num_qo_heads);
      ++rep.folded_layers;
    }
  }
  rep.decompose_seconds += seconds_since(tf);

  m.recipe = o.describe();
  m.recipe.insert(m.recipe.end(), in.recipe.begin(), in.recipe.end());
  m.recipe.emplace_back(
      "allocation",
      str_cat(rep.allocation.method, ", total rank ", rep.allocation.total_rank(), ", ",
              m.kv_bytes_per_token(), " KV bytes/token of fp16 ", m.fp16_kv_bytes_per_token()));
  m.validate();
  return m;
}

}  // namespace latentkv
