#include "latentkv/eval/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "latentkv/status.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s({});
  const float logits[] = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(logits, 4), 1);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(0.7f * i);
  auto draw = [&](uint64_t seed) {
    Sampler s({1.0, 0.95, seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 40; ++i) out.push_back(s.sample(logits.data(), 50));
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(Sampler, FrequenciesFollowTemperatureSoftmax) {
  const float logits[] = {0.0f, 1.0f, 2.0f};
  const double t = 2.0;
  Sampler s({t, 1.0, 3});
  std::vector<int> counts(3);
  const int n = 30000;
  for (int i = 0; i < n; ++i) ++counts[s.sample(logits, 3)];
  double z = 0;
  for (float l : logits) z += std::exp(l / t);
  for (int k = 0; k < 3; ++k) {
    const double p = std::exp(logits[k] / t) / z;
    // 5 binomial standard deviations: a wrong distribution fails, a right one (fixed seed) passes.
    EXPECT_NEAR(counts[k] / double(n), p, 5 * std::sqrt(p * (1 - p) / n)) << "token " << k;
  }
}

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (temperature 1): top_p 0.8 keeps tokens 0 and 1 only.
  const float logits[] = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  Sampler s({1.0, 0.8, 5});
  std::vector<int> counts(4);
  for (int i = 0; i < 4000; ++i) ++counts[s.sample(logits, 4)];
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_NEAR(counts[0] / 4000.0, 0.5 / 0.8, 0.04);
  // A tiny nucleus is greedy.
  Sampler g({1.0, 1e-6, 5});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(g.sample(logits, 4), 0);
}

TEST(Sampler, RejectsBadOptions) {
  EXPECT_LKV_ERROR(Sampler({-0.5, 1.0, 0}), StatusCode::kInvalidArgument, "temperature");
  EXPECT_LKV_ERROR(Sampler({1.0, 0.0, 0}), StatusCode::kInvalidArgument, "top-p");
  EXPECT_LKV_ERROR(Sampler({1.0, 1.5, 0}), StatusCode::kInvalidArgument, "top-p");
  Sampler s({});
  EXPECT_LKV_ERROR(s.sample(nullptr, 0), StatusCode::kInvalidArgument, "empty");
}

}  // namespace
}  // namespace latentkv
