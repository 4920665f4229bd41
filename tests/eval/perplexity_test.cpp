#include "latentkv/eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/tiny_llama.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

using testing::make_tiny_llama;
using testing::naive_llama_logits;
using testing::random_tokens;

TEST(TokenNll, MatchesHandComputedValues) {
  const float two[] = {0.0f, std::log(3.0f)};
  EXPECT_NEAR(token_nll(two, 2, 1), -std::log(0.75), 1e-7);
  EXPECT_NEAR(token_nll(two, 2, 0), -std::log(0.25), 1e-7);
  // Huge logits must not overflow: only differences matter.
  const float big[] = {1e4f, 1e4f, 1e4f - 50.0f};
  EXPECT_NEAR(token_nll(big, 3, 0), std::log(2.0 + std::exp(-50.0)), 1e-9);
  EXPECT_THROW(token_nll(two, 2, 2), Error);
}

// Every window's scored NLL recomputed from the double-precision naive model.
double naive_mean_nll(const LlamaWeights& w, const std::vector<int32_t>& tokens, int ctx,
                      int chunks, int32_t start_token) {
  double sum = 0;
  int count = 0;
  for (int c = 0; c < chunks; ++c) {
    std::vector<int32_t> win(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx);
    if (start_token >= 0) win[0] = start_token;
    const Eigen::MatrixXd logits = naive_llama_logits(w, win);
    for (int i = ctx / 2; i < ctx - 1; ++i) {
      const double mx = logits.row(i).maxCoeff();
      const double lse = mx + std::log((logits.row(i).array() - mx).exp().sum());
      sum += lse - logits(i, win[i + 1]);
      ++count;
    }
  }
  return sum / count;
}

TEST(Perplexity, MatchesNaiveModelWithLlamaCppProtocol) {
  const LlamaWeights w = make_tiny_llama({}, 31);
  const auto tokens = random_tokens(3 * 24 + 10, w.config.vocab_size, 1);
  LlamaForward fwd(w);
  for (const int32_t start : {-1, 5}) {
    PerplexityOptions o;
    o.ctx = 24;
    o.window_start_token = start;
    const PerplexityResult r = evaluate_perplexity(fwd, tokens, o);
    EXPECT_EQ(r.chunks, 3);  // the 10 trailing tokens do not make a window
    EXPECT_EQ(r.tokens_scored, 3 * (24 - 12 - 1));
    EXPECT_EQ(r.tokens_processed, 3 * 23);
    ASSERT_EQ(r.chunk_mean_nll.size(), 3u);
    const double expect = naive_mean_nll(w, tokens, 24, 3, start);
    EXPECT_NEAR(r.mean_nll, expect, 1e-5 * expect);
    EXPECT_NEAR(r.ppl, std::exp(expect), 1e-5 * std::exp(expect));
    EXPECT_GT(r.ppl_stderr, 0.0);
  }
}

TEST(Perplexity, OddContextScoresFromHalfRoundedDown) {
  const LlamaWeights w = make_tiny_llama({}, 32);
  const auto tokens = random_tokens(2 * 15, w.config.vocab_size, 2);
  LlamaForward fwd(w);
  PerplexityOptions o;
  o.ctx = 15;  // first = 7: positions 7..13 predict tokens 8..14
  const PerplexityResult r = evaluate_perplexity(fwd, tokens, o);
  EXPECT_EQ(r.tokens_scored, 2 * 7);
  EXPECT_NEAR(r.mean_nll, naive_mean_nll(w, tokens, 15, 2, -1), 1e-5 * r.mean_nll);
}

// A model whose LM head is zero predicts the uniform distribution: ppl = vocab size exactly,
// and every token has the same NLL, so the standard error is zero.
TEST(Perplexity, UniformModelHasPerplexityVocabSize) {
  LlamaWeights w = make_tiny_llama({}, 33);
  w.config.tied_embeddings = false;
  w.output = MatrixRM::Zero(w.config.vocab_size, w.config.d_model);
  const auto tokens = random_tokens(64, w.config.vocab_size, 3);
  LlamaForward fwd(w);
  PerplexityOptions o;
  o.ctx = 16;
  const PerplexityResult r = evaluate_perplexity(fwd, tokens, o);
  EXPECT_NEAR(r.ppl, w.config.vocab_size, 1e-9 * w.config.vocab_size);
  EXPECT_NEAR(r.ppl_stderr, 0.0, 1e-9);
}

TEST(Perplexity, StandardErrorFollowsLlamaCpp) {
  // Two windows whose scored NLLs are known: check the delta-method formula on them.
  const LlamaWeights w = make_tiny_llama({}, 34);
  const auto tokens = random_tokens(2 * 8, w.config.vocab_size, 4);
  LlamaForward fwd(w);
  PerplexityOptions o;
  o.ctx = 8;
  const PerplexityResult r = evaluate_perplexity(fwd, tokens, o);
  // Recompute the per-token NLLs through the public pieces.
  std::vector<double> v;
  MatrixRM logits;
  for (int c = 0; c < 2; ++c) {
    fwd.reset();
    fwd.forward({tokens.begin() + c * 8, tokens.begin() + c * 8 + 7}, &logits, 4);
    for (int i = 0; i < 3; ++i)
      v.push_back(token_nll(logits.row(i).data(), logits.cols(), tokens[c * 8 + 5 + i]));
  }
  double m = 0, m2 = 0;
  for (const double x : v) {
    m += x / v.size();
    m2 += x * x / v.size();
  }
  EXPECT_NEAR(r.mean_nll, m, 1e-12);
  EXPECT_NEAR(r.nll_stderr, std::sqrt((m2 - m * m) / (v.size() - 1)), 1e-12);
  EXPECT_NEAR(r.ppl_stderr, r.nll_stderr * std::exp(m), 1e-12 * r.ppl_stderr);
}

TEST(Perplexity, ChunkLimitAndProgress) {
  const LlamaWeights w = make_tiny_llama({}, 35);
  const auto tokens = random_tokens(5 * 10, w.config.vocab_size, 5);
  LlamaForward fwd(w);
  PerplexityOptions o;
  o.ctx = 10;
  o.max_chunks = 2;
  std::vector<std::pair<int64_t, int64_t>> calls;
  o.progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  const PerplexityResult r = evaluate_perplexity(fwd, tokens, o);
  EXPECT_EQ(r.chunks, 2);
  EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {2, 2}}));
  o.max_chunks = 100;  // more than the text holds: all 5
  EXPECT_EQ(perplexity_windows(50, o, w.config), 5);
}

TEST(Perplexity, RejectsBadOptions) {
  testing::TinyLlamaSpec spec;
  spec.context_length = 64;
  const LlamaConfig c = testing::tiny_config(spec);
  PerplexityOptions o;
  o.ctx = 2;
  EXPECT_LKV_ERROR(perplexity_windows(100, o, c), StatusCode::kInvalidArgument,
                   "ctx 2 leaves no token to score");
  o.ctx = 128;
  EXPECT_LKV_ERROR(perplexity_windows(1000, o, c), StatusCode::kInvalidArgument,
                   "exceeds the model's context length 64");
  o.ctx = 32;
  EXPECT_LKV_ERROR(perplexity_windows(31, o, c), StatusCode::kInvalidArgument,
                   "fewer than one window");
  EXPECT_LKV_ERROR(perplexity_windows(0, o, c), StatusCode::kInvalidArgument, "text has 0 tokens");
  o.max_chunks = 0;
  EXPECT_LKV_ERROR(perplexity_windows(100, o, c), StatusCode::kInvalidArgument,
                   "chunks must be >= 1");
  o.max_chunks = -3;
  EXPECT_LKV_ERROR(perplexity_windows(100, o, c), StatusCode::kInvalidArgument,
                   "chunks must be >= 1, got -3");
  o.max_chunks = 1;
  EXPECT_EQ(perplexity_windows(32, o, c), 1);
}

}  // namespace
}  // namespace latentkv
