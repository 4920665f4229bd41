#include "latentkv/eval/generate.h"

#include <gtest/gtest.h>

#include "model/tiny_llama.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

using testing::make_tiny_llama;
using testing::naive_llama_logits;
using testing::random_tokens;

TEST(Generate, GreedyFollowsArgmaxOfTheFullSequence) {
  const LlamaWeights w = make_tiny_llama({}, 41);
  LlamaForward model(w);
  const auto prompt = random_tokens(7, w.config.vocab_size, 1);
  GenerationOptions o;
  o.max_new_tokens = 6;
  o.prefill_chunk = 3;  // prompt prefilled in chunks 3 + 3 + 1
  std::vector<int32_t> out;
  const GenerationStats s = generate(model, prompt, o, [&](int32_t t) { out.push_back(t); });
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(s.generated_tokens, 6);
  EXPECT_EQ(s.prompt_tokens, 7);
  EXPECT_FALSE(s.hit_stop_token);
  // Each generated token is the arg-max of the naive model over prompt + previous outputs.
  std::vector<int32_t> seq = prompt;
  for (const int32_t t : out) {
    const Eigen::MatrixXd logits = naive_llama_logits(w, seq);
    Eigen::Index best;
    logits.row(logits.rows() - 1).maxCoeff(&best);
    EXPECT_EQ(t, best);
    seq.push_back(t);
  }
}

TEST(Generate, StopsAtStopTokenWithoutEmittingIt) {
  const LlamaWeights w = make_tiny_llama({}, 42);
  LlamaForward model(w);
  const auto prompt = random_tokens(5, w.config.vocab_size, 2);
  GenerationOptions o;
  o.max_new_tokens = 8;
  std::vector<int32_t> free_run;
  generate(model, prompt, o, [&](int32_t t) { free_run.push_back(t); });
  o.stop_tokens = {free_run[2]};
  std::vector<int32_t> stopped;
  const GenerationStats s = generate(model, prompt, o, [&](int32_t t) { stopped.push_back(t); });
  EXPECT_TRUE(s.hit_stop_token);
  // Stops at the first occurrence of the stop token.
  size_t first = 0;
  while (free_run[first] != free_run[2]) ++first;
  EXPECT_EQ(stopped, std::vector<int32_t>(free_run.begin(), free_run.begin() + first));
}

TEST(Generate, SeededSamplingIsReproducibleAndContextBounded) {
  testing::TinyLlamaSpec spec;
  spec.context_length = 12;
  const LlamaWeights w = make_tiny_llama(spec, 43);
  LlamaForward model(w);
  const auto prompt = random_tokens(4, w.config.vocab_size, 3);
  GenerationOptions o;
  o.max_new_tokens = 100;
  o.sampling = {0.8, 0.9, 11};
  std::vector<int32_t> a, b;
  const GenerationStats s = generate(model, prompt, o, [&](int32_t t) { a.push_back(t); });
  generate(model, prompt, o, [&](int32_t t) { b.push_back(t); });
  EXPECT_EQ(a, b);
  EXPECT_TRUE(s.hit_context_limit);
  EXPECT_EQ(a.size(), 9u);  // positions 4..11 are fed back, plus the token sampled at the end
}

TEST(Generate, RejectsBadRequests) {
  testing::TinyLlamaSpec spec;
  spec.context_length = 8;
  const LlamaWeights w = make_tiny_llama(spec, 44);
  LlamaForward model(w);
  GenerationOptions o;
  auto sink = [](int32_t) {};
  EXPECT_LKV_ERROR(generate(model, {}, o, sink), StatusCode::kInvalidArgument, "prompt is empty");
  EXPECT_LKV_ERROR(generate(model, std::vector<int32_t>(8, 1), o, sink),
                   StatusCode::kInvalidArgument, "context length 8");
  o.max_new_tokens = 0;
  EXPECT_LKV_ERROR(generate(model, {1}, o, sink), StatusCode::kInvalidArgument, ">= 1");
}

}  // namespace
}  // namespace latentkv
