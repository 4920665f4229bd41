#include "latentkv/reference/latent_kv_cache.h"

#include <algorithm>
#include <cmath>

#include "cache/attention_core.h"
#include "latentkv/rope.h"
#include "latentkv/status.h"
#include "model/forward_ops.h"  // add_bias

namespace latentkv {

namespace {

using ConstMap = Eigen::Map<const MatrixRM>;

// B_g of group g as a [group_size*head_dim, rank_g] matrix.
ConstMap group_b(const ProjectionFactors& f, int g) {
  return ConstMap(f.b.data() + f.b_offset(g), int64_t{f.group_size} * f.head_dim, f.ranks[g]);
}

void check_factors(const ProjectionFactors& f, const LlamaConfig& c, const char* which) {
  f.validate();
  LKV_CHECK_ARG(
      f.d_model == c.d_model && f.head_dim == c.head_dim && f.num_kv_heads == c.num_kv_heads, which,
      " factors are for d_model ", f.d_model, ", head_dim ", f.head_dim, ", ", f.num_kv_heads,
      " KV heads; the layer has ", c.d_model, ", ", c.head_dim, ", ", c.num_kv_heads);
  auto finite = [](const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
  };
  LKV_CHECK_ARG(finite(f.a) && finite(f.b) && finite(f.bias), which,
                " factors hold a non-finite value");
}

// Group and slot of every KV head (inverse of group_heads).
void invert_grouping(const ProjectionFactors& f, std::vector<int>& group_of,
                     std::vector<int>& slot_of) {
  group_of.assign(f.num_kv_heads, 0);
  slot_of.assign(f.num_kv_heads, 0);
  for (int i = 0; i < f.num_kv_heads; ++i) {
    group_of[f.group_heads[i]] = i / f.group_size;
    slot_of[f.group_heads[i]] = i % f.group_size;
  }
}

}  // namespace

LatentKvCache::LatentKvCache(const LlamaConfig& config, const LlamaLayerWeights& weights,
                             LatentLayerFactors factors, LatentCacheConfig cache_config,
                             std::shared_ptr<AttentionWorkspace> workspace)
    : d_model_(config.d_model),
      num_qo_heads_(config.num_qo_heads),
      num_kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim),
      weights_(&weights),
      key_(std::move(factors.key)),
      value_(std::move(factors.value)),
      cache_config_(cache_config),
      ws_(workspace ? std::move(workspace) : std::make_shared<AttentionWorkspace>()),
      angles_(std::make_unique<detail::RopeAngles>()),
      query_angles_(std::make_unique<detail::RopeAngles>()) {
  config.validate();
  const ProjectionFactors& fk = key_;
  const ProjectionFactors& fv = value_;
  check_factors(fk, config, "key");
  check_factors(fv, config, "value");
  const int64_t q_width = int64_t{num_qo_heads_} * head_dim_;
  LKV_CHECK_ARG(weights.wq.rows() == q_width && weights.wq.cols() == d_model_, "W_q is [",
                weights.wq.rows(), ", ", weights.wq.cols(), "], expected [", q_width, ", ",
                d_model_, "]");
  LKV_CHECK_ARG(weights.bq.size() == 0 || weights.bq.size() == q_width, "b_q has ",
                weights.bq.size(), " entries, expected ", q_width);
  LKV_CHECK_ARG(weights.bk.size() == 0 || !fk.bias.empty(),
                "the layer has a k_proj bias but the key factors carry none");
  LKV_CHECK_ARG(weights.bv.size() == 0 || !fv.bias.empty(),
                "the layer has a v_proj bias but the value factors carry none");
  invert_grouping(fk, key_group_of_, key_slot_of_);
  invert_grouping(fv, value_group_of_, value_slot_of_);

  const int ratio = config.gqa_ratio();
  mixed_col_.resize(num_qo_heads_);
  for (int h = 0; h < num_qo_heads_; ++h) {
    mixed_col_[h] = mixed_cols_;
    mixed_cols_ += fv.ranks[value_group_of_[h / ratio]];
  }
  if (factors.folded()) {
    const FoldedOutputProjection& fo = factors.folded_output;
    LKV_CHECK_ARG(fo.d_model == d_model_ && fo.num_qo_heads == num_qo_heads_,
                  "folded W_o is for d_model ", fo.d_model, " and ", fo.num_qo_heads,
                  " query heads; the layer has ", d_model_, " and ", num_qo_heads_);
    LKV_CHECK_ARG(static_cast<int>(fo.head_offsets.size()) == num_qo_heads_ + 1, "folded W_o has ",
                  fo.head_offsets.size(), " head offsets, expected ", num_qo_heads_ + 1);
    for (int h = 0; h <= num_qo_heads_; ++h) {
      const int64_t want = h < num_qo_heads_ ? mixed_col_[h] : mixed_cols_;
      LKV_CHECK_ARG(fo.head_offsets[h] == want, "folded W_o: query head ", h, " starts at column ",
                    fo.head_offsets[h], ", but the value ranks put it at ", want);
    }
    LKV_CHECK_ARG(static_cast<int64_t>(fo.w.size()) == d_model_ * mixed_cols_, "folded W_o has ",
                  fo.w.size(), " elements, expected ", d_model_, " x ", mixed_cols_);
    LKV_CHECK_ARG(fo.bias.empty() || static_cast<int>(fo.bias.size()) == d_model_,
                  "folded output bias has ", fo.bias.size(), " entries, expected ", d_model_);
    LKV_CHECK_ARG(!fo.bias.empty() || (weights.bo.size() == 0 && fv.bias.empty()),
                  "folded W_o needs the folded output bias b_o + W_o·b_v (the layer has an "
                  "o_proj or v_proj bias)");
    folded_wo_ = ConstMap(fo.w.data(), d_model_, mixed_cols_);
    folded_bo_ =
        Eigen::Map<const Eigen::VectorXf>(fo.bias.data(), static_cast<int64_t>(fo.bias.size()));
    LKV_CHECK_ARG(folded_wo_.allFinite() && folded_bo_.allFinite(),
                  "folded W_o or its bias holds a non-finite value");
  } else {
    LKV_CHECK_ARG(weights.wo.rows() == d_model_ && weights.wo.cols() == q_width, "W_o is [",
                  weights.wo.rows(), ", ", weights.wo.cols(), "], expected [", d_model_, ", ",
                  q_width, "]");
    LKV_CHECK_ARG(weights.bo.size() == 0 || weights.bo.size() == d_model_, "b_o has ",
                  weights.bo.size(), " entries, expected ", d_model_);
  }

  for (int g = 0; g < fk.num_groups(); ++g)
    key_stores_.emplace_back(fk.ranks[g], cache_config_.key, cache_config_.chunk);
  for (int g = 0; g < fv.num_groups(); ++g)
    value_stores_.emplace_back(fv.ranks[g], cache_config_.value, cache_config_.chunk);

  const int rk = fk.total_rank(), rv = fv.total_rank();
  a_cat_.resize(rk + rv, d_model_);
  a_cat_.topRows(rk) = ConstMap(fk.a.data(), rk, d_model_);
  a_cat_.bottomRows(rv) = ConstMap(fv.a.data(), rv, d_model_);
  inv_freq_ = rope_inv_freq(config.rope, head_dim_);
}

LatentKvCache::~LatentKvCache() = default;
LatentKvCache::LatentKvCache(LatentKvCache&&) noexcept = default;
LatentKvCache& LatentKvCache::operator=(LatentKvCache&&) noexcept = default;

int64_t LatentKvCache::size() const { return static_cast<int64_t>(positions_.size()); }

void LatentKvCache::append(const Eigen::Ref<const MatrixRM>& x,
                           const std::vector<int64_t>& positions) {
  const int64_t n = x.rows();
  LKV_CHECK_ARG(n >= 1 && x.cols() == d_model_, "latent cache input is [", n, ", ", x.cols(),
                "], expected [n >= 1, ", d_model_, "]");
  LKV_CHECK_ARG(static_cast<int64_t>(positions.size()) == n, positions.size(),
                " positions for a chunk of ", n, " tokens");
  detail::check_new_positions(positions, positions_.empty() ? -1 : positions_.back());
  detail::check_finite_rows(x, "latent cache append");

  MatrixRM& h = ws_->projected;
  h.resize(n, a_cat_.rows());
  detail::project(x, a_cat_, h);
  // Check every store before changing any, so that a bad chunk leaves the cache as it was.
  const int64_t rk = key_.total_rank(), ld = h.cols();
  for (size_t g = 0; g < key_stores_.size(); ++g)
    key_stores_[g].check(&h(0, key_.rank_offset(g)), n, ld);
  for (size_t g = 0; g < value_stores_.size(); ++g)
    value_stores_[g].check(&h(0, rk + value_.rank_offset(g)), n, ld);
  for (size_t g = 0; g < key_stores_.size(); ++g)
    key_stores_[g].append(&h(0, key_.rank_offset(g)), n, ld);
  for (size_t g = 0; g < value_stores_.size(); ++g)
    value_stores_[g].append(&h(0, rk + value_.rank_offset(g)), n, ld);
  positions_.insert(positions_.end(), positions.begin(), positions.end());
  angles_->append(positions, inv_freq_);
}

void LatentKvCache::attend(const Eigen::Ref<const MatrixRM>& x,
                           const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) {
  const std::vector<int64_t> visible =
      detail::query_visibility(x, d_model_, positions, positions_, "latent attention");
  query_angles_->clear();
  query_angles_->append(positions, inv_freq_);
  attend_rows(x, *query_angles_, 0, visible, out);
}

void LatentKvCache::forward(const Eigen::Ref<const MatrixRM>& x,
                            const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) {
  check_output(out, x.rows());  // before append, so that a bad call stores nothing
  append(x, positions);
  const int64_t n = x.rows(), first = size() - n;
  std::vector<int64_t> visible(n);
  for (int64_t i = 0; i < n; ++i) visible[i] = first + i + 1;
  attend_rows(x, *angles_, first, visible, out);
}

void LatentKvCache::check_output(const Eigen::Ref<MatrixRM>& out, int64_t n) const {
  LKV_CHECK_ARG(out.rows() == n && out.cols() == d_model_, "latent attention output is [",
                out.rows(), ", ", out.cols(), "], expected [", n, ", ", d_model_, "]");
}

// ws.keys[T, num_kv_heads*head_dim] = RoPE(Ĥ_k,g·B_k,gᵀ + b_k) for every group; the block of KV
// head at (g, s) starts at column (g*group_size + s)*head_dim.
void LatentKvCache::rebuild_keys() {
  const ProjectionFactors& fk = key_;
  AttentionWorkspace& ws = *ws_;
  const int64_t total = size(), width = int64_t{fk.group_size} * head_dim_;
  ws.latents.resize(total, fk.total_rank());
  ws.keys.resize(total, int64_t{num_kv_heads_} * head_dim_);
  for (int g = 0; g < fk.num_groups(); ++g) {
    const int64_t off = fk.rank_offset(g);
    key_stores_[g].dequantize(&ws.latents(0, off), ws.latents.cols());
    ws.keys.middleCols(g * width, width).noalias() =
        ws.latents.middleCols(off, fk.ranks[g]) * group_b(fk, g).transpose();
    if (fk.bias.empty()) continue;
    for (int s = 0; s < fk.group_size; ++s) {
      const int head = fk.group_heads[g * fk.group_size + s];
      ws.keys.middleCols(g * width + int64_t{s} * head_dim_, head_dim_).rowwise() +=
          Eigen::Map<const Eigen::RowVectorXf>(fk.bias.data() + int64_t{head} * head_dim_,
                                               head_dim_);
    }
  }
#pragma omp parallel for schedule(static) if (total * ws.keys.cols() >= detail::kParallelWork)
  for (int64_t t = 0; t < total; ++t) angles_->rotate(&ws.keys(t, 0), num_kv_heads_, t);
}

void LatentKvCache::attend_rows(const Eigen::Ref<const MatrixRM>& x,
                                const detail::RopeAngles& angles, int64_t first_angle,
                                const std::vector<int64_t>& visible, Eigen::Ref<MatrixRM> out) {
  const int64_t n = x.rows();
  check_output(out, n);
  const LlamaLayerWeights& w = *weights_;
  const ProjectionFactors& fv = value_;
  AttentionWorkspace& ws = *ws_;
  const int ratio = num_qo_heads_ / num_kv_heads_;

  ws.q.resize(n, int64_t{num_qo_heads_} * head_dim_);
  detail::project(x, w.wq, ws.q);
  detail::add_bias(ws.q, w.bq);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
#pragma omp parallel for schedule(static) if (n * ws.q.cols() >= detail::kParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    angles.rotate(&ws.q(i, 0), num_qo_heads_, first_angle + i);
    ws.q.row(i) *= scale;
  }

  rebuild_keys();
  const int64_t total = size();
  ws.latents.resize(total, fv.total_rank());  // key latents are no longer needed
  for (int g = 0; g < fv.num_groups(); ++g)
    value_stores_[g].dequantize(&ws.latents(0, fv.rank_offset(g)), ws.latents.cols());

  std::vector<detail::RowsView> keys(num_qo_heads_), values(num_qo_heads_);
  for (int h = 0; h < num_qo_heads_; ++h) {
    const int kv = h / ratio;
    const int64_t key_col =
        (int64_t{key_group_of_[kv]} * key_.group_size + key_slot_of_[kv]) * head_dim_;
    keys[h] = {&ws.keys(0, key_col), ws.keys.cols(), head_dim_};
    const int gv = value_group_of_[kv];
    values[h] = {&ws.latents(0, fv.rank_offset(gv)), ws.latents.cols(), fv.ranks[gv]};
  }
  ws.mixed.resize(n, mixed_cols_);
  detail::causal_attention(ws.q, head_dim_, keys, values, mixed_col_, visible, ws.mixed, ws.scores);

  if (folded()) {
    detail::project(ws.mixed, folded_wo_, out);
    detail::add_bias(out, folded_bo_);
    return;
  }
  ws.heads.resize(n, int64_t{num_qo_heads_} * head_dim_);
  for (int h = 0; h < num_qo_heads_; ++h) {
    const int kv = h / ratio, gv = value_group_of_[kv];
    auto b_slot = group_b(fv, gv).middleRows(int64_t{value_slot_of_[kv]} * head_dim_, head_dim_);
    auto head = ws.heads.middleCols(int64_t{h} * head_dim_, head_dim_);
    head.noalias() = ws.mixed.middleCols(mixed_col_[h], fv.ranks[gv]) * b_slot.transpose();
    if (!fv.bias.empty())
      head.rowwise() +=
          Eigen::Map<const Eigen::RowVectorXf>(fv.bias.data() + int64_t{kv} * head_dim_, head_dim_);
  }
  detail::project(ws.heads, w.wo, out);
  detail::add_bias(out, w.bo);
}

void LatentKvCache::reset() {
  for (auto& s : key_stores_) s.clear();
  for (auto& s : value_stores_) s.clear();
  positions_.clear();
  angles_->clear();
}

void LatentKvCache::reserve(int64_t tokens) {
  for (auto& s : key_stores_) s.reserve(tokens);
  for (auto& s : value_stores_) s.reserve(tokens);
  positions_.reserve(static_cast<size_t>(tokens));
}

MatrixRM LatentKvCache::key_latents(int group) const {
  const LatentStore& s = key_stores_.at(group);
  MatrixRM h(size(), s.rank());
  s.dequantize(h.data(), s.rank());
  return h;
}

MatrixRM LatentKvCache::value_latents(int group) const {
  const LatentStore& s = value_stores_.at(group);
  MatrixRM h(size(), s.rank());
  s.dequantize(h.data(), s.rank());
  return h;
}

int64_t LatentKvCache::bytes_per_token() const {
  int64_t bytes = 0;
  for (const auto& s : key_stores_) bytes += s.quantized_bytes_per_token();
  for (const auto& s : value_stores_) bytes += s.quantized_bytes_per_token();
  return bytes;
}

int64_t LatentKvCache::residual_bytes_per_token() const {
  int64_t bytes = 0;
  for (const auto& s : key_stores_) bytes += s.window_bytes_per_token();
  for (const auto& s : value_stores_) bytes += s.window_bytes_per_token();
  return bytes;
}

int64_t LatentKvCache::bytes_held() const {
  int64_t bytes = 0;
  for (const auto& s : key_stores_) bytes += s.bytes_held();
  for (const auto& s : value_stores_) bytes += s.bytes_held();
  return bytes;
}

}  // namespace latentkv
