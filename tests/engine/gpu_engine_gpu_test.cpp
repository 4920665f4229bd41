// The GPU engine against the CPU reference forward pass on small random Llama models: fp16 KV
// cache and latent cache (fp16 and 4-bit latents; fused decode and rebuild fallback), chunked
// prefill, ragged batched decode with CUDA graphs, and the bad-input errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "latentkv/engine/gpu_engine.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/pipeline/compressed_model.h"
#include "latentkv/reference/latent_attention.h"
#include "model/tiny_llama.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::TinyLlamaSpec;

TinyLlamaSpec spec(int num_kv_heads) {
  TinyLlamaSpec s;
  s.n_layers = 2;
  s.d_model = 128;
  s.num_qo_heads = 2 * num_kv_heads;
  s.num_kv_heads = num_kv_heads;
  s.head_dim = 64;
  s.ffn_dim = 192;
  s.vocab_size = 211;
  s.context_length = 1024;
  return s;
}

// Random low-rank factors (uniform rank, consecutive groups) for every layer.
CompressedModel random_compressed(const LlamaWeights& w, int group_size, int rank, int bits,
                                  int residual) {
  const LlamaConfig& c = w.config;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto factors = [&](float gain) {
    ProjectionFactors f;
    f.d_model = c.d_model;
    f.head_dim = c.head_dim;
    f.num_kv_heads = c.num_kv_heads;
    f.group_size = group_size;
    f.ranks.assign(c.num_kv_heads / group_size, rank);
    f.group_heads = consecutive_group_heads(c.num_kv_heads);
    f.a.resize(static_cast<size_t>(f.total_rank()) * c.d_model);
    f.b.resize(static_cast<size_t>(f.total_rank()) * group_size * c.head_dim);
    for (float& x : f.a) x = normal(rng) / std::sqrt(static_cast<float>(c.d_model));
    for (float& x : f.b) x = gain * normal(rng) / std::sqrt(static_cast<float>(rank));
    return f;
  };
  CompressedModel m;
  m.base = BaseModelIdentity::of(c, std::string(64, '0'));
  m.key_quant.bits = m.value_quant.bits = bits;
  m.key_quant.residual = m.value_quant.residual = residual;
  for (int l = 0; l < c.n_layers; ++l) {
    CompressedLayer layer;
    layer.factors.key = factors(2.0f);
    layer.factors.value = factors(1.0f);
    m.layers.push_back(std::move(layer));
  }
  return m;
}

std::vector<TokenId> random_tokens(int n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<TokenId> t(n);
  for (TokenId& x : t) x = static_cast<TokenId>(rng() % vocab);
  return t;
}

// Max |a - b| relative to max(1, max |b|): fp16 weights and activations on the GPU against the
// fp32 CPU reference.
double rel_diff(const MatrixRM& a, const MatrixRM& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  if (a.rows() != b.rows() || a.cols() != b.cols()) return 1e9;
  EXPECT_TRUE(a.allFinite());
  return (a - b).cwiseAbs().maxCoeff() / std::max(1.0f, b.cwiseAbs().maxCoeff());
}

constexpr double kTolerance = 2e-2;

// A CPU reference model: fp16 KV cache, or the latent cache of `compressed`.
std::unique_ptr<LlamaForward> cpu_model(const LlamaWeights& w, const CompressedModel* compressed) {
  return compressed ? std::make_unique<LlamaForward>(w, make_latent_attention(w, *compressed))
                    : std::make_unique<LlamaForward>(w, KvDtype::kF16);
}

// Prefill of a prompt (all logits) and decode steps: GPU vs CPU logits at every step. With
// quantized latents the GPU's fp16 projections flip some rounding decisions of the quantizer,
// whose effect is of the order of the quantization error itself; the bound is then tied to
// that precision (design §7): twice the CPU's own distance between its quantized and its
// fp16-latent cache, plus the fp16 bound.
void expect_matches_cpu(const LlamaWeights& w, const CompressedModel* compressed,
                        const std::string& expect_path, int max_chunk = 512) {
  std::unique_ptr<LlamaForward> cpu = cpu_model(w, compressed);
  std::unique_ptr<LlamaForward> cpu_f16;
  CompressedModel unquantized;
  if (compressed && compressed->key_quant.bits != 16) {
    unquantized = *compressed;
    unquantized.key_quant.bits = unquantized.value_quant.bits = 16;
    cpu_f16 = cpu_model(w, &unquantized);
  }
  std::unique_ptr<GpuModelWeights> gw = GpuModelWeights::upload(w);
  std::unique_ptr<GpuLatentFactors> gf;
  if (compressed) gf = GpuLatentFactors::upload(*compressed);
  GpuEngineOptions o;
  o.max_seq_len = 256;
  o.max_chunk = max_chunk;
  GpuEngine engine(*gw, gf.get(), o);
  EXPECT_NE(engine.describe().find(expect_path), std::string::npos) << engine.describe();

  auto check = [&](const std::vector<TokenId>& tokens, const MatrixRM& got, const char* what,
                   int step) {
    MatrixRM ref, ref_f16;
    cpu->forward(tokens, &ref);
    double bound = kTolerance;
    if (cpu_f16) {
      cpu_f16->forward(tokens, &ref_f16);
      bound += 2 * rel_diff(ref, ref_f16);
    }
    EXPECT_LT(rel_diff(got, ref), bound) << what << " " << step;
  };
  const std::vector<TokenId> prompt = random_tokens(37, w.config.vocab_size, 3);
  MatrixRM got;
  engine.prefill(0, prompt, &got);
  check(prompt, got, "prefill", 0);
  TokenId next = prompt.back();
  for (int step = 0; step < 20; ++step) {
    next = static_cast<TokenId>((next * 31 + 7) % w.config.vocab_size);
    engine.decode({next});
    engine.copy_logits(1, &got);
    check({next}, got, "decode step", step);
  }
  EXPECT_EQ(engine.length(0), 57);
}

TEST(GpuEngineGpuTest, Fp16CacheMatchesCpu) {
  LKV_REQUIRE_GPU();
  expect_matches_cpu(testing::make_tiny_llama(spec(2)), nullptr, "paged fp16 decode");
}

TEST(GpuEngineGpuTest, ChunkedPrefillMatchesCpu) {
  LKV_REQUIRE_GPU();
  expect_matches_cpu(testing::make_tiny_llama(spec(2)), nullptr, "paged fp16 decode", 8);
}

TEST(GpuEngineGpuTest, LatentFp16MatchesCpu) {
  LKV_REQUIRE_GPU();
  const LlamaWeights w = testing::make_tiny_llama(spec(2));
  const CompressedModel m = random_compressed(w, 2, 64, 16, 0);
  expect_matches_cpu(w, &m, "fused latent decode");
}

TEST(GpuEngineGpuTest, Latent4BitWithWindowMatchesCpu) {
  LKV_REQUIRE_GPU();
  const LlamaWeights w = testing::make_tiny_llama(spec(2));
  const CompressedModel m = random_compressed(w, 1, 32, 4, 8);
  expect_matches_cpu(w, &m, "fused latent decode");
}

TEST(GpuEngineGpuTest, LatentChunkedPrefillMatchesCpu) {
  LKV_REQUIRE_GPU();
  const LlamaWeights w = testing::make_tiny_llama(spec(2));
  const CompressedModel m = random_compressed(w, 2, 48, 3, 4);
  expect_matches_cpu(w, &m, "fused latent decode", 5);
}

TEST(GpuEngineGpuTest, GroupOfThreeUsesFusedDecode) {
  LKV_REQUIRE_GPU();
  // 3 KV heads in one group, like the default model's joint groups: one head per CTA.
  const LlamaWeights w = testing::make_tiny_llama(spec(3));
  const CompressedModel m = random_compressed(w, 3, 96, 4, 8);
  expect_matches_cpu(w, &m, "fused latent decode");
}

TEST(GpuEngineGpuTest, WideValueLatentUsesRebuildDecode) {
  LKV_REQUIRE_GPU();
  // Value latents of rank 272 at head_dim 64 exceed the fused kernel's value accumulators
  // (256 columns), so decode goes through the rebuild path.
  const LlamaWeights w = testing::make_tiny_llama(spec(8));
  const CompressedModel m = random_compressed(w, 8, 272, 4, 8);
  expect_matches_cpu(w, &m, "rebuild decode");
}

// Ragged batch: four sequences of different lengths (one of 1 token) decoded together, with and
// without CUDA graphs, against each sequence decoded alone.
void expect_batch_matches_single(const LlamaWeights& w, const CompressedModel* compressed) {
  std::unique_ptr<GpuModelWeights> gw = GpuModelWeights::upload(w);
  std::unique_ptr<GpuLatentFactors> gf;
  if (compressed) gf = GpuLatentFactors::upload(*compressed);
  const int kBatch = 4;
  const int lens[kBatch] = {23, 1, 64, 9};
  std::vector<std::vector<TokenId>> prompts;
  for (int b = 0; b < kBatch; ++b)
    prompts.push_back(random_tokens(lens[b], w.config.vocab_size, 11 + b));
  auto run = [&](int batch_slots, bool graphs, int only) {
    GpuEngineOptions o;
    o.max_batch = batch_slots;
    o.max_seq_len = 128;
    o.page_size = 16;
    o.cuda_graphs = graphs;
    GpuEngine engine(*gw, gf.get(), o);
    std::vector<MatrixRM> steps;
    const int first = only < 0 ? 0 : only, count = only < 0 ? kBatch : 1;
    for (int b = 0; b < count; ++b) engine.prefill(b, prompts[first + b], nullptr);
    std::vector<TokenId> tokens(count);
    for (int step = 0; step < 6; ++step) {
      for (int b = 0; b < count; ++b)
        tokens[b] = static_cast<TokenId>((step * 13 + (first + b) * 5) % w.config.vocab_size);
      engine.decode(tokens);
      MatrixRM logits;
      engine.copy_logits(count, &logits);
      steps.push_back(logits);
      // Sampling on the GPU: temperature 0 is the arg-max; a sampled id is deterministic for a
      // given uniform and lies in the vocabulary.
      const std::vector<TokenId> greedy = engine.argmax(count);
      EXPECT_EQ(engine.sample(count, 0.0f, 1.0f, std::vector<float>(count, 0.5f)), greedy);
      for (int b = 0; b < count; ++b) {
        Eigen::Index best = 0;
        logits.row(b).maxCoeff(&best);
        EXPECT_EQ(greedy[b], static_cast<TokenId>(best));
      }
      const std::vector<float> u(count, 0.37f);
      const std::vector<TokenId> drawn = engine.sample(count, 0.8f, 0.9f, u);
      EXPECT_EQ(engine.sample(count, 0.8f, 0.9f, u), drawn);
      for (TokenId t : drawn) EXPECT_TRUE(t >= 0 && t < w.config.vocab_size) << t;
    }
    return steps;
  };
  const std::vector<MatrixRM> graphed = run(kBatch, true, -1);
  const std::vector<MatrixRM> plain = run(kBatch, false, -1);
  for (int b = 0; b < kBatch; ++b) {
    const std::vector<MatrixRM> alone = run(1, false, b);
    for (size_t s = 0; s < alone.size(); ++s) {
      EXPECT_LT(rel_diff(graphed[s].row(b), alone[s].row(0)), 1e-2) << "seq " << b << " step " << s;
      EXPECT_EQ(graphed[s].row(b), plain[s].row(b)) << "graph replay differs, step " << s;
    }
  }
}

TEST(GpuEngineGpuTest, RaggedBatchFp16) {
  LKV_REQUIRE_GPU();
  expect_batch_matches_single(testing::make_tiny_llama(spec(2)), nullptr);
}

TEST(GpuEngineGpuTest, RaggedBatchLatent4Bit) {
  LKV_REQUIRE_GPU();
  const LlamaWeights w = testing::make_tiny_llama(spec(2));
  const CompressedModel m = random_compressed(w, 2, 64, 4, 8);
  expect_batch_matches_single(w, &m);
}

TEST(GpuEngineGpuTest, SequenceBeyondItsPagesIsRejected) {
  LKV_REQUIRE_GPU();
  const LlamaWeights w = testing::make_tiny_llama(spec(2));
  std::unique_ptr<GpuModelWeights> gw = GpuModelWeights::upload(w);
  GpuEngineOptions o;
  o.max_seq_len = 40;
  GpuEngine engine(*gw, nullptr, o);
  engine.prefill(0, random_tokens(39, w.config.vocab_size, 1), nullptr);
  engine.decode({5});
  try {
    engine.decode({6});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("exceed its pages"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine.prefill(0, {w.config.vocab_size}, nullptr), Error);  // bad token id
  EXPECT_EQ(engine.length(0), 40);
}

TEST(GpuEngineGpuTest, ContextTooLargeForTheGpuIsRejectedBeforeAllocating) {
  LKV_REQUIRE_GPU();
  TinyLlamaSpec s = spec(2);
  s.context_length = 1 << 20;
  s.num_kv_heads = 8;
  s.num_qo_heads = 8;
  s.head_dim = 128;
  s.n_layers = 32;
  s.d_model = 256;
  const LlamaWeights w = testing::make_tiny_llama(s);
  std::unique_ptr<GpuModelWeights> gw = GpuModelWeights::upload(w);
  GpuEngineOptions o;
  o.max_batch = 256;  // 256 x 1M tokens x 128 KiB per token: far beyond any GPU
  try {
    GpuEngine engine(*gw, nullptr, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("GiB free"), std::string::npos) << e.what();
  }
}

TEST(GpuEngineGpuTest, FactorsOfAnotherModelAreRejected) {
  LKV_REQUIRE_GPU();
  const LlamaWeights w = testing::make_tiny_llama(spec(2));
  TinyLlamaSpec other = spec(2);
  other.n_layers = 3;
  const LlamaWeights w3 = testing::make_tiny_llama(other);
  const CompressedModel m3 = random_compressed(w3, 2, 32, 16, 0);
  std::unique_ptr<GpuModelWeights> gw = GpuModelWeights::upload(w);
  std::unique_ptr<GpuLatentFactors> gf = GpuLatentFactors::upload(m3);
  EXPECT_THROW(GpuEngine(*gw, gf.get(), GpuEngineOptions{}), Error);
}

}  // namespace
}  // namespace latentkv
