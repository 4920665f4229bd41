#include "latentkv/model/llama_forward.h"

#include <gtest/gtest.h>

#include <memory>

#include "model/tiny_llama.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

using testing::make_tiny_llama;
using testing::naive_llama_logits;
using testing::random_tokens;
using testing::TinyLlamaSpec;

// Two fp32 evaluations in different orders (or fp32 against double) of the tiny models: unit
// roundoff 6e-8, amplified through 2 layers of 48-wide products, RMSNorm and softmax into logits
// of order 1; the largest difference observed is 1.5e-5.
constexpr double kFp32Tol = 5e-5;

// max over rows of ‖a_i − b_i‖∞ / ‖b_i‖∞.
double max_row_rel_err(const MatrixRM& a, const Eigen::MatrixXd& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  double worst = 0;
  for (int i = 0; i < b.rows(); ++i) {
    const double err = (a.row(i).cast<double>() - b.row(i)).cwiseAbs().maxCoeff();
    worst = std::max(worst, err / b.row(i).cwiseAbs().maxCoeff());
  }
  return worst;
}

MatrixRM prefill(LlamaForward& fwd, const std::vector<int32_t>& tokens) {
  MatrixRM logits;
  fwd.reset();
  fwd.forward(tokens, &logits);
  return logits;
}

MatrixRM decode_one_by_one(LlamaForward& fwd, const std::vector<int32_t>& tokens) {
  fwd.reset();
  MatrixRM all(tokens.size(), fwd.config().vocab_size), step;
  for (size_t i = 0; i < tokens.size(); ++i) {
    fwd.forward({tokens[i]}, &step);
    all.row(i) = step.row(0);
  }
  return all;
}

struct ShapeCase {
  int num_qo_heads, num_kv_heads;
  bool tied, biases;
};

class ForwardVsNaive : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(ForwardVsNaive, PrefillMatchesDoublePrecisionReference) {
  const ShapeCase sc = GetParam();
  TinyLlamaSpec spec;
  spec.num_qo_heads = sc.num_qo_heads;
  spec.num_kv_heads = sc.num_kv_heads;
  spec.tied_embeddings = sc.tied;
  spec.biases = sc.biases;
  const LlamaWeights w = make_tiny_llama(spec, 7);
  // 150 tokens: more than two 64-row query blocks, with a ragged last block.
  const auto tokens = random_tokens(150, spec.vocab_size, 3);
  LlamaForward fwd(w);
  const MatrixRM ours = prefill(fwd, tokens);
  EXPECT_LT(max_row_rel_err(ours, naive_llama_logits(w, tokens)), kFp32Tol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ForwardVsNaive,
                         ::testing::Values(ShapeCase{4, 4, true, false},  // MHA
                                           ShapeCase{4, 2, true, false},  // GQA 2
                                           ShapeCase{6, 2, false, true},  // GQA 3, biases
                                           ShapeCase{4, 1, false, false}  // MQA
                                           ));

TEST(LlamaForward, IncrementalDecodeMatchesPrefill) {
  const LlamaWeights w = make_tiny_llama({}, 11);
  const auto tokens = random_tokens(70, w.config.vocab_size, 5);
  LlamaForward fwd(w);
  const MatrixRM batched = prefill(fwd, tokens);
  const MatrixRM stepped = decode_one_by_one(fwd, tokens);
  EXPECT_LT(max_row_rel_err(stepped, batched.cast<double>()), kFp32Tol);
  EXPECT_EQ(fwd.position(), 70);
  EXPECT_EQ(fwd.attention().cached_tokens(1), 70);
}

TEST(LlamaForward, ChunkedPrefillMatchesOneChunk) {
  const LlamaWeights w = make_tiny_llama({}, 12);
  const auto tokens = random_tokens(100, w.config.vocab_size, 6);
  LlamaForward fwd(w);
  const MatrixRM whole = prefill(fwd, tokens);
  fwd.reset();
  MatrixRM chunked(100, w.config.vocab_size), part;
  int64_t at = 0;
  for (const int64_t len : {1, 17, 64, 18}) {
    fwd.forward({tokens.begin() + at, tokens.begin() + at + len}, &part);
    chunked.middleRows(at, len) = part;
    at += len;
  }
  ASSERT_EQ(at, 100);
  EXPECT_LT(max_row_rel_err(chunked, whole.cast<double>()), kFp32Tol);
}

TEST(LlamaForward, FutureTokensDoNotChangePastLogits) {
  const LlamaWeights w = make_tiny_llama({}, 13);
  auto tokens = random_tokens(90, w.config.vocab_size, 8);
  LlamaForward fwd(w);
  const MatrixRM before = prefill(fwd, tokens);
  for (int i = 60; i < 90; ++i) tokens[i] = (tokens[i] + 1 + i) % w.config.vocab_size;
  const MatrixRM after = prefill(fwd, tokens);
  // Rows are computed independently by every product, and masked scores are exact zeros, so the
  // first 60 rows must not move at all.
  EXPECT_EQ(before.topRows(60), after.topRows(60));
  EXPECT_GT((before.bottomRows(30) - after.bottomRows(30)).cwiseAbs().maxCoeff(), 1e-3);
}

// GQA is equivalent to MHA whose KV heads are copies: query head h reads KV head h / ratio.
TEST(LlamaForward, GqaEqualsMhaWithReplicatedKvHeads) {
  TinyLlamaSpec spec;
  spec.num_qo_heads = 6;
  spec.num_kv_heads = 2;
  const LlamaWeights gqa = make_tiny_llama(spec, 14);
  LlamaWeights mha = gqa;
  mha.config.num_kv_heads = 6;
  const int hd = spec.head_dim;
  for (auto& lw : mha.layers) {
    MatrixRM wk(6 * hd, spec.d_model), wv(6 * hd, spec.d_model);
    for (int h = 0; h < 6; ++h) {
      wk.middleRows(h * hd, hd) = lw.wk.middleRows((h / 3) * hd, hd);
      wv.middleRows(h * hd, hd) = lw.wv.middleRows((h / 3) * hd, hd);
    }
    lw.wk = wk;
    lw.wv = wv;
  }
  const auto tokens = random_tokens(40, spec.vocab_size, 9);
  LlamaForward a(gqa), b(mha);
  EXPECT_LT(max_row_rel_err(prefill(a, tokens), prefill(b, tokens).cast<double>()), kFp32Tol);
}

TEST(LlamaForward, Fp16CacheIsCloseToFp32) {
  const LlamaWeights w = make_tiny_llama({}, 15);
  const auto tokens = random_tokens(80, w.config.vocab_size, 10);
  LlamaForward f32(w, KvDtype::kF32), f16(w, KvDtype::kF16);
  const MatrixRM a = prefill(f32, tokens), b = prefill(f16, tokens);
  const double err = max_row_rel_err(b, a.cast<double>());
  EXPECT_GT(err, 0.0);   // the cache really is rounded
  EXPECT_LT(err, 5e-3);  // fp16 has 11 significant bits: ~5e-4 per element, a little amplified
  // Decoding through the fp16 cache stays as close to prefill: only keys/values that sit on an
  // fp16 rounding boundary may round differently (their fp32 values differ at 1e-7).
  const MatrixRM d16 = decode_one_by_one(f16, tokens);
  EXPECT_LT(max_row_rel_err(d16, b.cast<double>()), 5e-3);
  EXPECT_GT(max_row_rel_err(d16, decode_one_by_one(f32, tokens).cast<double>()), 0.0);
}

TEST(LlamaForward, LogitsFromSkipsLeadingRows) {
  const LlamaWeights w = make_tiny_llama({}, 16);
  const auto tokens = random_tokens(30, w.config.vocab_size, 11);
  LlamaForward fwd(w);
  const MatrixRM all = prefill(fwd, tokens);
  MatrixRM tail;
  fwd.reset();
  fwd.forward(tokens, &tail, 20);
  ASSERT_EQ(tail.rows(), 10);
  EXPECT_LT(max_row_rel_err(tail, all.bottomRows(10).cast<double>()), kFp32Tol);
  fwd.reset();
  fwd.forward(tokens, nullptr);  // no LM head
  EXPECT_EQ(fwd.position(), 30);
}

// Attention scores depend on positions only through their differences, so shifting every
// position of a chunk by the same offset leaves the block output unchanged.
TEST(DenseKvAttention, OutputInvariantToPositionShift) {
  const LlamaWeights w = make_tiny_llama({}, 17);
  const int n = 25, d = w.config.d_model;
  MatrixRM x = MatrixRM::Random(n, d), out0(n, d), out1(n, d);
  std::vector<int64_t> p0(n), p1(n);
  for (int i = 0; i < n; ++i) {
    p0[i] = i;
    p1[i] = i + 1000;
  }
  DenseKvAttention a(w), b(w);
  a.forward(1, x, p0, out0);
  b.forward(1, x, p1, out1);
  // Only rounding differs (rotations by different angles): fp32 level, with margin.
  EXPECT_LT((out0 - out1).cwiseAbs().maxCoeff(), kFp32Tol * out0.cwiseAbs().maxCoeff());
  EXPECT_EQ(a.cached_tokens(1), n);
  EXPECT_EQ(a.cached_tokens(0), 0);
  a.reset();
  EXPECT_EQ(a.cached_tokens(1), 0);
}

TEST(DenseKvAttention, RejectsBadArguments) {
  const LlamaWeights w = make_tiny_llama({}, 18);
  DenseKvAttention a(w);
  MatrixRM x(3, w.config.d_model), out(3, w.config.d_model);
  x.setZero();
  EXPECT_THROW(a.forward(5, x, {0, 1, 2}, out), Error);
  EXPECT_THROW(a.forward(0, x, {0, 1}, out), Error);
  MatrixRM wrong(3, 7);
  EXPECT_THROW(a.forward(0, wrong, {0, 1, 2}, out), Error);
  EXPECT_EQ(parse_kv_dtype("f16"), KvDtype::kF16);
  EXPECT_THROW(parse_kv_dtype("bf16"), Error);
}

// A backend that delegates to the dense one and records what it was asked: proves the forward
// pass routes every layer through the pluggable interface and resets it.
class RecordingBackend : public AttentionBackend {
 public:
  explicit RecordingBackend(const LlamaWeights& w) : inner_(w) {}
  void reset() override {
    ++resets;
    inner_.reset();
  }
  int64_t cached_tokens(int layer) const override { return inner_.cached_tokens(layer); }
  void forward(int layer, const Eigen::Ref<const MatrixRM>& x,
               const std::vector<int64_t>& positions, Eigen::Ref<MatrixRM> out) override {
    layers.push_back(layer);
    first_positions.push_back(positions.front());
    inner_.forward(layer, x, positions, out);
  }
  int resets = 0;
  std::vector<int> layers;
  std::vector<int64_t> first_positions;

 private:
  DenseKvAttention inner_;
};

TEST(LlamaForward, PluggableBackendSeesEveryLayerInOrder) {
  const LlamaWeights w = make_tiny_llama({}, 19);
  const auto tokens = random_tokens(12, w.config.vocab_size, 12);
  auto backend = std::make_unique<RecordingBackend>(w);
  RecordingBackend* rec = backend.get();
  LlamaForward custom(w, std::move(backend)), plain(w);
  MatrixRM a, b;
  custom.forward({tokens.begin(), tokens.begin() + 8}, nullptr);
  custom.forward({tokens.begin() + 8, tokens.end()}, &a);
  plain.forward(tokens, &b);
  EXPECT_EQ(rec->layers, (std::vector<int>{0, 1, 0, 1}));
  EXPECT_EQ(rec->first_positions, (std::vector<int64_t>{0, 0, 8, 8}));
  EXPECT_LT(max_row_rel_err(a, b.bottomRows(4).cast<double>()), kFp32Tol);
  custom.reset();
  EXPECT_EQ(rec->resets, 1);
  EXPECT_EQ(custom.position(), 0);
}

TEST(LlamaForward, ObserverReceivesNormedKvInputOfEveryLayer) {
  const LlamaWeights w = make_tiny_llama({}, 20);
  const auto tokens = random_tokens(9, w.config.vocab_size, 13);
  LlamaForward fwd(w);
  std::vector<int> seen;
  MatrixRM layer0;
  fwd.set_layer_input_observer([&](int layer, const Eigen::Ref<const MatrixRM>& x) {
    seen.push_back(layer);
    EXPECT_EQ(x.rows(), 9);
    EXPECT_EQ(x.cols(), w.config.d_model);
    if (layer == 0) layer0 = x;
  });
  fwd.forward(tokens, nullptr);
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  // Layer 0's k/v_proj input is RMSNorm(embedding) with the layer's attn_norm weight.
  for (int i = 0; i < 9; ++i) {
    const Eigen::VectorXd e = w.tok_embeddings.row(tokens[i]).transpose().cast<double>();
    const Eigen::VectorXd expect = (e / std::sqrt(e.squaredNorm() / e.size() + 1e-5))
                                       .cwiseProduct(w.layers[0].attn_norm.cast<double>());
    EXPECT_LT((layer0.row(i).transpose().cast<double>() - expect).cwiseAbs().maxCoeff(), 1e-5);
  }
  fwd.set_layer_input_observer(nullptr);
  fwd.forward({tokens[0]}, nullptr);
  EXPECT_EQ(seen.size(), 2u);
}

TEST(LlamaForward, RejectsBadInput) {
  TinyLlamaSpec spec;
  spec.context_length = 16;
  const LlamaWeights w = make_tiny_llama(spec, 21);
  LlamaForward fwd(w);
  MatrixRM logits;
  const auto kArg = StatusCode::kInvalidArgument;
  EXPECT_LKV_ERROR(fwd.forward({}, &logits), kArg, "at least one token");
  EXPECT_LKV_ERROR(fwd.forward({spec.vocab_size}, &logits), kArg, "token id 61 outside");
  EXPECT_LKV_ERROR(fwd.forward({-1}, &logits), kArg, "token id -1 outside");
  EXPECT_LKV_ERROR(fwd.forward({1, 2}, &logits, 2), kArg, "logits_from 2 outside");
  EXPECT_LKV_ERROR(fwd.forward(std::vector<int32_t>(17, 1), &logits), kArg,
                   "exceeds the model's context length 16");
  EXPECT_EQ(fwd.position(), 0);  // rejected chunks leave the sequence untouched
  fwd.forward(std::vector<int32_t>(16, 1), &logits);
  EXPECT_LKV_ERROR(fwd.forward({1}, &logits), kArg, "sequence of 17 tokens exceeds");
  LlamaWeights broken = w;
  broken.layers.pop_back();
  EXPECT_LKV_ERROR(LlamaForward{broken}, kArg, "model has 1 layers, config says 2");
  broken = w;
  broken.config.num_kv_heads = 3;  // 4 query heads are not a multiple
  EXPECT_LKV_ERROR(LlamaForward{broken}, kArg, "num_kv_heads");
  EXPECT_LKV_ERROR(LlamaForward(w, nullptr), kArg, "needs an attention backend");
}

}  // namespace
}  // namespace latentkv
