// GpuModelWeights: one device allocation holding every weight of a model (fp16 matrices, fp32
// norms), filled from the CPU model or with random values for speed benchmarks.
#include "latentkv/engine/gpu_weights.h"

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#if defined(LATENTKV_WITH_CUDA)
#include <cuda_runtime.h>

#include "engine/device_memory.h"
#include "engine/model_ops.h"
#include "latentkv/quant/latent_quant.h"
#endif

namespace latentkv {
namespace {

constexpr int64_t kAlign = 256;
int64_t align_up(int64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// Element counts of one layer's tensors, in the order they are laid out.
struct LayerSizes {
  int64_t wqkv, wo, gate_up, down, norm;
  explicit LayerSizes(const LlamaConfig& c) {
    const int64_t d = c.d_model, hd = c.head_dim;
    wqkv = (c.num_qo_heads + 2 * int64_t{c.num_kv_heads}) * hd * d;
    wo = d * c.num_qo_heads * hd;
    gate_up = 2 * int64_t{c.ffn_dim} * d;
    down = d * c.ffn_dim;
    norm = d;
  }
  int64_t bytes() const {
    return align_up(2 * wqkv) + align_up(2 * wo) + align_up(2 * gate_up) + align_up(2 * down) +
           2 * align_up(4 * norm);
  }
};

}  // namespace

int64_t GpuModelWeights::bytes_for(const LlamaConfig& c) {
  const int64_t table = align_up(2 * int64_t{c.vocab_size} * c.d_model);
  return LayerSizes(c).bytes() * c.n_layers + table * (c.tied_embeddings ? 1 : 2) +
         align_up(4 * int64_t{c.d_model});
}

#if defined(LATENTKV_WITH_CUDA)

GpuModelWeights::~GpuModelWeights() {
  if (block_) cudaFree(block_);
}

void GpuModelWeights::allocate(const LlamaConfig& c) {
  c.validate();
  config_ = c;
  bytes_ = bytes_for(c);
  if (cudaMalloc(&block_, static_cast<size_t>(bytes_)) != cudaSuccess) {
    cudaGetLastError();
    block_ = nullptr;
    engine::throw_out_of_memory("model weights", bytes_);
  }
  char* at = static_cast<char*>(block_);
  auto take = [&](int64_t bytes) {
    char* p = at;
    at += align_up(bytes);
    return p;
  };
  const LayerSizes s(c);
  layers_.resize(c.n_layers);
  for (GpuLayerWeights& l : layers_) {
    l.wqkv = reinterpret_cast<const uint16_t*>(take(2 * s.wqkv));
    l.wo = reinterpret_cast<const uint16_t*>(take(2 * s.wo));
    l.w_gate_up = reinterpret_cast<const uint16_t*>(take(2 * s.gate_up));
    l.w_down = reinterpret_cast<const uint16_t*>(take(2 * s.down));
    l.attn_norm = reinterpret_cast<const float*>(take(4 * s.norm));
    l.ffn_norm = reinterpret_cast<const float*>(take(4 * s.norm));
  }
  const int64_t table = 2 * int64_t{c.vocab_size} * c.d_model;
  embeddings_ = reinterpret_cast<const uint16_t*>(take(table));
  lm_head_ = c.tied_embeddings ? embeddings_ : reinterpret_cast<const uint16_t*>(take(table));
  output_norm_ = reinterpret_cast<const float*>(take(4 * int64_t{c.d_model}));
}

namespace {

// Converts rows of fp32 matrices to fp16 into `dst` (device) through one host staging vector;
// `parts` are stacked in order (e.g. W_q, W_k, W_v into W_qkv).
void upload_f16(const uint16_t* dst, std::initializer_list<const MatrixRM*> parts,
                const char* what) {
  std::vector<uint16_t> host;
  for (const MatrixRM* m : parts) {
    const float* v = m->data();
    for (int64_t i = 0; i < m->size(); ++i) {
      if (!(std::isfinite(v[i]) && std::fabs(v[i]) <= 65504.0f))
        LKV_THROW(StatusCode::kNumericalError, what, " has a value (", v[i],
                  ") that is not a finite fp16 number");
      host.push_back(float_to_half_bits(v[i]));
    }
  }
  engine::check_cuda(
      cudaMemcpy(const_cast<uint16_t*>(dst), host.data(), host.size() * 2, cudaMemcpyHostToDevice),
      what);
}

void upload_f32(const float* dst, const Eigen::VectorXf& v, const char* what) {
  engine::check_cuda(
      cudaMemcpy(const_cast<float*>(dst), v.data(), v.size() * 4, cudaMemcpyHostToDevice), what);
}

}  // namespace

namespace {

// Every tensor must have the shape the config gives: the upload copies by the config's sizes.
void check_shapes(const LlamaWeights& w) {
  const LlamaConfig& c = w.config;
  c.validate();
  const int q = c.num_qo_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim, d = c.d_model;
  auto mat = [](const MatrixRM& m, int64_t rows, int64_t cols, const std::string& what) {
    LKV_CHECK_ARG(m.rows() == rows && m.cols() == cols, what, " is ", m.rows(), "x", m.cols(),
                  ", the config says ", rows, "x", cols);
  };
  auto vec = [](const Eigen::VectorXf& v, int64_t n, const std::string& what) {
    LKV_CHECK_ARG(v.size() == n, what, " has ", v.size(), " entries, the config says ", n);
  };
  LKV_CHECK_ARG(static_cast<int>(w.layers.size()) == c.n_layers, "the weights have ",
                w.layers.size(), " layers, the config says ", c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const LlamaLayerWeights& l = w.layers[i];
    const std::string at = str_cat(" of layer ", i);
    mat(l.wq, q, d, "W_q" + at);
    mat(l.wk, kv, d, "W_k" + at);
    mat(l.wv, kv, d, "W_v" + at);
    mat(l.wo, d, q, "W_o" + at);
    mat(l.w_gate, c.ffn_dim, d, "W_gate" + at);
    mat(l.w_up, c.ffn_dim, d, "W_up" + at);
    mat(l.w_down, d, c.ffn_dim, "W_down" + at);
    vec(l.attn_norm, d, "attention norm" + at);
    vec(l.ffn_norm, d, "MLP norm" + at);
  }
  mat(w.tok_embeddings, c.vocab_size, d, "token embeddings");
  if (!c.tied_embeddings) mat(w.output, c.vocab_size, d, "LM head");
  vec(w.output_norm, d, "output norm");
}

}  // namespace

std::unique_ptr<GpuModelWeights> GpuModelWeights::upload(const LlamaWeights& w,
                                                         const ProgressFn& progress) {
  const LlamaConfig& c = w.config;
  check_shapes(w);
  for (const LlamaLayerWeights& l : w.layers)
    if (l.bq.size() || l.bk.size() || l.bv.size() || l.bo.size())
      LKV_THROW(StatusCode::kUnsupported,
                "the GPU engine runs Llama blocks without attention biases; this model has them");
  engine::require_gpu();
  std::unique_ptr<GpuModelWeights> g(new GpuModelWeights());
  g->allocate(c);
  for (int i = 0; i < c.n_layers; ++i) {
    const LlamaLayerWeights& l = w.layers[i];
    const GpuLayerWeights& d = g->layers_[i];
    upload_f16(d.wqkv, {&l.wq, &l.wk, &l.wv}, "W_qkv");
    upload_f16(d.wo, {&l.wo}, "W_o");
    upload_f16(d.w_gate_up, {&l.w_gate, &l.w_up}, "W_gate/W_up");
    upload_f16(d.w_down, {&l.w_down}, "W_down");
    upload_f32(d.attn_norm, l.attn_norm, "attention norm");
    upload_f32(d.ffn_norm, l.ffn_norm, "MLP norm");
    if (progress) progress(i + 1, c.n_layers);
  }
  upload_f16(g->embeddings_, {&w.tok_embeddings}, "token embeddings");
  if (!c.tied_embeddings) upload_f16(g->lm_head_, {&w.output}, "LM head");
  upload_f32(g->output_norm_, w.output_norm, "output norm");
  return g;
}

std::unique_ptr<GpuModelWeights> GpuModelWeights::random(const LlamaConfig& c, uint64_t seed) {
  engine::require_gpu();
  std::unique_ptr<GpuModelWeights> g(new GpuModelWeights());
  g->allocate(c);
  // Uniform(-s, s) with s = sqrt(3 / fan_in) has the variance 1/fan_in of a scaled init, which
  // keeps activations O(1) through the layers (no fp16 overflow in benchmarks).
  auto fill = [&](const uint16_t* p, int64_t count, int64_t fan_in) {
    engine::check(engine::fill_random_fp16_run(const_cast<uint16_t*>(p), count, seed++,
                                               std::sqrt(3.0f / fan_in), nullptr));
  };
  const LayerSizes s(c);
  const Eigen::VectorXf ones = Eigen::VectorXf::Ones(c.d_model);
  for (const GpuLayerWeights& l : g->layers_) {
    fill(l.wqkv, s.wqkv, c.d_model);
    fill(l.wo, s.wo, int64_t{c.num_qo_heads} * c.head_dim);
    fill(l.w_gate_up, s.gate_up, c.d_model);
    fill(l.w_down, s.down, c.ffn_dim);
    upload_f32(l.attn_norm, ones, "attention norm");
    upload_f32(l.ffn_norm, ones, "MLP norm");
  }
  fill(g->embeddings_, int64_t{c.vocab_size} * c.d_model, 3);
  if (!c.tied_embeddings) fill(g->lm_head_, int64_t{c.vocab_size} * c.d_model, c.d_model);
  upload_f32(g->output_norm_, ones, "output norm");
  engine::check_cuda(cudaDeviceSynchronize(), "random weights");
  return g;
}

#else  // !LATENTKV_WITH_CUDA

GpuModelWeights::~GpuModelWeights() = default;

std::unique_ptr<GpuModelWeights> GpuModelWeights::upload(const LlamaWeights&, const ProgressFn&) {
  LKV_THROW(StatusCode::kUnsupported, "this latentkv build has no CUDA support");
}

std::unique_ptr<GpuModelWeights> GpuModelWeights::random(const LlamaConfig&, uint64_t) {
  LKV_THROW(StatusCode::kUnsupported, "this latentkv build has no CUDA support");
}

#endif

}  // namespace latentkv
