#include "latentkv/model/dense_kv_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "latentkv/rope.h"
#include "latentkv/status.h"
#include "model/forward_ops.h"

namespace latentkv {

namespace {
// Query rows per attention task: a block only computes scores up to its last row's causal
// limit, so prefill wastes at most one block of masked work per row.
constexpr int64_t kQueryBlock = 64;
}  // namespace

const char* kv_dtype_name(KvDtype dtype) { return dtype == KvDtype::kF16 ? "f16" : "f32"; }

KvDtype parse_kv_dtype(const std::string& name) {
  if (name == "f32") return KvDtype::kF32;
  if (name == "f16") return KvDtype::kF16;
  LKV_THROW(StatusCode::kInvalidArgument, "unknown KV cache dtype '", name, "' (use f32 or f16)");
}

// Cache of one layer: keys (after RoPE) and values per KV head, [num_kv_heads][capacity][head_dim]
// so that one head's tokens are contiguous for the score and value GEMMs. Only the vector of the
// active dtype is used.
struct DenseKvAttention::LayerCache {
  int64_t size = 0, capacity = 0;
  std::vector<float> k32, v32;
  std::vector<Eigen::half> k16, v16;
};

DenseKvAttention::DenseKvAttention(const LlamaWeights& weights, KvDtype dtype)
    : weights_(weights),
      dtype_(dtype),
      inv_freq_(rope_inv_freq(weights.config.rope, weights.config.head_dim)),
      layers_(weights.config.n_layers) {}

DenseKvAttention::~DenseKvAttention() = default;

void DenseKvAttention::reset() {
  for (auto& c : layers_) c.size = 0;
}

int64_t DenseKvAttention::cached_tokens(int layer) const {
  LKV_CHECK_ARG(layer >= 0 && layer < static_cast<int>(layers_.size()), "layer ", layer,
                " out of range [0, ", layers_.size(), ")");
  return layers_[layer].size;
}

void DenseKvAttention::reserve(int64_t num_tokens) {
  for (auto& c : layers_) grow(c, num_tokens);
}

// Reallocates to at least `needed` tokens (doubling, so appending token by token is amortized
// O(1)), keeping the cached tokens of every head.
void DenseKvAttention::grow(LayerCache& c, int64_t needed) {
  if (needed <= c.capacity) return;
  const int64_t cap = std::max(needed, 2 * c.capacity);
  const int64_t hd = weights_.config.head_dim, nkv = weights_.config.num_kv_heads;
  auto regrow = [&](auto& buf) {
    std::remove_reference_t<decltype(buf)> fresh(static_cast<size_t>(nkv * cap * hd));
    for (int64_t g = 0; g < nkv; ++g)
      std::copy_n(buf.begin() + g * c.capacity * hd, c.size * hd, fresh.begin() + g * cap * hd);
    buf.swap(fresh);
  };
  if (dtype_ == KvDtype::kF32) {
    regrow(c.k32);
    regrow(c.v32);
  } else {
    regrow(c.k16);
    regrow(c.v16);
  }
  c.capacity = cap;
}

void DenseKvAttention::forward(int layer, const Eigen::Ref<const MatrixRM>& x,
                               const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) {
  const LlamaConfig& cfg = weights_.config;
  LKV_CHECK_ARG(layer >= 0 && layer < cfg.n_layers, "layer ", layer, " out of range");
  const int64_t n = x.rows();
  LKV_CHECK_ARG(n >= 1 && x.cols() == cfg.d_model, "attention input is [", n, ", ", x.cols(),
                "], expected [n >= 1, ", cfg.d_model, "]");
  LKV_CHECK_ARG(static_cast<int64_t>(positions.size()) == n, positions.size(),
                " positions for a chunk of ", n, " tokens");
  LKV_CHECK_ARG(out.rows() == n && out.cols() == cfg.d_model, "attention output has wrong shape");
  const LlamaLayerWeights& lw = weights_.layers[layer];
  const int hd = cfg.head_dim, half = hd / 2, nq = cfg.num_qo_heads, nkv = cfg.num_kv_heads;

  q_.resize(n, static_cast<int64_t>(nq) * hd);
  k_.resize(n, static_cast<int64_t>(nkv) * hd);
  v_.resize(n, static_cast<int64_t>(nkv) * hd);
  detail::linear(x, lw.wq, q_);
  detail::linear(x, lw.wk, k_);
  detail::linear(x, lw.wv, v_);
  detail::add_bias(q_, lw.bq);
  detail::add_bias(k_, lw.bk);
  detail::add_bias(v_, lw.bv);

  // cos/sin per (token, frequency), shared by all layers of a chunk. Angles and products in
  // double, exactly as apply_rope() in rope.h.
  if (positions != rope_positions_) {
    rope_positions_ = positions;
    rope_cos_.resize(static_cast<size_t>(n * half));
    rope_sin_.resize(static_cast<size_t>(n * half));
    for (int64_t i = 0; i < n; ++i)
      for (int f = 0; f < half; ++f) {
        const double angle = static_cast<double>(positions[i]) * inv_freq_[f];
        rope_cos_[i * half + f] = std::cos(angle);
        rope_sin_[i * half + f] = std::sin(angle);
      }
  }
  auto rotate = [&](float* head, int64_t i) {
    const double* c = &rope_cos_[i * half];
    const double* s = &rope_sin_[i * half];
    for (int f = 0; f < half; ++f) {
      const double a = head[f], b = head[f + half];
      head[f] = static_cast<float>(a * c[f] - b * s[f]);
      head[f + half] = static_cast<float>(b * c[f] + a * s[f]);
    }
  };

  LayerCache& cache = layers_[layer];
  const int64_t first_new = cache.size;
  grow(cache, first_new + n);
#pragma omp parallel for schedule(static) if (detail::worth_threads(n * (nq + nkv) * hd * 4))
  for (int64_t i = 0; i < n; ++i) {
    for (int h = 0; h < nq; ++h) rotate(&q_(i, int64_t{h} * hd), i);
    for (int g = 0; g < nkv; ++g) {
      rotate(&k_(i, int64_t{g} * hd), i);
      const int64_t dst = (g * cache.capacity + first_new + i) * hd;
      const float* ks = &k_(i, int64_t{g} * hd);
      const float* vs = &v_(i, int64_t{g} * hd);
      if (dtype_ == KvDtype::kF32) {
        std::copy_n(ks, hd, &cache.k32[dst]);
        std::copy_n(vs, hd, &cache.v32[dst]);
      } else {
        for (int e = 0; e < hd; ++e) {
          cache.k16[dst + e] = Eigen::half(ks[e]);
          cache.v16[dst + e] = Eigen::half(vs[e]);
        }
      }
    }
  }
  cache.size = first_new + n;

  attend(cache, first_new, n);
  detail::linear(attn_, lw.wo, out);
  detail::add_bias(out, lw.bo);
}

// attn_[n, nq*hd] = softmax(q kᵀ / sqrt(hd) + causal mask) v for every query head, reading keys
// and values of the whole sequence from the cache.
void DenseKvAttention::attend(const LayerCache& cache, int64_t first_new, int64_t n) {
  const LlamaConfig& cfg = weights_.config;
  const int64_t hd = cfg.head_dim, nq = cfg.num_qo_heads, nkv = cfg.num_kv_heads;
  const int64_t total = cache.size, cap = cache.capacity, ratio = cfg.gqa_ratio();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  attn_.resize(n, nq * hd);

  // fp16 caches are widened once per call (per KV head, not per query head) so that the score
  // and value products stay fp32 GEMMs.
  const float* kbase;
  const float* vbase;
  int64_t head_stride;
  if (dtype_ == KvDtype::kF32) {
    kbase = cache.k32.data();
    vbase = cache.v32.data();
    head_stride = cap * hd;
  } else {
    widened_k_.resize(static_cast<size_t>(nkv * total * hd));
    widened_v_.resize(static_cast<size_t>(nkv * total * hd));
#pragma omp parallel for collapse(2) \
    schedule(static) if (detail::worth_threads(2 * nkv * total * hd))
    for (int64_t g = 0; g < nkv; ++g)
      for (int64_t t = 0; t < total; ++t)
        for (int64_t e = 0; e < hd; ++e) {
          widened_k_[(g * total + t) * hd + e] =
              static_cast<float>(cache.k16[(g * cap + t) * hd + e]);
          widened_v_[(g * total + t) * hd + e] =
              static_cast<float>(cache.v16[(g * cap + t) * hd + e]);
        }
    kbase = widened_k_.data();
    vbase = widened_v_.data();
    head_stride = total * hd;
  }

  const int64_t row_blocks = (n + kQueryBlock - 1) / kQueryBlock;
  const int64_t tasks = nq * row_blocks;
  scores_.resize(static_cast<size_t>(omp_get_max_threads()));
  // Work of the score and value products, about nq * n * (first_new + n/2) * hd * 2.
  const int64_t work = nq * n * (first_new + (n + 1) / 2) * hd * 2;
#pragma omp parallel for schedule(dynamic) if (detail::worth_threads(work))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t h = task / row_blocks, r0 = (task % row_blocks) * kQueryBlock;
    const int64_t rows = std::min(kQueryBlock, n - r0);
    const int64_t keys = first_new + r0 + rows;  // causal limit of the block's last row
    const int64_t g = h / ratio;
    using ConstMap = Eigen::Map<const MatrixRM>;
    const ConstMap kh(kbase + g * head_stride, keys, hd);
    const ConstMap vh(vbase + g * head_stride, keys, hd);
    // Rows padded to whole 64-byte lines in an aligned buffer: Eigen's vectorized exp() takes a
    // scalar path for unaligned leading elements, so every row must start aligned for the
    // result not to depend on which thread's scratch holds it.
    const int64_t stride = (keys + 15) / 16 * 16;
    auto& buf = scores_[omp_get_thread_num()];
    if (static_cast<int64_t>(buf.size()) < rows * stride)
      buf.resize(static_cast<size_t>(rows * stride));
    Eigen::Map<MatrixRM, Eigen::Unaligned, Eigen::OuterStride<>> s(buf.data(), rows, keys,
                                                                   Eigen::OuterStride<>(stride));
    s.noalias() = q_.block(r0, h * hd, rows, hd) * kh.transpose();
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t visible = first_new + r0 + r + 1;
      auto row = s.row(r).head(visible).array();
      const float mx = row.maxCoeff();
      row = ((row - mx) * scale).exp();
      // Summed in double by a plain loop: accurate, and its order is fixed.
      const float* p = &s(r, 0);
      double sum = 0;
      for (int64_t j = 0; j < visible; ++j) sum += p[j];
      row *= static_cast<float>(1.0 / sum);
      if (visible < keys) s.row(r).tail(keys - visible).setZero();
    }
    attn_.block(r0, h * hd, rows, hd).noalias() = s * vh;
  }
}

}  // namespace latentkv
