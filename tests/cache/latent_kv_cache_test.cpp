// Identities of the latent KV cache (issue 3, design §3.7, §3.8): full rank without quantization
// equals ordinary attention; with any factors it equals ordinary attention with W' = B·A; folded
// equals unfolded; a quantized cache equals fp64 latent attention over the latents it holds.
#include "latentkv/reference/latent_kv_cache.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "cache/cache_test_util.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

using testing::LayerShape;

// fp32 arithmetic over a few hundred terms with unit-scale data: errors stay well below 1e-4 of
// the output scale, while any convention error (RoPE, grouping, GQA, causal mask) is O(1).
constexpr double kFp32Tolerance = 2e-5;

std::vector<int64_t> iota_positions(int64_t n, int64_t first = 0) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), first);
  return p;
}

std::vector<int64_t> slice(const std::vector<int64_t>& v, int64_t from, int64_t n) {
  return std::vector<int64_t>(v.begin() + from, v.begin() + from + n);
}

LatentCacheConfig exact_config() {
  LatentCacheConfig c;
  c.key.bits = c.value.bits = kExactLatentBits;
  return c;
}

// Runs forward() over x in pieces of `piece` rows (0 = all at once) and returns all outputs.
Eigen::MatrixXd run_chunks(LatentKvCache& cache, const MatrixRM& x, const std::vector<int64_t>& pos,
                           int64_t piece) {
  MatrixRM out(x.rows(), x.cols());
  for (int64_t done = 0; done < x.rows();) {
    const int64_t n = piece == 0 ? x.rows() : std::min(piece, x.rows() - done);
    cache.forward(x.middleRows(done, n), slice(pos, done, n), out.middleRows(done, n));
    done += n;
  }
  return out.cast<double>();
}

struct Shape {
  int num_qo_heads, num_kv_heads, head_dim, group_size;
};

// GQA ratios 1/3/4/8, head_dim 64 and 128, group sizes 1/2/3/4 where they divide.
const Shape kShapes[] = {{4, 4, 64, 1},   {4, 4, 64, 2},   {4, 4, 64, 4},  {6, 2, 64, 1},
                         {6, 2, 64, 2},   {12, 3, 64, 3},  {12, 3, 64, 1}, {8, 1, 128, 1},
                         {16, 4, 128, 2}, {16, 4, 128, 4}, {24, 3, 128, 3}};

TEST(LatentKvCache, FullRankExactEqualsOrdinaryAttention) {
  testing::ScopedThreads one(1);
  std::mt19937 rng(1);
  for (const Shape& s : kShapes) {
    LayerShape shape{80, s.num_qo_heads, s.num_kv_heads, s.head_dim, /*biases=*/true};
    const LlamaConfig config = testing::layer_config(shape);
    const LlamaLayerWeights w = testing::random_layer(shape, rng);
    const auto heads = consecutive_group_heads(s.num_kv_heads);
    LatentLayerFactors f;
    f.key = testing::identity_factors(w.wk, shape, s.group_size, heads, w.bk);
    f.value = testing::identity_factors(w.wv, shape, s.group_size, heads, w.bv);
    LatentKvCache cache(config, w, f, exact_config());
    const int64_t total = 17;
    const MatrixRM x = testing::random_hidden(total, shape.d_model, rng);
    const auto pos = iota_positions(total);
    const Eigen::MatrixXd got = run_chunks(cache, x, pos, 0);
    const Eigen::MatrixXd xd = x.cast<double>();
    Eigen::MatrixXd k = xd * w.wk.cast<double>().transpose();
    k.rowwise() += w.bk.cast<double>().transpose();
    Eigen::MatrixXd v = xd * w.wv.cast<double>().transpose();
    v.rowwise() += w.bv.cast<double>().transpose();
    const Eigen::MatrixXd want = testing::ordinary_attention(config, w, xd, pos, k, v, pos);
    EXPECT_LT(testing::relative_error(got, want), kFp32Tolerance)
        << s.num_qo_heads << "/" << s.num_kv_heads << " heads, head_dim " << s.head_dim
        << ", group_size " << s.group_size;
  }
}

TEST(LatentKvCache, FullRankSvdFactorsEqualOrdinaryAttention) {
  testing::ScopedThreads one(1);
  std::mt19937 rng(2);
  LayerShape shape{160, 8, 2, 64, false};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  for (int gs : {1, 2}) {
    const std::vector<int> ranks(2 / gs, gs * 64);  // full rank: group width <= d_model
    LatentLayerFactors f;
    f.key = testing::svd_factors(w.wk, shape, gs, {1, 0}, ranks, Eigen::VectorXf());
    f.value = testing::svd_factors(w.wv, shape, gs, {0, 1}, ranks, Eigen::VectorXf());
    LatentKvCache cache(config, w, f, exact_config());
    const MatrixRM x = testing::random_hidden(113, shape.d_model, rng);
    const auto pos = iota_positions(113);
    const Eigen::MatrixXd got = run_chunks(cache, x, pos, 40);
    const Eigen::MatrixXd xd = x.cast<double>();
    const Eigen::MatrixXd want =
        testing::ordinary_attention(config, w, xd, pos, xd * w.wk.cast<double>().transpose(),
                                    xd * w.wv.cast<double>().transpose(), pos);
    EXPECT_LT(testing::relative_error(got, want), 5 * kFp32Tolerance) << "group_size " << gs;
  }
}

// With any factors (truncated: ranks below the group width, not multiples of 32; similarity
// grouping; K and V grouped differently), latent attention is ordinary attention with W' = B·A.
TEST(LatentKvCache, TruncatedEqualsOrdinaryAttentionWithProductWeights) {
  testing::ScopedThreads one(1);
  std::mt19937 rng(3);
  struct Case {
    Shape shape;
    int value_group_size;
    std::vector<int> key_heads, value_heads, key_ranks, value_ranks;
  };
  const std::vector<Case> cases = {
      {{4, 4, 64, 2}, 4, {2, 0, 3, 1}, {0, 1, 2, 3}, {37, 70}, {101}},
      {{12, 3, 64, 1}, 3, {0, 1, 2}, {2, 1, 0}, {5, 13, 64}, {150}},
      {{16, 4, 128, 4}, 2, {3, 1, 0, 2}, {1, 3, 2, 0}, {200}, {77, 33}},
      {{8, 1, 128, 1}, 1, {0}, {0}, {45}, {127}},
  };
  for (const Case& c : cases) {
    LayerShape shape{72, c.shape.num_qo_heads, c.shape.num_kv_heads, c.shape.head_dim, true};
    const LlamaConfig config = testing::layer_config(shape);
    const LlamaLayerWeights w = testing::random_layer(shape, rng);
    LatentLayerFactors f;
    f.key = testing::random_factors(shape, c.shape.group_size, c.key_heads, c.key_ranks, w.bk, rng);
    f.value =
        testing::random_factors(shape, c.value_group_size, c.value_heads, c.value_ranks, w.bv, rng);
    for (int64_t total : {1, 2, 17, 113}) {
      // Positions with an offset and gaps: RoPE must use each token's own position.
      std::vector<int64_t> pos(total);
      for (int64_t i = 0; i < total; ++i) pos[i] = 1000 + 3 * i + (i % 2);
      const MatrixRM x = testing::random_hidden(total, shape.d_model, rng);
      const Eigen::MatrixXd xd = x.cast<double>();
      Eigen::MatrixXd k = xd * testing::effective_weight(f.key).transpose();
      k.rowwise() += w.bk.cast<double>().transpose();
      Eigen::MatrixXd v = xd * testing::effective_weight(f.value).transpose();
      v.rowwise() += w.bv.cast<double>().transpose();
      const Eigen::MatrixXd want = testing::ordinary_attention(config, w, xd, pos, k, v, pos);
      for (int64_t piece : {int64_t{0}, int64_t{1}, int64_t{16}}) {
        if (piece == 1 && total > 17) continue;  // token by token: keep the test quick
        LatentKvCache cache(config, w, f, exact_config());
        EXPECT_LT(testing::relative_error(run_chunks(cache, x, pos, piece), want), kFp32Tolerance)
            << c.shape.num_qo_heads << "/" << c.shape.num_kv_heads << " heads, T " << total
            << ", piece " << piece;
      }
    }
  }
}

TEST(LatentKvCache, FoldedEqualsUnfolded) {
  testing::ScopedThreads one(1);
  std::mt19937 rng(4);
  for (bool biases : {false, true}) {
    LayerShape shape{64, 12, 4, 64, biases};
    const LlamaConfig config = testing::layer_config(shape);
    const LlamaLayerWeights w = testing::random_layer(shape, rng);
    LatentLayerFactors f;
    f.key = testing::random_factors(shape, 2, {0, 2, 1, 3}, {50, 29}, w.bk, rng);
    f.value = testing::random_factors(shape, 2, {3, 0, 2, 1}, {61, 19}, w.bv, rng);
    LatentLayerFactors folded = f;
    folded.folded_output = testing::fold_wo(w, f.value, shape.num_qo_heads);
    LatentCacheConfig cfg;
    cfg.key.bits = cfg.value.bits = 4;
    cfg.key.residual = cfg.value.residual = 5;
    LatentKvCache a(config, w, f, cfg), b(config, w, folded, cfg);
    const MatrixRM x = testing::random_hidden(41, shape.d_model, rng);
    const auto pos = iota_positions(41);
    const Eigen::MatrixXd ya = run_chunks(a, x, pos, 16), yb = run_chunks(b, x, pos, 16);
    EXPECT_LT(testing::relative_error(yb, ya), kFp32Tolerance) << "biases " << biases;
  }
}

// The quantized cache's output equals fp64 attention over the latents it holds (read back after
// each chunk), and those latents are the exact ones within the quantizer's bound.
TEST(LatentKvCache, QuantizedCacheEqualsAttentionOverItsLatents) {
  testing::ScopedThreads one(1);
  std::mt19937 rng(5);
  LayerShape shape{64, 6, 2, 64, true};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  LatentLayerFactors f;
  f.key = testing::random_factors(shape, 1, {1, 0}, {24, 40}, w.bk, rng);
  f.value = testing::random_factors(shape, 2, {0, 1}, {72}, w.bv, rng);
  for (int bits : {16, 8, 4, 3, 2}) {
    for (int residual : {0, 1, 5}) {
      for (int chunk : {1, 4}) {
        LatentCacheConfig cfg;
        cfg.key.bits = cfg.value.bits = bits;
        cfg.key.residual = cfg.value.residual = residual;
        cfg.key.quant_group = bits == 3 ? 8 : 0;
        cfg.chunk = chunk;
        LatentKvCache cache(config, w, f, cfg);
        const int64_t total = 53;
        const MatrixRM x = testing::random_hidden(total, shape.d_model, rng);
        const Eigen::MatrixXd xd = x.cast<double>();
        const auto pos = iota_positions(total, 7);
        MatrixRM out(total, shape.d_model);
        for (int64_t done = 0; done < total;) {
          const int64_t n = std::min<int64_t>(done == 0 ? 17 : 9, total - done);
          cache.forward(x.middleRows(done, n), slice(pos, done, n), out.middleRows(done, n));
          done += n;
          std::vector<Eigen::MatrixXd> hk, hv;
          for (int g = 0; g < 2; ++g) hk.push_back(cache.key_latents(g).cast<double>());
          hv.push_back(cache.value_latents(0).cast<double>());
          const Eigen::MatrixXd want = testing::ordinary_attention(
              config, w, xd.middleRows(done - n, n), slice(pos, done - n, n),
              testing::rebuild_from_latents(f.key, hk), testing::rebuild_from_latents(f.value, hv),
              slice(pos, 0, done));
          ASSERT_LT(testing::relative_error(out.middleRows(done - n, n).cast<double>(), want),
                    kFp32Tolerance)
              << "bits " << bits << " residual " << residual << " chunk " << chunk;
        }
        // Latents held vs exact latents x·Aᵀ: fp16 rounding in the window, the quantizer's step
        // (plus fp16 rounding of h, scale and zero) for quantized tokens.
        for (int g = 0; g < 2; ++g) {
          const LatentStore& store = cache.key_store(g);
          EXPECT_EQ(store.quantized(), total < residual ? 0 : (total - residual) / chunk * chunk);
          const int r = f.key.ranks[g];
          Eigen::MatrixXd a(r, shape.d_model);
          for (int i = 0; i < r; ++i)
            for (int j = 0; j < shape.d_model; ++j)
              a(i, j) = f.key.a[(int64_t{f.key.rank_offset(g)} + i) * shape.d_model + j];
          const Eigen::MatrixXd exact = xd * a.transpose();
          const Eigen::MatrixXd held = cache.key_latents(g).cast<double>();
          for (int64_t t = 0; t < total; ++t) {
            const double lo = exact.row(t).minCoeff(), hi = exact.row(t).maxCoeff();
            const double big = std::max(std::abs(lo), std::abs(hi));
            const double step =
                (t < store.quantized() && bits < 16) ? (hi - lo) / ((1 << bits) - 1) : 0.0;
            const double bound = 0.5 * step + std::ldexp(big + (hi - lo), -10) + 1e-5 * big;
            ASSERT_LE((held.row(t) - exact.row(t)).cwiseAbs().maxCoeff(), bound)
                << "bits " << bits << " token " << t;
          }
        }
      }
    }
  }
}

// The OpenMP paths (attention tasks, RoPE, dequantization, GEMMs) agree with one thread on a
// problem large enough to take every parallel branch.
TEST(LatentKvCache, ThreadedEqualsSingleThreaded) {
  std::mt19937 rng(9);
  LayerShape shape{128, 8, 2, 64, true};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  LatentLayerFactors f;
  f.key = testing::random_factors(shape, 2, {1, 0}, {100}, w.bk, rng);
  f.value = testing::random_factors(shape, 1, {0, 1}, {48, 56}, w.bv, rng);
  LatentCacheConfig cfg;
  cfg.key.bits = 4;
  cfg.value.bits = 3;
  cfg.key.residual = cfg.value.residual = 32;
  const MatrixRM x = testing::random_hidden(300, shape.d_model, rng);
  const auto pos = iota_positions(300);
  Eigen::MatrixXd single, threaded;
  {
    testing::ScopedThreads one(1);
    LatentKvCache cache(config, w, f, cfg);
    single = run_chunks(cache, x, pos, 256);
  }
  {
    testing::ScopedThreads two(2);
    LatentKvCache cache(config, w, f, cfg);
    threaded = run_chunks(cache, x, pos, 256);
  }
  EXPECT_LT(testing::relative_error(threaded, single), kFp32Tolerance);
}

TEST(LatentKvCache, AttendSeesOnlyTokensAtOrBeforeTheQueryPosition) {
  std::mt19937 rng(6);
  LayerShape shape{48, 4, 2, 64, false};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  LatentLayerFactors f;
  f.key = testing::random_factors(shape, 2, {0, 1}, {33}, Eigen::VectorXf(), rng);
  f.value = testing::random_factors(shape, 1, {0, 1}, {20, 30}, Eigen::VectorXf(), rng);
  LatentKvCache cache(config, w, f, exact_config());
  const int64_t total = 30;
  const MatrixRM x = testing::random_hidden(total, shape.d_model, rng);
  std::vector<int64_t> pos(total);
  for (int64_t i = 0; i < total; ++i) pos[i] = 2 * i;  // even positions only
  cache.append(x, pos);
  // Queries at odd positions in between, and one past the end.
  const std::vector<int64_t> qpos = {0, 3, 3, 27, 58, 80};
  const MatrixRM xq = testing::random_hidden(6, shape.d_model, rng);
  MatrixRM out(6, shape.d_model);
  cache.attend(xq, qpos, out);
  const Eigen::MatrixXd xd = x.cast<double>();
  const Eigen::MatrixXd want = testing::ordinary_attention(
      config, w, xq.cast<double>(), qpos, xd * testing::effective_weight(f.key).transpose(),
      xd * testing::effective_weight(f.value).transpose(), pos);
  EXPECT_LT(testing::relative_error(out.cast<double>(), want), kFp32Tolerance);
  EXPECT_EQ(cache.size(), total);  // attend stores nothing
}

TEST(LatentKvCache, BytesPerTokenExact) {
  std::mt19937 rng(7);
  LayerShape shape{40, 4, 4, 64, false};
  const LlamaConfig config = testing::layer_config(shape);
  const LlamaLayerWeights w = testing::random_layer(shape, rng);
  LatentLayerFactors f;
  f.key = testing::random_factors(shape, 2, {0, 1, 2, 3}, {40, 24}, Eigen::VectorXf(), rng);
  f.value = testing::random_factors(shape, 4, {0, 1, 2, 3}, {70}, Eigen::VectorXf(), rng);
  LatentCacheConfig cfg;
  cfg.key.bits = 3;
  cfg.key.quant_group = 8;
  cfg.key.residual = 5;
  cfg.value.bits = 4;
  cfg.value.residual = 2;
  cfg.chunk = 4;
  LatentKvCache cache(config, w, f, cfg);
  // Keys: 40 ch -> 15 code bytes + 5 pairs·4 = 35; 24 ch -> 9 + 3·4 = 21. Values: 70 ch, one
  // pair -> 35 + 4 = 39. fp16 window: 2·(40 + 24 + 70) = 268.
  EXPECT_EQ(cache.bytes_per_token(), 35 + 21 + 39);
  EXPECT_EQ(cache.residual_bytes_per_token(), 268);
  cache.append(testing::random_hidden(23, shape.d_model, rng), iota_positions(23));
  // Keys: residual 5, chunk 4 -> 16 quantized, 7 in fp16; values: residual 2 -> 20 and 3.
  EXPECT_EQ(cache.bytes_held(), 16 * (35 + 21) + 7 * 2 * (40 + 24) + 20 * 39 + 3 * 2 * 70);
  cache.reset();
  EXPECT_EQ(cache.bytes_held(), 0);
  EXPECT_EQ(cache.size(), 0);
}

class LatentKvCacheBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(8);
    shape_ = LayerShape{32, 4, 2, 64, false};
    config_ = testing::layer_config(shape_);
    w_ = testing::random_layer(shape_, rng);
    f_.key = testing::random_factors(shape_, 1, {0, 1}, {10, 12}, Eigen::VectorXf(), rng);
    f_.value = testing::random_factors(shape_, 2, {0, 1}, {20}, Eigen::VectorXf(), rng);
    x_ = testing::random_hidden(4, shape_.d_model, rng);
  }
  template <typename Fn>
  void expect_error(Fn fn, StatusCode code, const std::string& fragment) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
  LayerShape shape_;
  LlamaConfig config_;
  LlamaLayerWeights w_;
  LatentLayerFactors f_;
  MatrixRM x_;
};

TEST_F(LatentKvCacheBadInput, MismatchedFactors) {
  auto make = [&](const LatentLayerFactors& f) {
    LatentKvCache(config_, w_, f, LatentCacheConfig());
  };
  LatentLayerFactors f = f_;
  f.key.d_model = 33;
  expect_error([&] { make(f); }, StatusCode::kInvalidArgument, "factors");
  f = f_;
  f.value.ranks = {20, 1};
  expect_error([&] { make(f); }, StatusCode::kInvalidArgument, "ranks");
  f = f_;
  f.key.group_size = 3;
  expect_error([&] { make(f); }, StatusCode::kInvalidArgument, "does not divide");
  f = f_;
  f.key.b[3] = std::nanf("");
  expect_error([&] { make(f); }, StatusCode::kInvalidArgument, "non-finite");
  f = f_;
  f.folded_output = testing::fold_wo(w_, f_.value, shape_.num_qo_heads);
  f.folded_output.w.pop_back();
  expect_error([&] { make(f); }, StatusCode::kInvalidArgument, "folded W_o has");
  f.folded_output = testing::fold_wo(w_, f_.value, shape_.num_qo_heads);
  f.folded_output.head_offsets[2] += 1;  // must follow the value ranks: 4 heads × 20 columns
  expect_error([&] { make(f); }, StatusCode::kInvalidArgument, "query head 2 starts at column 41");
  LlamaLayerWeights with_bias = w_;
  with_bias.bk = Eigen::VectorXf::Zero(128);
  expect_error([&] { LatentKvCache(config_, with_bias, f_, LatentCacheConfig()); },
               StatusCode::kInvalidArgument, "k_proj bias");
  with_bias = w_;
  with_bias.bo = Eigen::VectorXf::Ones(shape_.d_model);
  f = f_;
  f.folded_output = testing::fold_wo(w_, f_.value, shape_.num_qo_heads);  // w_ has no b_o
  expect_error([&] { LatentKvCache(config_, with_bias, f, LatentCacheConfig()); },
               StatusCode::kInvalidArgument, "folded output bias");
  LlamaConfig other = config_;
  other.head_dim = 32;
  expect_error([&] { LatentKvCache(other, w_, f_, LatentCacheConfig()); },
               StatusCode::kInvalidArgument, "head_dim");
}

TEST_F(LatentKvCacheBadInput, BadCacheConfig) {
  LatentCacheConfig cfg;
  cfg.key.bits = 5;
  expect_error([&] { LatentKvCache(config_, w_, f_, cfg); }, StatusCode::kInvalidArgument,
               "bits 5");
  cfg = LatentCacheConfig();
  cfg.value.bits = 4;
  cfg.value.quant_group = 7;
  expect_error([&] { LatentKvCache(config_, w_, f_, cfg); }, StatusCode::kInvalidArgument,
               "does not divide");
  cfg = LatentCacheConfig();
  cfg.chunk = 0;
  expect_error([&] { LatentKvCache(config_, w_, f_, cfg); }, StatusCode::kInvalidArgument, "chunk");
}

TEST_F(LatentKvCacheBadInput, ShapesPositionsAndValues) {
  LatentKvCache cache(config_, w_, f_, LatentCacheConfig());
  MatrixRM out(4, shape_.d_model);
  const MatrixRM wide = MatrixRM::Zero(4, shape_.d_model + 1);
  expect_error(
      [&] {
        cache.forward(wide, {0, 1, 2, 3}, out);
      },
      StatusCode::kInvalidArgument, "expected [n >= 1");
  expect_error(
      [&] {
        cache.forward(x_, {0, 1, 2}, out);
      },
      StatusCode::kInvalidArgument, "positions");
  MatrixRM small(3, shape_.d_model);
  expect_error(
      [&] {
        cache.forward(x_, {0, 1, 2, 3}, small);
      },
      StatusCode::kInvalidArgument, "output");
  expect_error(
      [&] {
        cache.forward(x_, {0, 2, 1, 3}, out);
      },
      StatusCode::kInvalidArgument, "positions must increase");
  expect_error(
      [&] {
        cache.forward(x_, {-1, 0, 1, 2}, out);
      },
      StatusCode::kInvalidArgument, "negative");
  expect_error(
      [&] {
        cache.attend(x_, {0, 1, 2, 3}, out);
      },
      StatusCode::kInvalidArgument, "empty cache");
  MatrixRM bad = x_;
  bad(2, 5) = std::numeric_limits<float>::infinity();
  expect_error(
      [&] {
        cache.forward(bad, {0, 1, 2, 3}, out);
      },
      StatusCode::kNumericalError, "row 2");
  EXPECT_EQ(cache.size(), 0);  // nothing of a rejected chunk is stored

  cache.forward(x_, {10, 11, 12, 13}, out);
  expect_error(
      [&] {
        cache.forward(x_, {13, 14, 15, 16}, out);
      },
      StatusCode::kInvalidArgument, "positions must increase");
  expect_error(
      [&] {
        cache.attend(x_, {12, 11, 13, 14}, out);
      },
      StatusCode::kInvalidArgument, "must not decrease");
  expect_error(
      [&] {
        cache.attend(x_, {9, 11, 12, 13}, out);
      },
      StatusCode::kInvalidArgument, "precedes every cached token");
  const MatrixRM huge = x_ * 1e7f;  // latents beyond the fp16 range
  expect_error(
      [&] {
        cache.forward(huge, {20, 21, 22, 23}, out);
      },
      StatusCode::kNumericalError, "fp16 range");
  EXPECT_EQ(cache.size(), 4);
}

}  // namespace
}  // namespace latentkv
