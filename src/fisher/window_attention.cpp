#include "fisher/window_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "fisher/window_ops.h"
#include "latentkv/rope.h"

namespace latentkv::fisher_detail {

namespace {

// Query rows per block. Block r0 only scores keys 0..r0+rows-1, so about half of the [T, T]
// score matrix (the masked half) is never computed; 64 keeps the GEMMs efficient.
constexpr int64_t kRowBlock = 64;

template <typename Scalar>
using ConstBlock = Eigen::Block<const MatrixRMT<Scalar>, Eigen::Dynamic, Eigen::Dynamic, false>;

// p = causal softmax of q rows [r0, r0+rows) against keys [0, r0+rows): [rows, r0+rows].
template <typename Scalar>
void block_probabilities(const ConstBlock<Scalar>& qh, const ConstBlock<Scalar>& kh, int64_t r0,
                         int64_t rows, Scalar scale, MatrixRMT<Scalar>* p) {
  const int64_t cols = r0 + rows;
  serial_product(qh.middleRows(r0, rows), kh.topRows(cols).transpose(), *p);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t valid = r0 + i + 1;  // position r0+i sees keys 0..r0+i
    auto row = p->row(i);
    auto seen = row.head(valid).array();
    seen *= scale;
    const Scalar mx = seen.maxCoeff();
    seen = (seen - mx).exp();
    seen /= seen.sum();
    row.tail(cols - valid).setZero();
  }
}

// Multiply-adds of one causal attention pass (scores and weighted sum, about half of [T, T]).
int64_t attention_work(const LlamaConfig& config, int64_t n) {
  return n * n * config.head_dim * config.num_qo_heads;
}

}  // namespace

template <typename Scalar>
RopeTables<Scalar>::RopeTables(const LlamaConfig& config, int64_t num_tokens) {
  const std::vector<double> inv_freq = rope_inv_freq(config.rope, config.head_dim);
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  cos.resize(num_tokens, half);
  sin.resize(num_tokens, half);
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(t) * inv_freq[i];
      cos(t, i) = static_cast<Scalar>(std::cos(angle));
      sin(t, i) = static_cast<Scalar>(std::sin(angle));
    }
  }
}

template <typename Scalar>
void apply_rope_rows(const RopeTables<Scalar>& tables, int head_dim, bool inverse,
                     MatrixRMT<Scalar>* x) {
  const int64_t n = x->rows(), heads = x->cols() / head_dim, half = head_dim / 2;
  const Scalar sign = inverse ? Scalar(-1) : Scalar(1);
  // Dynamic chunks: a descheduled thread on a shared machine holds up only its current chunk.
#pragma omp parallel for schedule(dynamic, 32) if (x->size() >= kMinParallelWork)
  for (int64_t t = 0; t < n; ++t) {
    Scalar* row = x->row(t).data();
    const Scalar* c = tables.cos.row(t).data();
    const Scalar* s = tables.sin.row(t).data();
    for (int64_t h = 0; h < heads; ++h) {
      Scalar* v = row + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const Scalar a = v[i], b = v[i + half], sn = sign * s[i];
        v[i] = a * c[i] - b * sn;
        v[i + half] = b * c[i] + a * sn;
      }
    }
  }
}

template <typename Scalar>
void attention_forward(const LlamaConfig& config, const MatrixRMT<Scalar>& q,
                       const MatrixRMT<Scalar>& k, const MatrixRMT<Scalar>& v,
                       MatrixRMT<Scalar>* out) {
  const int64_t n = q.rows(), hd = config.head_dim;
  const int ratio = config.gqa_ratio();
  const Scalar scale = static_cast<Scalar>(1.0 / std::sqrt(static_cast<double>(hd)));
  out->resize(n, q.cols());
#pragma omp parallel if (attention_work(config, n) >= kMinParallelWork)
  {
    MatrixRMT<Scalar> p;
#pragma omp for schedule(dynamic)
    for (int h = 0; h < config.num_qo_heads; ++h) {
      const int kv = h / ratio;
      const ConstBlock<Scalar> qh = q.middleCols(h * hd, hd);
      const ConstBlock<Scalar> kh = k.middleCols(kv * hd, hd);
      const ConstBlock<Scalar> vh = v.middleCols(kv * hd, hd);
      for (int64_t r0 = 0; r0 < n; r0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, n - r0);
        block_probabilities(qh, kh, r0, rows, scale, &p);
        serial_product(p, vh.topRows(r0 + rows), out->block(r0, h * hd, rows, hd));
      }
    }
  }
}

template <typename Scalar>
void attention_backward(const LlamaConfig& config, const MatrixRMT<Scalar>& q,
                        const MatrixRMT<Scalar>& k, const MatrixRMT<Scalar>& v,
                        const MatrixRMT<Scalar>& d_out, MatrixRMT<Scalar>* dq,
                        MatrixRMT<Scalar>* dk, MatrixRMT<Scalar>* dv) {
  const int64_t n = q.rows(), hd = config.head_dim;
  const int ratio = config.gqa_ratio();
  const Scalar scale = static_cast<Scalar>(1.0 / std::sqrt(static_cast<double>(hd)));
  dq->resize(n, q.cols());
  // Query heads sharing a KV head would race on its dk/dv: each query head accumulates into its
  // own buffer, summed per KV head afterwards.
  std::vector<MatrixRMT<Scalar>> dk_head(config.num_qo_heads), dv_head(config.num_qo_heads);
#pragma omp parallel if (attention_work(config, n) >= kMinParallelWork)
  {
    MatrixRMT<Scalar> p, dp;
#pragma omp for schedule(dynamic)
    for (int h = 0; h < config.num_qo_heads; ++h) {
      const int kv = h / ratio;
      const ConstBlock<Scalar> qh = q.middleCols(h * hd, hd);
      const ConstBlock<Scalar> kh = k.middleCols(kv * hd, hd);
      const ConstBlock<Scalar> vh = v.middleCols(kv * hd, hd);
      const ConstBlock<Scalar> doh = d_out.middleCols(h * hd, hd);
      MatrixRMT<Scalar>& dkh = dk_head[h];
      MatrixRMT<Scalar>& dvh = dv_head[h];
      dkh.setZero(n, hd);
      dvh.setZero(n, hd);
      for (int64_t r0 = 0; r0 < n; r0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, n - r0), cols = r0 + rows;
        block_probabilities(qh, kh, r0, rows, scale, &p);
        const auto do_rows = doh.middleRows(r0, rows);
        serial_product(p.transpose(), do_rows, dvh.topRows(cols), true);
        serial_product(do_rows, vh.topRows(cols).transpose(), dp);
        // Softmax backward: dS = P ∘ (dP - rowsum(P ∘ dP)); masked entries have P = 0.
        for (int64_t i = 0; i < rows; ++i) {
          const Scalar dot = p.row(i).dot(dp.row(i));
          dp.row(i).array() = p.row(i).array() * (dp.row(i).array() - dot) * scale;
        }
        serial_product(dp, kh.topRows(cols), dq->block(r0, h * hd, rows, hd));
        serial_product(dp.transpose(), qh.middleRows(r0, rows), dkh.topRows(cols), true);
      }
    }
  }
  dk->setZero(n, k.cols());
  dv->setZero(n, v.cols());
  for (int h = 0; h < config.num_qo_heads; ++h) {
    const int kv = h / ratio;
    dk->middleCols(kv * hd, hd) += dk_head[h];
    dv->middleCols(kv * hd, hd) += dv_head[h];
  }
}

#define LKV_INSTANTIATE(S)                                                                         \
  template struct RopeTables<S>;                                                                   \
  template void apply_rope_rows<S>(const RopeTables<S>&, int, bool, MatrixRMT<S>*);                \
  template void attention_forward<S>(const LlamaConfig&, const MatrixRMT<S>&, const MatrixRMT<S>&, \
                                     const MatrixRMT<S>&, MatrixRMT<S>*);                          \
  template void attention_backward<S>(                                                             \
      const LlamaConfig&, const MatrixRMT<S>&, const MatrixRMT<S>&, const MatrixRMT<S>&,           \
      const MatrixRMT<S>&, MatrixRMT<S>*, MatrixRMT<S>*, MatrixRMT<S>*);
LKV_INSTANTIATE(float)
LKV_INSTANTIATE(double)
#undef LKV_INSTANTIATE

}  // namespace latentkv::fisher_detail
