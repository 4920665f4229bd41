// Forward + backward of one calibration window (llama_kv_projection_gradients<float>) on the
// SmolLM2-135M shape with random weights: the per-window cost of Fisher scores (design §3.6).
// Args: window length in tokens. Reports tokens/s.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "latentkv/fisher/llama_backward.h"
#include "model_shapes.h"

namespace latentkv {
namespace {

// SmolLM2-135M shape (model_shapes.h). Gaussian weights scaled by 1/sqrt(fan_in); norms at 1.
const LlamaWeights& smollm2_shape() {
  static const LlamaWeights w = [] {
    LlamaWeights m;
    m.config = bench::smollm2_135m_shape();
    const LlamaConfig& c = m.config;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto mat = [&](int rows, int cols) {
      MatrixRM x(rows, cols);
      const float scale = 1.0f / std::sqrt(static_cast<float>(cols));
      for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = normal(rng) * scale;
      return x;
    };
    const int q = c.num_qo_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
    m.tok_embeddings = mat(c.vocab_size, c.d_model);
    for (int l = 0; l < c.n_layers; ++l) {
      LlamaLayerWeights lw;
      lw.attn_norm = Eigen::VectorXf::Ones(c.d_model);
      lw.ffn_norm = Eigen::VectorXf::Ones(c.d_model);
      lw.wq = mat(q, c.d_model);
      lw.wk = mat(kv, c.d_model);
      lw.wv = mat(kv, c.d_model);
      lw.wo = mat(c.d_model, q);
      lw.w_gate = mat(c.ffn_dim, c.d_model);
      lw.w_up = mat(c.ffn_dim, c.d_model);
      lw.w_down = mat(c.d_model, c.ffn_dim);
      m.layers.push_back(std::move(lw));
    }
    m.output_norm = Eigen::VectorXf::Ones(c.d_model);
    return m;
  }();
  return w;
}

void BM_KvGradientsWindow(benchmark::State& state) {
  const LlamaWeights& w = smollm2_shape();
  const int n = static_cast<int>(state.range(0));
  std::mt19937 rng(2);
  std::uniform_int_distribution<TokenId> tok(0, w.config.vocab_size - 1);
  std::vector<TokenId> tokens(n);
  for (TokenId& t : tokens) t = tok(rng);
  for (auto _ : state) {
    KvProjectionGradients<float> g = llama_kv_projection_gradients<float>(w, tokens);
    benchmark::DoNotOptimize(g.loss);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["s_per_window"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_KvGradientsWindow)->Arg(128)->Arg(512)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace latentkv

BENCHMARK_MAIN();
