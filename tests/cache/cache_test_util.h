// Test helpers for the reference caches: random layers, factors built without the decomposition
// code (exact identity factors, SVD in the test, random), the effective weights W' = B·A, the
// fold of B_v into W_o, and an ordinary fp64 attention written out in a few lines.
#pragma once

#include <omp.h>

#include <Eigen/Core>
#include <Eigen/SVD>
#include <cmath>
#include <random>
#include <vector>

#include "latentkv/factors.h"
#include "latentkv/model/llama.h"
#include "latentkv/rope.h"

namespace latentkv::testing {

/// Sets the OpenMP/Eigen thread count for a scope. The identity tests run many tiny problems,
/// for which thread-team start-up dominates (and on a loaded CI machine, dominates badly); they
/// pin one thread, and a dedicated test compares the threaded path against it.
class ScopedThreads {
 public:
  explicit ScopedThreads(int threads) : saved_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ScopedThreads() { omp_set_num_threads(saved_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int saved_;
};

struct LayerShape {
  int d_model = 96;
  int num_qo_heads = 4;
  int num_kv_heads = 2;
  int head_dim = 64;
  bool biases = false;
};

inline LlamaConfig layer_config(const LayerShape& s) {
  LlamaConfig c;
  c.name = "layer";
  c.n_layers = 1;
  c.d_model = s.d_model;
  c.num_qo_heads = s.num_qo_heads;
  c.num_kv_heads = s.num_kv_heads;
  c.head_dim = s.head_dim;
  c.ffn_dim = 8;
  c.vocab_size = 8;
  c.context_length = 4096;
  c.rope.theta = 10000.0;
  return c;
}

inline MatrixRM random_matrix(int64_t rows, int64_t cols, std::mt19937& rng, float scale) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  MatrixRM m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = scale * normal(rng);
  return m;
}

inline Eigen::VectorXf random_vector(int64_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Eigen::VectorXf v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = scale * normal(rng);
  return v;
}

/// Random attention weights scaled like a trained layer (1/sqrt(fan_in); keys/queries sharper).
inline LlamaLayerWeights random_layer(const LayerShape& s, std::mt19937& rng) {
  const int q = s.num_qo_heads * s.head_dim, kv = s.num_kv_heads * s.head_dim;
  const float in_scale = 1.0f / std::sqrt(static_cast<float>(s.d_model));
  LlamaLayerWeights w;
  w.wq = random_matrix(q, s.d_model, rng, 2.0f * in_scale);
  w.wk = random_matrix(kv, s.d_model, rng, 2.0f * in_scale);
  w.wv = random_matrix(kv, s.d_model, rng, in_scale);
  w.wo = random_matrix(s.d_model, q, rng, 1.0f / std::sqrt(static_cast<float>(q)));
  if (s.biases) {
    w.bq = random_vector(q, rng, 0.1f);
    w.bk = random_vector(kv, rng, 0.1f);
    w.bv = random_vector(kv, rng, 0.1f);
    w.bo = random_vector(s.d_model, rng, 0.1f);
  }
  return w;
}

/// Hidden states of roughly unit RMS, [n, d_model].
inline MatrixRM random_hidden(int64_t n, int d_model, std::mt19937& rng) {
  return random_matrix(n, d_model, rng, 1.0f);
}

/// Factor skeleton (shapes, grouping, bias) without A/B.
inline ProjectionFactors factor_shape(const LayerShape& s, int group_size,
                                      std::vector<int> group_heads, std::vector<int> ranks,
                                      const Eigen::VectorXf& bias) {
  ProjectionFactors f;
  f.d_model = s.d_model;
  f.head_dim = s.head_dim;
  f.num_kv_heads = s.num_kv_heads;
  f.group_size = group_size;
  f.group_heads = std::move(group_heads);
  f.ranks = std::move(ranks);
  f.bias.assign(bias.data(), bias.data() + bias.size());
  return f;
}

/// Rows of W for the heads of group g, in slot order: W_g [group_size*head_dim, d_model].
inline Eigen::MatrixXd group_rows(const MatrixRM& w, const ProjectionFactors& f, int g) {
  const int hd = f.head_dim, gs = f.group_size;
  Eigen::MatrixXd wg(gs * hd, w.cols());
  for (int s = 0; s < gs; ++s)
    wg.middleRows(s * hd, hd) =
        w.middleRows(int64_t{f.group_heads[g * gs + s]} * hd, hd).cast<double>();
  return wg;
}

inline void set_group(ProjectionFactors& f, int g, const Eigen::MatrixXd& a,
                      const Eigen::MatrixXd& b) {
  const int64_t d = f.d_model, rows = int64_t{f.group_size} * f.head_dim, r = f.ranks[g];
  f.a.resize(static_cast<size_t>(f.total_rank() * d));
  f.b.resize(static_cast<size_t>(f.total_rank() * rows));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < d; ++j)
      f.a[(f.rank_offset(g) + i) * d + j] = static_cast<float>(a(i, j));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < r; ++j) f.b[f.b_offset(g) + i * r + j] = static_cast<float>(b(i, j));
}

/// Exact full-rank factors: A_g = W_g, B_g = I (rank = group_size*head_dim), so B·A = W exactly.
inline ProjectionFactors identity_factors(const MatrixRM& w, const LayerShape& s, int group_size,
                                          std::vector<int> group_heads,
                                          const Eigen::VectorXf& bias) {
  const int r = group_size * s.head_dim;
  ProjectionFactors f = factor_shape(s, group_size, std::move(group_heads),
                                     std::vector<int>(s.num_kv_heads / group_size, r), bias);
  for (int g = 0; g < f.num_groups(); ++g)
    set_group(f, g, group_rows(w, f, g), Eigen::MatrixXd::Identity(r, r));
  return f;
}

/// Truncated SVD factors computed here: W_g = U Σ Vᵀ, B = U_r Σ_r^½, A = Σ_r^½ V_rᵀ.
inline ProjectionFactors svd_factors(const MatrixRM& w, const LayerShape& s, int group_size,
                                     std::vector<int> group_heads, std::vector<int> ranks,
                                     const Eigen::VectorXf& bias) {
  ProjectionFactors f = factor_shape(s, group_size, std::move(group_heads), std::move(ranks), bias);
  for (int g = 0; g < f.num_groups(); ++g) {
    Eigen::BDCSVD<Eigen::MatrixXd> svd(group_rows(w, f, g),
                                       Eigen::ComputeThinU | Eigen::ComputeThinV);
    const int r = f.ranks[g];
    const Eigen::VectorXd root = svd.singularValues().head(r).cwiseSqrt();
    set_group(f, g, root.asDiagonal() * svd.matrixV().leftCols(r).transpose(),
              svd.matrixU().leftCols(r) * root.asDiagonal());
  }
  return f;
}

/// Random factors of the given ranks (the identity W' = B·A holds for any A, B).
inline ProjectionFactors random_factors(const LayerShape& s, int group_size,
                                        std::vector<int> group_heads, std::vector<int> ranks,
                                        const Eigen::VectorXf& bias, std::mt19937& rng) {
  ProjectionFactors f = factor_shape(s, group_size, std::move(group_heads), std::move(ranks), bias);
  const int rows = group_size * s.head_dim;
  for (int g = 0; g < f.num_groups(); ++g) {
    const int r = f.ranks[g];
    set_group(f, g,
              random_matrix(r, s.d_model, rng, 1.0f / std::sqrt(float(s.d_model))).cast<double>(),
              random_matrix(rows, r, rng, 2.0f / std::sqrt(float(r))).cast<double>());
  }
  return f;
}

/// B_g of group g as a double matrix.
inline Eigen::MatrixXd group_b(const ProjectionFactors& f, int g) {
  const int64_t rows = int64_t{f.group_size} * f.head_dim;
  Eigen::MatrixXd b(rows, f.ranks[g]);
  for (int64_t i = 0; i < rows; ++i)
    for (int j = 0; j < f.ranks[g]; ++j) b(i, j) = f.b[f.b_offset(g) + i * f.ranks[g] + j];
  return b;
}

/// The projection the factors implement, W' [num_kv_heads*head_dim, d_model] in head order.
inline Eigen::MatrixXd effective_weight(const ProjectionFactors& f) {
  const int hd = f.head_dim, gs = f.group_size;
  Eigen::MatrixXd w(int64_t{f.num_kv_heads} * hd, f.d_model);
  for (int g = 0; g < f.num_groups(); ++g) {
    Eigen::MatrixXd a(f.ranks[g], f.d_model);
    for (int i = 0; i < f.ranks[g]; ++i)
      for (int j = 0; j < f.d_model; ++j)
        a(i, j) = f.a[(int64_t{f.rank_offset(g)} + i) * f.d_model + j];
    const Eigen::MatrixXd ba = group_b(f, g) * a;
    for (int s = 0; s < gs; ++s)
      w.middleRows(int64_t{f.group_heads[g * gs + s]} * hd, hd) = ba.middleRows(s * hd, hd);
  }
  return w;
}

/// Keys or values rebuilt from latents h_g ([T, ranks[g]] per group): [T, num_kv_heads*head_dim]
/// in head order, bias added (pre-RoPE for keys).
inline Eigen::MatrixXd rebuild_from_latents(const ProjectionFactors& f,
                                            const std::vector<Eigen::MatrixXd>& latents) {
  const int hd = f.head_dim, gs = f.group_size;
  const int64_t t = latents.front().rows();
  Eigen::MatrixXd out(t, int64_t{f.num_kv_heads} * hd);
  for (int g = 0; g < f.num_groups(); ++g) {
    const Eigen::MatrixXd kg = latents[g] * group_b(f, g).transpose();
    for (int s = 0; s < gs; ++s)
      out.middleCols(int64_t{f.group_heads[g * gs + s]} * hd, hd) = kg.middleCols(s * hd, hd);
  }
  if (!f.bias.empty())
    out.rowwise() +=
        Eigen::Map<const Eigen::VectorXf>(f.bias.data(), f.bias.size()).cast<double>().transpose();
  return out;
}

/// W'_o [d_model, Σ_h r_v(h)] = per query head W_{o,h}·B_v,g[slot] (heads in order), and the
/// folded bias b_o + Σ_h W_{o,h}·b_v[kv(h)]: the FoldedOutputProjection contract, computed here
/// in fp64 without the decomposition code.
inline FoldedOutputProjection fold_wo(const LlamaLayerWeights& w, const ProjectionFactors& fv,
                                      int num_qo_heads) {
  const int hd = fv.head_dim, ratio = num_qo_heads / fv.num_kv_heads;
  FoldedOutputProjection fo;
  fo.d_model = static_cast<int>(w.wo.rows());
  fo.num_qo_heads = num_qo_heads;
  fo.head_offsets.push_back(0);
  for (int h = 0; h < num_qo_heads; ++h)
    fo.head_offsets.push_back(fo.head_offsets.back() + fv.ranks[fv.head_location(h / ratio).first]);
  Eigen::MatrixXd out(fo.d_model, fo.width());
  Eigen::VectorXd bias = Eigen::VectorXd::Zero(fo.d_model);
  if (w.bo.size()) bias = w.bo.cast<double>();
  for (int h = 0; h < num_qo_heads; ++h) {
    const int kv = h / ratio;
    const auto [g, slot] = fv.head_location(kv);
    const Eigen::MatrixXd wo_h = w.wo.middleCols(int64_t{h} * hd, hd).cast<double>();
    out.middleCols(fo.head_offsets[h], fv.ranks[g]) =
        wo_h * group_b(fv, g).middleRows(int64_t{slot} * hd, hd);
    if (!fv.bias.empty())
      bias += wo_h * Eigen::Map<const Eigen::VectorXf>(fv.bias.data() + kv * hd, hd).cast<double>();
  }
  const MatrixRM w32 = out.cast<float>();
  fo.w.assign(w32.data(), w32.data() + w32.size());
  if (w.bo.size() || !fv.bias.empty()) {
    const Eigen::VectorXf b32 = bias.cast<float>();
    fo.bias.assign(b32.data(), b32.data() + b32.size());
  }
  return fo;
}

/// Ordinary attention in fp64: queries xq [n, d_model] at qpos see the tokens with kpos <= qpos
/// whose pre-RoPE keys/values ([T, num_kv_heads*head_dim], bias included) are given.
inline Eigen::MatrixXd ordinary_attention(const LlamaConfig& c, const LlamaLayerWeights& w,
                                          const Eigen::MatrixXd& xq,
                                          const std::vector<int64_t>& qpos,
                                          const Eigen::MatrixXd& keys,
                                          const Eigen::MatrixXd& values,
                                          const std::vector<int64_t>& kpos) {
  const int hd = c.head_dim, ratio = c.num_qo_heads / c.num_kv_heads;
  using RowMajorD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::vector<double> inv = rope_inv_freq(c.rope, hd);
  RowMajorD qr = xq * w.wq.cast<double>().transpose();  // row-major: heads contiguous for RoPE
  if (w.bq.size()) qr.rowwise() += w.bq.cast<double>().transpose();
  RowMajorD kr = keys;
  for (int64_t i = 0; i < qr.rows(); ++i)
    for (int h = 0; h < c.num_qo_heads; ++h) apply_rope(&qr(i, h * hd), hd, qpos[i], inv.data());
  for (int64_t t = 0; t < kr.rows(); ++t)
    for (int g = 0; g < c.num_kv_heads; ++g) apply_rope(&kr(t, g * hd), hd, kpos[t], inv.data());
  Eigen::MatrixXd heads = Eigen::MatrixXd::Zero(xq.rows(), int64_t{c.num_qo_heads} * hd);
  for (int64_t i = 0; i < qr.rows(); ++i)
    for (int h = 0; h < c.num_qo_heads; ++h) {
      const int g = h / ratio;
      std::vector<double> s;
      double mx = -1e300;
      for (int64_t t = 0; t < kr.rows() && kpos[t] <= qpos[i]; ++t) {
        s.push_back(qr.row(i).segment(h * hd, hd).dot(kr.row(t).segment(g * hd, hd)) /
                    std::sqrt(double(hd)));
        mx = std::max(mx, s.back());
      }
      double sum = 0;
      for (double& v : s) sum += (v = std::exp(v - mx));
      for (size_t t = 0; t < s.size(); ++t)
        heads.row(i).segment(h * hd, hd) += s[t] / sum * values.row(t).segment(g * hd, hd);
    }
  Eigen::MatrixXd out = heads * w.wo.cast<double>().transpose();
  if (w.bo.size()) out.rowwise() += w.bo.cast<double>().transpose();
  return out;
}

/// max |a - b| / max |b|: error relative to the output's scale.
inline double relative_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(b.cwiseAbs().maxCoeff(), 1e-30);
}

}  // namespace latentkv::testing
