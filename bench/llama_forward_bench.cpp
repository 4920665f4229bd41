// CPU reference forward pass throughput (LlamaForward) in the default model's shape
// (SmolLM2-135M: 30 layers, d_model 576, 9/3 heads of 64, ffn 1536, vocab 49152, tied head) with
// random weights, so that no model file is needed.
//
//   PplWindow/ctx/threads:  one perplexity window: ctx-1 tokens prefilled in one chunk, logits for
//                           the second half (the latentkv-ppl workload); items = tokens.
//   Decode/context/threads: one token appended to a cache of `context` tokens; items = tokens.
// Run on an otherwise idle machine. On a busy one, libgomp's default spin-waiting makes the
// 2-thread figures collapse (a descheduled worker stalls every parallel region); compare
// GOMP_SPINCOUNT=3000 (what the CLIs use, examples/common/openmp_env.h) or
// OMP_WAIT_POLICY=passive there.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "latentkv/model/llama_forward.h"
#include "model_shapes.h"

namespace {

using latentkv::LlamaForward;
using latentkv::LlamaWeights;
using latentkv::MatrixRM;

const LlamaWeights& smollm2_shaped_weights() {
  static const LlamaWeights w = [] {
    LlamaWeights w;
    w.config = latentkv::bench::smollm2_135m_shape();
    const auto& c = w.config;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto mat = [&](int rows, int cols) {
      MatrixRM m(rows, cols);
      for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = normal(rng) * 0.04f;
      return m;
    };
    const int d = c.d_model, q = c.num_qo_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
    w.tok_embeddings = mat(c.vocab_size, d);
    w.output_norm = Eigen::VectorXf::Ones(d);
    for (int l = 0; l < c.n_layers; ++l) {
      latentkv::LlamaLayerWeights lw;
      lw.attn_norm = lw.ffn_norm = Eigen::VectorXf::Ones(d);
      lw.wq = mat(q, d);
      lw.wk = mat(kv, d);
      lw.wv = mat(kv, d);
      lw.wo = mat(d, q);
      lw.w_gate = mat(c.ffn_dim, d);
      lw.w_up = mat(c.ffn_dim, d);
      lw.w_down = mat(d, c.ffn_dim);
      w.layers.push_back(std::move(lw));
    }
    return w;
  }();
  return w;
}

std::vector<int32_t> tokens(int64_t n) {
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 7919) % 49152);
  return t;
}

void PplWindow(benchmark::State& state) {
  const int64_t ctx = state.range(0);
  latentkv::set_num_threads(static_cast<int>(state.range(1)));
  LlamaForward model(smollm2_shaped_weights());
  const auto window = tokens(ctx - 1);
  MatrixRM logits;
  for (auto _ : state) {
    model.reset();
    model.forward(window, &logits, ctx / 2);
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetItemsProcessed(state.iterations() * (ctx - 1));
}
BENCHMARK(PplWindow)
    ->ArgsProduct({{128, 512}, {1, 2}})
    ->ArgNames({"ctx", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void Decode(benchmark::State& state) {
  const int64_t context = state.range(0);
  latentkv::set_num_threads(static_cast<int>(state.range(1)));
  LlamaForward model(smollm2_shaped_weights());
  const auto prompt = tokens(context);
  MatrixRM logits;
  constexpr int kSteps = 16;
  for (auto _ : state) {
    state.PauseTiming();
    model.reset();
    model.forward(prompt, nullptr);
    state.ResumeTiming();
    for (int s = 0; s < kSteps; ++s) model.forward({static_cast<int32_t>(s)}, &logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(Decode)
    ->ArgsProduct({{256}, {1, 2}})
    ->ArgNames({"context", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
