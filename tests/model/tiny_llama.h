// Small random Llama models and a naive, independent forward pass for testing the CPU reference.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <random>
#include <vector>

#include "latentkv/model/llama.h"
#include "latentkv/rope.h"

namespace latentkv::testing {

struct TinyLlamaSpec {
  int n_layers = 2;
  int d_model = 48;
  int num_qo_heads = 4;
  int num_kv_heads = 2;
  int head_dim = 12;
  int ffn_dim = 40;
  int vocab_size = 61;
  int64_t context_length = 256;
  double rope_theta = 10000.0;
  bool tied_embeddings = true;
  bool biases = false;
};

inline LlamaConfig tiny_config(const TinyLlamaSpec& s) {
  LlamaConfig c;
  c.name = "tiny";
  c.n_layers = s.n_layers;
  c.d_model = s.d_model;
  c.num_qo_heads = s.num_qo_heads;
  c.num_kv_heads = s.num_kv_heads;
  c.head_dim = s.head_dim;
  c.ffn_dim = s.ffn_dim;
  c.vocab_size = s.vocab_size;
  c.context_length = s.context_length;
  c.rms_eps = 1e-5;
  c.rope.theta = s.rope_theta;
  c.tied_embeddings = s.tied_embeddings;
  return c;
}

/// Gaussian weights scaled like a trained model's (1/sqrt(fan_in)), norms around 1.
inline LlamaWeights make_tiny_llama(const TinyLlamaSpec& s, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto mat = [&](int rows, int cols) {
    MatrixRM m(rows, cols);
    const float scale = 1.0f / std::sqrt(static_cast<float>(cols));
    for (int i = 0; i < m.size(); ++i) m.data()[i] = normal(rng) * scale;
    return m;
  };
  auto vec = [&](int n, float mean, float sd) {
    Eigen::VectorXf v(n);
    for (int i = 0; i < n; ++i) v[i] = mean + sd * normal(rng);
    return v;
  };
  LlamaWeights w;
  w.config = tiny_config(s);
  const int q = s.num_qo_heads * s.head_dim, kv = s.num_kv_heads * s.head_dim;
  w.tok_embeddings = mat(s.vocab_size, s.d_model);  // logits of std ~1 through a tied head
  for (int l = 0; l < s.n_layers; ++l) {
    LlamaLayerWeights lw;
    lw.attn_norm = vec(s.d_model, 1.0f, 0.1f);
    lw.wq = mat(q, s.d_model) * 2.0f;  // sharper attention than uniform
    lw.wk = mat(kv, s.d_model) * 2.0f;
    lw.wv = mat(kv, s.d_model);
    lw.wo = mat(s.d_model, q);
    if (s.biases) {
      lw.bq = vec(q, 0.0f, 0.1f);
      lw.bk = vec(kv, 0.0f, 0.1f);
      lw.bv = vec(kv, 0.0f, 0.1f);
      lw.bo = vec(s.d_model, 0.0f, 0.1f);
    }
    lw.ffn_norm = vec(s.d_model, 1.0f, 0.1f);
    lw.w_gate = mat(s.ffn_dim, s.d_model);
    lw.w_up = mat(s.ffn_dim, s.d_model);
    lw.w_down = mat(s.d_model, s.ffn_dim);
    w.layers.push_back(std::move(lw));
  }
  w.output_norm = vec(s.d_model, 1.0f, 0.1f);
  if (!s.tied_embeddings) w.output = mat(s.vocab_size, s.d_model);
  return w;
}

inline std::vector<int32_t> random_tokens(int n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = dist(rng);
  return t;
}

/// Straightforward double-precision forward pass over a whole sequence (no cache, no GEMMs,
/// textbook loops): logits [n, vocab] for every position. Independent of src/model.
inline Eigen::MatrixXd naive_llama_logits(const LlamaWeights& w, const std::vector<int32_t>& tok) {
  const LlamaConfig& c = w.config;
  const int n = static_cast<int>(tok.size()), hd = c.head_dim;
  const std::vector<double> inv_freq = rope_inv_freq(c.rope, hd);
  auto linear = [](const Eigen::VectorXd& x, const MatrixRM& W, const Eigen::VectorXf& b) {
    Eigen::VectorXd y = W.cast<double>() * x;
    if (b.size()) y += b.cast<double>();
    return y;
  };
  auto rmsnorm = [&](const Eigen::VectorXd& x, const Eigen::VectorXf& g) {
    const double inv = 1.0 / std::sqrt(x.squaredNorm() / x.size() + c.rms_eps);
    return Eigen::VectorXd((x * inv).cwiseProduct(g.cast<double>()));
  };
  std::vector<Eigen::VectorXd> h(n);
  for (int i = 0; i < n; ++i) h[i] = w.tok_embeddings.row(tok[i]).transpose().cast<double>();
  for (const LlamaLayerWeights& lw : w.layers) {
    std::vector<Eigen::VectorXd> q(n), k(n), v(n);
    for (int i = 0; i < n; ++i) {
      const Eigen::VectorXd x = rmsnorm(h[i], lw.attn_norm);
      q[i] = linear(x, lw.wq, lw.bq);
      k[i] = linear(x, lw.wk, lw.bk);
      v[i] = linear(x, lw.wv, lw.bv);
      for (int hh = 0; hh < c.num_qo_heads; ++hh)
        apply_rope(&q[i][hh * hd], hd, i, inv_freq.data());
      for (int g = 0; g < c.num_kv_heads; ++g) apply_rope(&k[i][g * hd], hd, i, inv_freq.data());
    }
    for (int i = 0; i < n; ++i) {
      Eigen::VectorXd att(c.num_qo_heads * hd);
      for (int hh = 0; hh < c.num_qo_heads; ++hh) {
        const int g = hh / (c.num_qo_heads / c.num_kv_heads);
        std::vector<double> p(i + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= i; ++j) {
          p[j] = q[i].segment(hh * hd, hd).dot(k[j].segment(g * hd, hd)) / std::sqrt(double(hd));
          mx = std::max(mx, p[j]);
        }
        for (int j = 0; j <= i; ++j) sum += (p[j] = std::exp(p[j] - mx));
        Eigen::VectorXd o = Eigen::VectorXd::Zero(hd);
        for (int j = 0; j <= i; ++j) o += p[j] / sum * v[j].segment(g * hd, hd);
        att.segment(hh * hd, hd) = o;
      }
      h[i] += linear(att, lw.wo, lw.bo);
    }
    for (int i = 0; i < n; ++i) {
      const Eigen::VectorXd x = rmsnorm(h[i], lw.ffn_norm);
      const Eigen::VectorXd gate = lw.w_gate.cast<double>() * x, up = lw.w_up.cast<double>() * x;
      Eigen::VectorXd act(gate.size());
      for (int j = 0; j < gate.size(); ++j) act[j] = gate[j] / (1 + std::exp(-gate[j])) * up[j];
      h[i] += lw.w_down.cast<double>() * act;
    }
  }
  Eigen::MatrixXd logits(n, c.vocab_size);
  for (int i = 0; i < n; ++i)
    logits.row(i) = (w.lm_head().cast<double>() * rmsnorm(h[i], w.output_norm)).transpose();
  return logits;
}

}  // namespace latentkv::testing
