// Throughput of the CPU forward pass with each reference attention backend: the dense fp32/fp16
// KV cache, the latent cache (LatentAttention) at several ranks/bit widths, and the KIVI-style
// baseline. The model is random with SmolLM2-135M layer shapes (d_model 576, 9 query / 3 KV heads
// of 64, SwiGLU 1536) but only 4 layers and a 2048-token vocabulary, so that one iteration is
// short; speed does not depend on the weight values. Factors are random with the stated ranks.
//
//   prefill: one window of `ctx` tokens from an empty cache (the perplexity workload);
//   decode:  64 single-token steps after a prefill of ctx − 64 tokens (prefill not timed).
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "latentkv/factors.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/reference/kivi_kv_cache.h"
#include "latentkv/reference/latent_attention.h"

namespace latentkv {
namespace {

constexpr int kLayers = 4, kDModel = 576, kQoHeads = 9, kKvHeads = 3, kHeadDim = 64;
constexpr int kFfn = 1536, kVocab = 2048;

MatrixRM random_matrix(int rows, int cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(cols)));
  MatrixRM m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

const LlamaWeights& model() {
  static const LlamaWeights w = [] {
    std::mt19937 rng(1);
    LlamaWeights m;
    LlamaConfig& c = m.config;
    c.name = "bench";
    c.n_layers = kLayers;
    c.d_model = kDModel;
    c.num_qo_heads = kQoHeads;
    c.num_kv_heads = kKvHeads;
    c.head_dim = kHeadDim;
    c.ffn_dim = kFfn;
    c.vocab_size = kVocab;
    c.context_length = 8192;
    c.rope.theta = 100000.0;
    c.tied_embeddings = true;
    m.tok_embeddings = random_matrix(kVocab, kDModel, rng) * std::sqrt(float(kDModel));
    m.output_norm = Eigen::VectorXf::Ones(kDModel);
    for (int l = 0; l < kLayers; ++l) {
      LlamaLayerWeights lw;
      lw.attn_norm = lw.ffn_norm = Eigen::VectorXf::Ones(kDModel);
      lw.wq = random_matrix(kQoHeads * kHeadDim, kDModel, rng);
      lw.wk = random_matrix(kKvHeads * kHeadDim, kDModel, rng);
      lw.wv = random_matrix(kKvHeads * kHeadDim, kDModel, rng);
      lw.wo = random_matrix(kDModel, kQoHeads * kHeadDim, rng);
      lw.w_gate = random_matrix(kFfn, kDModel, rng);
      lw.w_up = random_matrix(kFfn, kDModel, rng);
      lw.w_down = random_matrix(kDModel, kFfn, rng);
      m.layers.push_back(std::move(lw));
    }
    return m;
  }();
  return w;
}

ProjectionFactors random_factors(int group_size, int rank, std::mt19937& rng) {
  ProjectionFactors f;
  f.d_model = kDModel;
  f.head_dim = kHeadDim;
  f.num_kv_heads = kKvHeads;
  f.group_size = group_size;
  f.group_heads = consecutive_group_heads(kKvHeads);
  f.ranks.assign(kKvHeads / group_size, rank);
  const MatrixRM a = random_matrix(f.total_rank(), kDModel, rng);
  const MatrixRM b = random_matrix(f.num_groups() * group_size * kHeadDim, rank, rng);
  f.a.assign(a.data(), a.data() + a.size());
  f.b.assign(b.data(), b.data() + b.size());
  return f;
}

// group_size, per-group rank, latent bits (16 = fp16), B_v folded into W_o or not.
std::unique_ptr<AttentionBackend> latent_backend(int group_size, int rank, int bits, bool fold) {
  std::mt19937 rng(2);
  std::vector<LatentLayerFactors> layers;
  for (int l = 0; l < kLayers; ++l) {
    LatentLayerFactors f;
    f.key = random_factors(group_size, rank, rng);
    f.value = random_factors(group_size, rank, rng);
    if (fold) {  // speed only: a folded W_o of the right shape (kQoHeads · rank columns)
      FoldedOutputProjection& fo = f.folded_output;
      fo.d_model = kDModel;
      fo.num_qo_heads = kQoHeads;
      for (int h = 0; h <= kQoHeads; ++h) fo.head_offsets.push_back(h * rank);
      const MatrixRM w = random_matrix(kDModel, kQoHeads * rank, rng);
      fo.w.assign(w.data(), w.data() + w.size());
    }
    layers.push_back(std::move(f));
  }
  LatentCacheConfig cfg;
  cfg.key.bits = cfg.value.bits = bits;
  cfg.key.residual = cfg.value.residual = 128;
  return std::make_unique<LatentAttention>(model(), std::move(layers), cfg);
}

std::unique_ptr<AttentionBackend> kivi_backend(int bits) {
  KiviConfig cfg;
  cfg.key_bits = cfg.value_bits = bits;
  return std::make_unique<KiviAttention>(model(), cfg);
}

std::vector<TokenId> tokens(int n) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<TokenId> d(0, kVocab - 1);
  std::vector<TokenId> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

using Factory = std::unique_ptr<AttentionBackend> (*)();

void BM_Prefill(benchmark::State& state, Factory make) {
  const int ctx = static_cast<int>(state.range(0));
  LlamaForward fwd(model(), make());
  const std::vector<TokenId> window = tokens(ctx);
  MatrixRM logits;
  for (auto _ : state) {
    fwd.reset();
    fwd.forward(window, &logits, ctx - 1);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(ctx), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Decode(benchmark::State& state, Factory make) {
  const int ctx = static_cast<int>(state.range(0)), steps = 64;
  LlamaForward fwd(model(), make());
  const std::vector<TokenId> all = tokens(ctx);
  const std::vector<TokenId> prompt(all.begin(), all.end() - steps);
  MatrixRM logits;
  for (auto _ : state) {
    state.PauseTiming();
    fwd.reset();
    fwd.forward(prompt, nullptr);
    state.ResumeTiming();
    for (int i = ctx - steps; i < ctx; ++i) fwd.forward({all[i]}, &logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsIterationInvariantRate);
}

std::unique_ptr<AttentionBackend> dense_f32() {
  return std::make_unique<DenseKvAttention>(model(), KvDtype::kF32);
}
std::unique_ptr<AttentionBackend> dense_f16() {
  return std::make_unique<DenseKvAttention>(model(), KvDtype::kF16);
}
// 50 % of the fp16 cache: rank 32 per head (group_size 1) or 96 per group of 3 heads (joint).
std::unique_ptr<AttentionBackend> latent_head_r32_f16() { return latent_backend(1, 32, 16, false); }
std::unique_ptr<AttentionBackend> latent_head_r32_4bit() { return latent_backend(1, 32, 4, false); }
std::unique_ptr<AttentionBackend> latent_joint_r96_f16() {
  return latent_backend(3, 96, 16, false);
}
std::unique_ptr<AttentionBackend> latent_joint_r96_f16_folded() {
  return latent_backend(3, 96, 16, true);
}
std::unique_ptr<AttentionBackend> latent_joint_r96_3bit() {
  return latent_backend(3, 96, 3, false);
}
std::unique_ptr<AttentionBackend> kivi_4bit() { return kivi_backend(4); }
std::unique_ptr<AttentionBackend> kivi_2bit() { return kivi_backend(2); }

#define LKV_BENCH_BACKEND(fn)                                                                    \
  BENCHMARK_CAPTURE(BM_Prefill, fn, fn)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(BM_Decode, fn, fn)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()

LKV_BENCH_BACKEND(dense_f32);
LKV_BENCH_BACKEND(dense_f16);
LKV_BENCH_BACKEND(latent_head_r32_f16);
LKV_BENCH_BACKEND(latent_head_r32_4bit);
LKV_BENCH_BACKEND(latent_joint_r96_f16);
LKV_BENCH_BACKEND(latent_joint_r96_f16_folded);
LKV_BENCH_BACKEND(latent_joint_r96_3bit);
LKV_BENCH_BACKEND(kivi_4bit);
LKV_BENCH_BACKEND(kivi_2bit);

}  // namespace
}  // namespace latentkv

BENCHMARK_MAIN();
