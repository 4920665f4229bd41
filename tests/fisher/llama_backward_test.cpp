#include "latentkv/fisher/llama_backward.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "latentkv/model/llama_forward.h"
#include "model/tiny_llama.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

using testing::make_tiny_llama;
using testing::naive_llama_logits;
using testing::random_tokens;
using testing::TinyLlamaSpec;

// The tiny model of the gradient check: 2 layers, d_model 32, 4 query heads over 2 KV heads of
// width 8 (GQA), vocab 50.
TinyLlamaSpec grad_spec() {
  TinyLlamaSpec s;
  s.n_layers = 2;
  s.d_model = 32;
  s.num_qo_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 8;
  s.ffn_dim = 48;
  s.vocab_size = 50;
  return s;
}

// max over rows of ‖a_i − b_i‖∞ / ‖b_i‖∞.
template <typename A>
double max_row_rel_err(const A& a, const Eigen::MatrixXd& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  double worst = 0;
  for (int i = 0; i < b.rows(); ++i) {
    const double err = (a.row(i).template cast<double>() - b.row(i)).cwiseAbs().maxCoeff();
    worst = std::max(worst, err / b.row(i).cwiseAbs().maxCoeff());
  }
  return worst;
}

struct ShapeCase {
  int num_qo_heads, num_kv_heads;
  bool tied, biases;
  int seq_len;
};

class WindowForward : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(WindowForward, LogitsMatchNaiveAndInferenceForward) {
  const ShapeCase sc = GetParam();
  TinyLlamaSpec spec;
  spec.num_qo_heads = sc.num_qo_heads;
  spec.num_kv_heads = sc.num_kv_heads;
  spec.tied_embeddings = sc.tied;
  spec.biases = sc.biases;
  const LlamaWeights w = make_tiny_llama(spec, 11);
  const std::vector<TokenId> tokens = random_tokens(sc.seq_len, spec.vocab_size, 5);
  const Eigen::MatrixXd naive = naive_llama_logits(w, tokens);

  // Double precision against the textbook loops: only summation order differs.
  EXPECT_LT(max_row_rel_err(llama_window_logits<double>(w, tokens), naive), 1e-12);
  // fp32: a few ulps per operation over 2 layers (the inference test uses the same bound).
  EXPECT_LT(max_row_rel_err(llama_window_logits<float>(w, tokens), naive), 2e-4);

  // The inference path (KV cache, chunked prefill) computes the same function.
  LlamaForward fwd(w);
  MatrixRM inference;
  fwd.forward(tokens, &inference);
  EXPECT_LT(max_row_rel_err(llama_window_logits<float>(w, tokens), inference.cast<double>()), 2e-4);
}

// seq_len 150 spans three attention row blocks of 64 (the last one ragged).
INSTANTIATE_TEST_SUITE_P(Shapes, WindowForward,
                         ::testing::Values(ShapeCase{4, 2, true, false, 7},
                                           ShapeCase{4, 4, false, false, 17},
                                           ShapeCase{4, 1, true, true, 1},
                                           ShapeCase{6, 2, false, true, 150}));

// Loss of a window in double precision.
double window_loss(const LlamaWeights& w, const std::vector<TokenId>& tokens) {
  return llama_kv_projection_gradients<double>(w, tokens).loss;
}

TEST(WindowBackward, LossIsMeanNextTokenCrossEntropy) {
  const LlamaWeights w = make_tiny_llama(grad_spec(), 3);
  const std::vector<TokenId> tokens = random_tokens(9, 50, 4);
  const Eigen::MatrixXd logits = naive_llama_logits(w, tokens);
  double expected = 0;
  for (int t = 0; t + 1 < 9; ++t) {
    const double mx = logits.row(t).maxCoeff();
    const double lse = mx + std::log((logits.row(t).array() - mx).exp().sum());
    expected += lse - logits(t, tokens[t + 1]);
  }
  expected /= 8;
  const KvProjectionGradients<double> g = llama_kv_projection_gradients<double>(w, tokens);
  EXPECT_EQ(g.num_targets, 8);
  EXPECT_NEAR(g.loss, expected, 1e-12 * expected);
  EXPECT_NEAR(llama_kv_projection_gradients<float>(w, tokens).loss, expected, 1e-5 * expected);
}

// Central differences on the fp32 weights, evaluated in double precision. The perturbation is the
// float step actually taken (w± = fl(w ± h)), so representability of w ± h does not matter.
// Error budget: truncation h²/6·|f'''| with h = 1e-4 and |f'''| = O(10) for these weights gives
// ~2e-8; rounding of the double-precision loss (~4, ε = 1.1e-16, amplified by 1/(2h)) ~2e-12.
// Observed: at most 4e-9 over all checked elements, so 1e-7 leaves a 25× margin. The checked
// gradients range from 3e-4 to 0.2, so a wrong backward term (an O(|g|) error) cannot hide.
class GradientCheck : public ::testing::TestWithParam<int> {};

TEST_P(GradientCheck, KvGradientsMatchFiniteDifferences) {
  const int seq_len = GetParam();
  TinyLlamaSpec spec = grad_spec();
  spec.tied_embeddings = seq_len % 2 == 1;  // cover both LM head kinds
  LlamaWeights w = make_tiny_llama(spec, 21);
  const std::vector<TokenId> tokens = random_tokens(seq_len, spec.vocab_size, 9);
  const KvProjectionGradients<double> g = llama_kv_projection_gradients<double>(w, tokens);
  ASSERT_EQ(g.wk.size(), 2u);
  std::mt19937 rng(seq_len);
  const int rows = spec.num_kv_heads * spec.head_dim;
  std::uniform_int_distribution<int> row_dist(0, rows - 1), col_dist(0, spec.d_model - 1);
  const double h = 1e-4;
  double max_grad = 0;
  for (int l = 0; l < spec.n_layers; ++l) {
    for (int kind = 0; kind < 2; ++kind) {
      MatrixRM& weight = kind == 0 ? w.layers[l].wk : w.layers[l].wv;
      const MatrixRMT<double>& grad = kind == 0 ? g.wk[l] : g.wv[l];
      ASSERT_EQ(grad.rows(), rows);
      ASSERT_EQ(grad.cols(), spec.d_model);
      for (int e = 0; e < 6; ++e) {
        const int i = row_dist(rng), j = col_dist(rng);
        const float w0 = weight(i, j);
        const float wp = static_cast<float>(w0 + h), wm = static_cast<float>(w0 - h);
        weight(i, j) = wp;
        const double fp = window_loss(w, tokens);
        weight(i, j) = wm;
        const double fm = window_loss(w, tokens);
        weight(i, j) = w0;
        const double fd = (fp - fm) / (static_cast<double>(wp) - static_cast<double>(wm));
        max_grad = std::max(max_grad, std::abs(grad(i, j)));
        EXPECT_NEAR(grad(i, j), fd, 1e-7)
            << "layer " << l << (kind == 0 ? " W_k" : " W_v") << "(" << i << ", " << j << ")";
      }
    }
  }
  // The check is meaningful only if the gradients are far above its tolerance.
  EXPECT_GT(max_grad, 1e-3);
}

// 7 tokens (one attention block) and 70 (two blocks, the second ragged).
INSTANTIATE_TEST_SUITE_P(SeqLens, GradientCheck, ::testing::Values(7, 70));

TEST(WindowBackward, FloatGradientsMatchDouble) {
  const LlamaWeights w = make_tiny_llama(grad_spec(), 8);
  const std::vector<TokenId> tokens = random_tokens(33, 50, 2);
  const auto gd = llama_kv_projection_gradients<double>(w, tokens);
  const auto gf = llama_kv_projection_gradients<float>(w, tokens);
  for (int l = 0; l < 2; ++l) {
    // Normwise: fp32 rounding through 2 layers and the backward pass stays around 1e-6.
    EXPECT_LT((gf.wk[l].cast<double>() - gd.wk[l]).norm(), 1e-4 * gd.wk[l].norm());
    EXPECT_LT((gf.wv[l].cast<double>() - gd.wv[l]).norm(), 1e-4 * gd.wv[l].norm());
  }
}

TEST(WindowBackward, RejectsBadWindows) {
  TinyLlamaSpec spec = grad_spec();
  spec.context_length = 16;
  const LlamaWeights w = make_tiny_llama(spec, 1);
  EXPECT_LKV_ERROR(llama_kv_projection_gradients<float>(w, {3}), StatusCode::kInvalidArgument,
                   "at least 2 tokens");
  EXPECT_LKV_ERROR(llama_window_logits<float>(w, {}), StatusCode::kInvalidArgument,
                   "at least 1 tokens");
  EXPECT_LKV_ERROR(llama_kv_projection_gradients<float>(w, {1, 50}), StatusCode::kInvalidArgument,
                   "token id 50 outside the vocabulary");
  EXPECT_LKV_ERROR(llama_kv_projection_gradients<float>(w, {1, -1}), StatusCode::kInvalidArgument,
                   "token id -1");
  EXPECT_LKV_ERROR(llama_kv_projection_gradients<float>(w, random_tokens(17, 50, 1)),
                   StatusCode::kInvalidArgument, "exceeds the model's context length 16");
  LlamaWeights broken = w;
  broken.layers.pop_back();
  EXPECT_LKV_ERROR(llama_kv_projection_gradients<float>(broken, {1, 2}),
                   StatusCode::kInvalidArgument, "model has 1 layers, config says 2");
}

TEST(WindowBackward, NonFiniteLossIsANumericalError) {
  LlamaWeights w = make_tiny_llama(grad_spec(), 1);
  w.output_norm(0) = std::numeric_limits<float>::infinity();
  EXPECT_LKV_ERROR(llama_kv_projection_gradients<float>(w, {1, 2, 3}), StatusCode::kNumericalError,
                   "loss is not finite");
}

}  // namespace
}  // namespace latentkv
