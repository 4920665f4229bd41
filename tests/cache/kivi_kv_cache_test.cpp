#include "latentkv/reference/kivi_kv_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "cache/cache_test_util.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/rope.h"
#include "latentkv/status.h"
#include "model/tiny_llama.h"

namespace latentkv {
namespace {

using testing::LayerShape;

constexpr double kFp32Tolerance = 2e-5;

std::vector<int64_t> iota_positions(int64_t n, int64_t first = 0) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), first);
  return p;
}

std::vector<int64_t> slice(const std::vector<int64_t>& v, int64_t from, int64_t n) {
  return std::vector<int64_t>(v.begin() + from, v.begin() + from + n);
}

// ordinary_attention() applies RoPE to the keys it is given, while the cache holds keys after
// RoPE: hand it their exact inverse rotation (by -angle, in double).
Eigen::MatrixXd unrope(const MatrixRM& keys, const std::vector<int64_t>& pos,
                       const LlamaConfig& c) {
  std::vector<double> neg = rope_inv_freq(c.rope, c.head_dim);
  for (double& f : neg) f = -f;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> k = keys.cast<double>();
  for (int64_t t = 0; t < k.rows(); ++t)
    for (int g = 0; g < c.num_kv_heads; ++g)
      apply_rope(&k(t, int64_t{g} * c.head_dim), c.head_dim, pos[t], neg.data());
  return k;
}

TEST(KiviKvCache, PolicyAndAttentionOverWhatItHolds) {
  testing::ScopedThreads one(1);
  std::mt19937 rng(1);
  LayerShape shape{64, 6, 2, 64, true};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  for (int bits : {2, 3, 4, 16}) {
    for (int residual : {0, 1, 5}) {
      for (int group : {1, 4}) {
        KiviConfig kc;
        kc.key_bits = kc.value_bits = bits;
        kc.key_group = group;
        kc.value_quant_group = bits == 3 ? 16 : 0;
        kc.residual = residual;
        KiviKvCache cache(config, w, kc);
        const int64_t total = 45;
        const MatrixRM x = testing::random_hidden(total, shape.d_model, rng);
        const auto pos = iota_positions(total, 3);
        MatrixRM out(total, shape.d_model);
        for (int64_t done = 0; done < total;) {
          const int64_t n = std::min<int64_t>(done == 0 ? 17 : 7, total - done);
          cache.forward(x.middleRows(done, n), slice(pos, done, n), out.middleRows(done, n));
          done += n;
          EXPECT_EQ(cache.quantized_keys(),
                    done < residual ? 0 : (done - residual) / group * group);
          EXPECT_EQ(cache.quantized_values(), std::max<int64_t>(0, done - residual));
          const auto kpos = slice(pos, 0, done);
          const Eigen::MatrixXd want = testing::ordinary_attention(
              config, w, x.middleRows(done - n, n).cast<double>(), slice(pos, done - n, n),
              unrope(cache.keys(), kpos, config), cache.values().cast<double>(), kpos);
          ASSERT_LT(testing::relative_error(out.middleRows(done - n, n).cast<double>(), want),
                    kFp32Tolerance)
              << "bits " << bits << " residual " << residual << " group " << group;
        }
      }
    }
  }
}

// Keys of a block are quantize_latent() of each channel's fp16 values over the block, bit-exact:
// snapshot the fp16 window just before the block forms and quantize it here.
TEST(KiviKvCache, KeyBlocksArePerChannelQuantizerOutput) {
  std::mt19937 rng(2);
  LayerShape shape{32, 2, 1, 64, false};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  KiviConfig kc;
  kc.key_bits = 3;
  kc.key_group = 8;
  kc.residual = 2;
  KiviKvCache cache(config, w, kc);
  const MatrixRM x = testing::random_hidden(10, shape.d_model, rng);
  cache.append(x.topRows(9), iota_positions(9));
  ASSERT_EQ(cache.quantized_keys(), 0);
  const MatrixRM window = cache.keys();  // 9 fp16 keys
  cache.append(x.bottomRows(1), {9});    // 10 = residual + group: the oldest 8 form a block
  ASSERT_EQ(cache.quantized_keys(), 8);
  const MatrixRM held = cache.keys();
  QuantConfig block;
  block.bits = 3;
  std::vector<float> column(8), back(8);
  std::vector<uint8_t> codes(3);
  uint16_t scale, zero;
  for (int c = 0; c < 64; ++c) {
    for (int t = 0; t < 8; ++t) column[t] = window(t, c);
    quantize_latent(column.data(), 8, block, codes.data(), &scale, &zero);
    dequantize_latent(codes.data(), &scale, &zero, 8, block, back.data());
    for (int t = 0; t < 8; ++t) ASSERT_EQ(held(t, c), back[t]) << "channel " << c << " token " << t;
  }
  EXPECT_EQ(held(8, 0), window(8, 0));  // still fp16 in the window
}

TEST(KiviKvCache, BytesPerTokenExact) {
  KiviConfig kc;  // 2-bit keys (G 32) and values (32 channels per scale/zero)
  // 2 KV heads × 64 = 128 channels. Keys: a block holds 8 code bytes + 4 per channel for 32
  // tokens -> 128·12/32 = 48. Values: 32 code bytes + 4 groups·4 = 48.
  EXPECT_DOUBLE_EQ(kivi_bytes_per_token(kc, 2, 64), 96.0);
  kc.key_bits = kc.value_bits = 3;
  kc.key_group = 24;  // 9 code bytes + 4 per channel for 24 tokens; values 48 + 16
  EXPECT_DOUBLE_EQ(kivi_bytes_per_token(kc, 2, 64), 128.0 * 13 / 24 + 64);
  kc.key_bits = kc.value_bits = 16;
  EXPECT_DOUBLE_EQ(kivi_bytes_per_token(kc, 2, 64), 512.0);  // the fp16 cache

  std::mt19937 rng(3);
  LayerShape shape{32, 4, 2, 64, false};
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  KiviConfig small;
  small.key_group = 4;
  small.residual = 3;
  KiviKvCache cache(testing::layer_config(shape), w, small);
  cache.append(testing::random_hidden(13, shape.d_model, rng), iota_positions(13));
  // Keys: 8 quantized (2 blocks × 128 channels × (1 code byte + 4)), 5 fp16; values: 10
  // quantized (32 + 16 bytes), 3 fp16.
  EXPECT_EQ(cache.bytes_held(), 2 * 128 * 5 + 5 * 256 + 10 * 48 + 3 * 256);
  EXPECT_EQ(cache.residual_bytes_per_token(), 512);
}

TEST(KiviAttention, SixteenBitsMatchesTheFp16DenseCache) {
  testing::ScopedThreads one(1);
  testing::TinyLlamaSpec spec;
  spec.num_qo_heads = 6;
  spec.num_kv_heads = 2;
  spec.biases = true;
  const LlamaWeights w = testing::make_tiny_llama(spec, 9);
  const std::vector<TokenId> tokens = testing::random_tokens(40, spec.vocab_size, 1);
  KiviConfig kc;
  kc.key_bits = kc.value_bits = 16;
  kc.residual = 5;
  kc.key_group = 4;
  kc.value_quant_group = 0;
  LlamaForward dense(w, KvDtype::kF16), exact(w, KvDtype::kF32);
  LlamaForward kivi(w, std::make_unique<KiviAttention>(w, kc));
  MatrixRM a, b, c;
  dense.forward(tokens, &a);
  kivi.forward(tokens, &b);
  exact.forward(tokens, &c);
  // Both store fp16(RoPE(k)) and fp16(v); a key computed in a different GEMM grouping may round
  // to the neighbouring fp16 value, so the gap is a small part of what fp16 storage costs.
  const double fp16_noise = testing::relative_error(a.cast<double>(), c.cast<double>());
  std::printf("kivi16 vs dense f16 %.3g, dense f16 vs f32 %.3g\n",
              testing::relative_error(b.cast<double>(), a.cast<double>()), fp16_noise);
  EXPECT_LT(testing::relative_error(b.cast<double>(), a.cast<double>()), 0.25 * fp16_noise);
  const auto& backend = dynamic_cast<const KiviAttention&>(kivi.attention());
  EXPECT_DOUBLE_EQ(backend.bytes_per_token(), spec.n_layers * 4.0 * 2 * spec.head_dim);
}

TEST(KiviKvCache, BadInput) {
  std::mt19937 rng(4);
  LayerShape shape{32, 4, 2, 64, false};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  auto expect_error = [](auto fn, StatusCode code, const std::string& fragment) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  KiviConfig kc;
  kc.key_bits = 5;
  expect_error([&] { KiviKvCache(config, w, kc); }, StatusCode::kInvalidArgument, "bits");
  kc = KiviConfig();
  kc.key_group = 0;
  expect_error([&] { KiviKvCache(config, w, kc); }, StatusCode::kInvalidArgument, "key_group");
  kc = KiviConfig();
  kc.value_quant_group = 48;
  expect_error([&] { KiviKvCache(config, w, kc); }, StatusCode::kInvalidArgument,
               "value_quant_group");
  kc = KiviConfig();
  kc.residual = -2;
  expect_error([&] { KiviKvCache(config, w, kc); }, StatusCode::kInvalidArgument, "residual");
  LlamaLayerWeights bad = w;
  bad.wk.resize(64, shape.d_model);
  expect_error([&] { KiviKvCache(config, bad, KiviConfig()); }, StatusCode::kInvalidArgument,
               "W_k");

  KiviKvCache cache(config, w, KiviConfig());
  const MatrixRM x = testing::random_hidden(3, shape.d_model, rng);
  MatrixRM out(3, shape.d_model);
  expect_error(
      [&] {
        cache.attend(x, {0, 1, 2}, out);
      },
      StatusCode::kInvalidArgument, "empty cache");
  MatrixRM nan = x;
  nan(1, 1) = std::nanf("");
  expect_error([&] { cache.forward(nan, {0, 1, 2}, out); }, StatusCode::kNumericalError, "row 1");
  expect_error(
      [&] {
        cache.forward(x, {0, 0, 1}, out);
      },
      StatusCode::kInvalidArgument, "positions must increase");
  expect_error(
      [&] {
        cache.forward(x * 1e7f, {0, 1, 2}, out);
      },
      StatusCode::kNumericalError, "fp16 range");
  EXPECT_EQ(cache.size(), 0);
  cache.forward(x, {4, 5, 6}, out);
  expect_error(
      [&] {
        cache.forward(x, {6, 7, 8}, out);
      },
      StatusCode::kInvalidArgument, "positions must increase");
  expect_error(
      [&] {
        cache.attend(x, {3, 5, 6}, out);
      },
      StatusCode::kInvalidArgument, "precedes every cached token");
  MatrixRM narrow(3, shape.d_model - 1);
  expect_error(
      [&] {
        cache.forward(x, {7, 8, 9}, narrow);
      },
      StatusCode::kInvalidArgument, "output");
  EXPECT_EQ(cache.size(), 3);
}

}  // namespace
}  // namespace latentkv
