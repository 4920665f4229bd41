// LlamaForward running with latent caches in every layer (LatentAttention backend).
#include "latentkv/reference/latent_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "cache/cache_test_util.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/status.h"
#include "model/tiny_llama.h"

namespace latentkv {
namespace {

testing::LayerShape shape_of(const LlamaConfig& c) {
  return {c.d_model, c.num_qo_heads, c.num_kv_heads, c.head_dim, false};
}

// Exact full-rank factors of every layer (A = W rows of a group, B = I) with the model's biases.
std::vector<LatentLayerFactors> exact_factors(const LlamaWeights& w, int group_size) {
  std::vector<LatentLayerFactors> out;
  const testing::LayerShape s = shape_of(w.config);
  for (const LlamaLayerWeights& lw : w.layers) {
    LatentLayerFactors f;
    std::vector<int> heads = consecutive_group_heads(s.num_kv_heads);
    std::reverse(heads.begin(), heads.end());  // a non-trivial head -> (group, slot) map
    f.key = testing::identity_factors(lw.wk, s, group_size, heads, lw.bk);
    f.value = testing::identity_factors(lw.wv, s, group_size, heads, lw.bv);
    out.push_back(std::move(f));
  }
  return out;
}

LatentCacheConfig exact_config() {
  LatentCacheConfig c;
  c.key.bits = c.value.bits = kExactLatentBits;
  return c;
}

MatrixRM run(LlamaForward& model, const std::vector<TokenId>& tokens, int64_t piece) {
  model.reset();
  MatrixRM all(static_cast<int64_t>(tokens.size()), model.config().vocab_size), logits;
  for (size_t done = 0; done < tokens.size();) {
    const size_t n = piece == 0 ? tokens.size() : std::min<size_t>(piece, tokens.size() - done);
    model.forward(std::vector<TokenId>(tokens.begin() + done, tokens.begin() + done + n), &logits);
    all.middleRows(static_cast<int64_t>(done), static_cast<int64_t>(n)) = logits;
    done += n;
  }
  return all;
}

TEST(LatentAttention, FullRankExactCachesReproduceTheModelLogits) {
  testing::ScopedThreads one(1);
  for (bool biases : {false, true}) {
    testing::TinyLlamaSpec spec;
    spec.num_qo_heads = 8;
    spec.num_kv_heads = 2;
    spec.biases = biases;
    const LlamaWeights w = testing::make_tiny_llama(spec, 3);
    const std::vector<TokenId> tokens = testing::random_tokens(37, spec.vocab_size, 4);
    LlamaForward dense(w);
    const MatrixRM want = run(dense, tokens, 0);
    const Eigen::MatrixXd naive = testing::naive_llama_logits(w, tokens);
    for (int gs : {1, 2}) {
      LlamaForward latent(
          w, std::make_unique<LatentAttention>(w, exact_factors(w, gs), exact_config()));
      for (int64_t piece : {0, 1, 10}) {  // one prefill, token-by-token decode, chunked prefill
        const MatrixRM got = run(latent, tokens, piece);
        EXPECT_LT(testing::relative_error(got.cast<double>(), want.cast<double>()), 1e-5)
            << "biases " << biases << " group_size " << gs << " piece " << piece;
        EXPECT_LT(testing::relative_error(got.cast<double>(), naive), 1e-5);
      }
    }
  }
}

TEST(LatentAttention, ResetStartsAFreshSequence) {
  testing::ScopedThreads one(1);
  const LlamaWeights w = testing::make_tiny_llama(testing::TinyLlamaSpec(), 5);
  LatentCacheConfig cfg;
  cfg.key.bits = cfg.value.bits = 4;
  cfg.key.residual = cfg.value.residual = 3;
  LlamaForward model(w, std::make_unique<LatentAttention>(w, exact_factors(w, 1), cfg));
  const std::vector<TokenId> a = testing::random_tokens(20, w.config.vocab_size, 1);
  const std::vector<TokenId> b = testing::random_tokens(20, w.config.vocab_size, 2);
  const MatrixRM first = run(model, a, 0);
  run(model, b, 0);
  const MatrixRM again = run(model, a, 0);  // run() resets first
  EXPECT_EQ(first, again);
  EXPECT_EQ(model.attention().cached_tokens(0), 20);
}

TEST(LatentAttention, BytesAreSummedOverLayers) {
  const LlamaWeights w = testing::make_tiny_llama(testing::TinyLlamaSpec(), 6);
  LatentCacheConfig cfg;
  cfg.key.bits = 2;
  cfg.value.bits = 8;
  cfg.key.residual = cfg.value.residual = 4;
  LatentAttention backend(w, exact_factors(w, 2), cfg);
  // One group of 2 heads × head_dim 12 = rank 24 per layer: keys 6 + 4, values 24 + 4 bytes.
  EXPECT_EQ(backend.bytes_per_token(), w.config.n_layers * (10 + 28));
  EXPECT_EQ(backend.residual_bytes_per_token(), w.config.n_layers * 2 * (24 + 24));
  LlamaForward model(w, std::make_unique<LatentAttention>(w, exact_factors(w, 2), cfg));
  model.forward(testing::random_tokens(9, w.config.vocab_size, 3), nullptr);
  const auto& latent = dynamic_cast<const LatentAttention&>(model.attention());
  EXPECT_EQ(latent.bytes_held(), w.config.n_layers * (5 * 38 + 4 * 96));
}

TEST(LatentAttention, RejectsFactorsThatDoNotFitTheModel) {
  const LlamaWeights w = testing::make_tiny_llama(testing::TinyLlamaSpec(), 7);
  std::vector<LatentLayerFactors> f = exact_factors(w, 1);
  f.pop_back();
  EXPECT_THROW(LatentAttention(w, f, exact_config()), Error);
  f = exact_factors(w, 1);
  f[1].value.ranks[0] = 5;
  try {
    LatentAttention backend(w, f, exact_config());
    FAIL() << "inconsistent factors accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind("layer 1: ", 0), 0u) << e.what();
  }
  LatentAttention backend(w, exact_factors(w, 1), exact_config());
  EXPECT_THROW(backend.cached_tokens(w.config.n_layers), Error);
}

}  // namespace
}  // namespace latentkv
