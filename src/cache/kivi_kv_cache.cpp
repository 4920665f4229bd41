#include "latentkv/reference/kivi_kv_cache.h"

#include <algorithm>
#include <cmath>

#include "cache/attention_core.h"
#include "cache/channel_group_store.h"
#include "latentkv/rope.h"
#include "latentkv/status.h"
#include "model/forward_ops.h"  // add_bias

namespace latentkv {

namespace {

QuantConfig value_quant(const KiviConfig& c) {
  QuantConfig q;
  q.bits = c.value_bits;
  q.quant_group = c.value_quant_group;
  q.residual = c.residual;
  return q;
}

}  // namespace

void validate_kivi_config(const KiviConfig& c, int num_kv_heads, int head_dim) {
  LKV_CHECK_ARG(is_supported_bits(c.key_bits) && is_supported_bits(c.value_bits),
                "KIVI key/value bits ", c.key_bits, "/", c.value_bits,
                " not supported (use 2, 3, 4, 8 or 16)");
  LKV_CHECK_ARG(c.key_group >= 1, "KIVI key_group must be >= 1 token, got ", c.key_group);
  LKV_CHECK_ARG(
      c.value_quant_group >= 0 && (c.value_quant_group == 0 || head_dim % c.value_quant_group == 0),
      "KIVI value_quant_group ", c.value_quant_group, " does not divide head_dim ", head_dim);
  LKV_CHECK_ARG(c.residual >= 0, "KIVI residual must be >= 0, got ", c.residual);
  LKV_CHECK_ARG(num_kv_heads >= 1 && head_dim >= 1, "KIVI cache needs KV heads");
}

double kivi_bytes_per_token(const KiviConfig& c, int num_kv_heads, int head_dim) {
  validate_kivi_config(c, num_kv_heads, head_dim);
  const int channels = num_kv_heads * head_dim;
  const int64_t key_block = latent_code_bytes(c.key_group, c.key_bits) + (c.key_bits == 16 ? 0 : 4);
  return static_cast<double>(channels) * static_cast<double>(key_block) / c.key_group +
         static_cast<double>(latent_bytes_per_token(channels, value_quant(c)));
}

KiviKvCache::KiviKvCache(const LlamaConfig& config, const LlamaLayerWeights& weights,
                         const KiviConfig& kivi, std::shared_ptr<AttentionWorkspace> workspace)
    : d_model_(config.d_model),
      num_qo_heads_(config.num_qo_heads),
      num_kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim),
      weights_(&weights),
      kivi_(kivi),
      ws_(workspace ? std::move(workspace) : std::make_shared<AttentionWorkspace>()),
      query_angles_(std::make_unique<detail::RopeAngles>()) {
  config.validate();
  validate_kivi_config(kivi, num_kv_heads_, head_dim_);
  const int64_t q_width = int64_t{num_qo_heads_} * head_dim_;
  const int64_t kv_width = int64_t{num_kv_heads_} * head_dim_;
  auto check_matrix = [&](const MatrixRM& m, int64_t rows, int64_t cols, const char* name) {
    LKV_CHECK_ARG(m.rows() == rows && m.cols() == cols, name, " is [", m.rows(), ", ", m.cols(),
                  "], expected [", rows, ", ", cols, "]");
  };
  auto check_bias = [&](const Eigen::VectorXf& b, int64_t n, const char* name) {
    LKV_CHECK_ARG(b.size() == 0 || b.size() == n, name, " has ", b.size(), " entries, expected ",
                  n);
  };
  check_matrix(weights.wq, q_width, d_model_, "W_q");
  check_matrix(weights.wk, kv_width, d_model_, "W_k");
  check_matrix(weights.wv, kv_width, d_model_, "W_v");
  check_matrix(weights.wo, d_model_, q_width, "W_o");
  check_bias(weights.bq, q_width, "b_q");
  check_bias(weights.bk, kv_width, "b_k");
  check_bias(weights.bv, kv_width, "b_v");
  check_bias(weights.bo, d_model_, "b_o");

  wkv_.resize(2 * kv_width, d_model_);
  wkv_.topRows(kv_width) = weights.wk;
  wkv_.bottomRows(kv_width) = weights.wv;
  if (weights.bk.size() || weights.bv.size()) {
    bkv_ = Eigen::VectorXf::Zero(2 * kv_width);
    if (weights.bk.size()) bkv_.head(kv_width) = weights.bk;
    if (weights.bv.size()) bkv_.tail(kv_width) = weights.bv;
  }
  keys_ = std::make_unique<detail::ChannelGroupStore>(static_cast<int>(kv_width), kivi.key_group,
                                                      kivi.key_bits, kivi.residual);
  values_ = LatentStore(static_cast<int>(kv_width), value_quant(kivi), /*chunk=*/1);
  inv_freq_ = rope_inv_freq(config.rope, head_dim_);
}

KiviKvCache::~KiviKvCache() = default;
KiviKvCache::KiviKvCache(KiviKvCache&&) noexcept = default;
KiviKvCache& KiviKvCache::operator=(KiviKvCache&&) noexcept = default;

void KiviKvCache::append(const Eigen::Ref<const MatrixRM>& x,
                         const std::vector<int64_t>& positions) {
  const int64_t n = x.rows();
  LKV_CHECK_ARG(n >= 1 && x.cols() == d_model_, "KIVI cache input is [", n, ", ", x.cols(),
                "], expected [n >= 1, ", d_model_, "]");
  LKV_CHECK_ARG(static_cast<int64_t>(positions.size()) == n, positions.size(),
                " positions for a chunk of ", n, " tokens");
  detail::check_new_positions(positions, positions_.empty() ? -1 : positions_.back());
  detail::check_finite_rows(x, "KIVI cache append");

  MatrixRM& kv = ws_->projected;
  kv.resize(n, wkv_.rows());
  detail::project(x, wkv_, kv);
  detail::add_bias(kv, bkv_);
  query_angles_->clear();
  query_angles_->append(positions, inv_freq_);
  for (int64_t i = 0; i < n; ++i) query_angles_->rotate(&kv(i, 0), num_kv_heads_, i);
  const int64_t width = wkv_.rows() / 2;
  keys_->check(&kv(0, 0), n, kv.cols());
  values_.check(&kv(0, width), n, kv.cols());
  keys_->append(&kv(0, 0), n, kv.cols());
  values_.append(&kv(0, width), n, kv.cols());
  positions_.insert(positions_.end(), positions.begin(), positions.end());
}

void KiviKvCache::attend(const Eigen::Ref<const MatrixRM>& x, const std::vector<int64_t>& positions,
                         Eigen::Ref<MatrixRM> out) {
  const std::vector<int64_t> visible =
      detail::query_visibility(x, d_model_, positions, positions_, "KIVI attention");
  query_angles_->clear();
  query_angles_->append(positions, inv_freq_);
  attend_rows(x, *query_angles_, 0, visible, out);
}

void KiviKvCache::forward(const Eigen::Ref<const MatrixRM>& x,
                          const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) {
  check_output(out, x.rows());
  append(x, positions);  // leaves the chunk's angles in query_angles_
  const int64_t n = x.rows(), first = size() - n;
  std::vector<int64_t> visible(n);
  for (int64_t i = 0; i < n; ++i) visible[i] = first + i + 1;
  attend_rows(x, *query_angles_, 0, visible, out);
}

void KiviKvCache::check_output(const Eigen::Ref<MatrixRM>& out, int64_t n) const {
  LKV_CHECK_ARG(out.rows() == n && out.cols() == d_model_, "KIVI attention output is [", out.rows(),
                ", ", out.cols(), "], expected [", n, ", ", d_model_, "]");
}

void KiviKvCache::attend_rows(const Eigen::Ref<const MatrixRM>& x, const detail::RopeAngles& angles,
                              int64_t first_angle, const std::vector<int64_t>& visible,
                              Eigen::Ref<MatrixRM> out) {
  const int64_t n = x.rows(), total = size();
  check_output(out, n);
  const LlamaLayerWeights& w = *weights_;
  AttentionWorkspace& ws = *ws_;
  ws.q.resize(n, int64_t{num_qo_heads_} * head_dim_);
  detail::project(x, w.wq, ws.q);
  detail::add_bias(ws.q, w.bq);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  for (int64_t i = 0; i < n; ++i) {
    angles.rotate(&ws.q(i, 0), num_qo_heads_, first_angle + i);
    ws.q.row(i) *= scale;
  }
  const int64_t width = int64_t{num_kv_heads_} * head_dim_;
  ws.keys.resize(total, width);
  ws.latents.resize(total, width);
  keys_->dequantize(ws.keys.data(), width);
  values_.dequantize(ws.latents.data(), width);

  const int ratio = num_qo_heads_ / num_kv_heads_;
  std::vector<detail::RowsView> keys(num_qo_heads_), values(num_qo_heads_);
  std::vector<int64_t> out_col(num_qo_heads_);
  for (int h = 0; h < num_qo_heads_; ++h) {
    const int64_t col = int64_t{h / ratio} * head_dim_;
    keys[h] = {ws.keys.data() + col, width, head_dim_};
    values[h] = {ws.latents.data() + col, width, head_dim_};
    out_col[h] = int64_t{h} * head_dim_;
  }
  ws.heads.resize(n, int64_t{num_qo_heads_} * head_dim_);
  detail::causal_attention(ws.q, head_dim_, keys, values, out_col, visible, ws.heads, ws.scores);
  detail::project(ws.heads, w.wo, out);
  detail::add_bias(out, w.bo);
}

void KiviKvCache::reset() {
  keys_->clear();
  values_.clear();
  positions_.clear();
}

void KiviKvCache::reserve(int64_t tokens) {
  values_.reserve(tokens);
  positions_.reserve(static_cast<size_t>(tokens));
}

MatrixRM KiviKvCache::keys() const {
  MatrixRM k(size(), int64_t{num_kv_heads_} * head_dim_);
  keys_->dequantize(k.data(), k.cols());
  return k;
}

MatrixRM KiviKvCache::values() const {
  MatrixRM v(size(), int64_t{num_kv_heads_} * head_dim_);
  values_.dequantize(v.data(), v.cols());
  return v;
}

int64_t KiviKvCache::quantized_keys() const { return keys_->quantized(); }
int64_t KiviKvCache::quantized_values() const { return values_.quantized(); }

double KiviKvCache::bytes_per_token() const {
  return kivi_bytes_per_token(kivi_, num_kv_heads_, head_dim_);
}

int64_t KiviKvCache::residual_bytes_per_token() const {
  return 4 * int64_t{num_kv_heads_} * head_dim_;
}

int64_t KiviKvCache::bytes_held() const { return keys_->bytes_held() + values_.bytes_held(); }

KiviAttention::KiviAttention(const LlamaWeights& weights, const KiviConfig& config) {
  const int n_layers = weights.config.n_layers;
  LKV_CHECK_ARG(static_cast<int>(weights.layers.size()) == n_layers, "model has ",
                weights.layers.size(), " layers, config says ", n_layers);
  auto workspace = std::make_shared<AttentionWorkspace>();
  build(n_layers,
        [&](int l) { return KiviKvCache(weights.config, weights.layers[l], config, workspace); });
}

}  // namespace latentkv
