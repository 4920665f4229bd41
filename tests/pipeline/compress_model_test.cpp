// The compression driver on a tiny random model: budgets are honoured in real cache bytes, a full
// budget reproduces the dense model, every preset and option path produces a model the latent
// cache accepts, and bad inputs give clear errors.
#include "latentkv/pipeline/compress_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "latentkv/model/llama_forward.h"
#include "pipeline/pipeline_test_util.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

using testing::TinyPipeline;

const TinyPipeline& tiny() {
  static const TinyPipeline* t = new TinyPipeline;
  return *t;
}

MatrixRM logits_with(const LlamaWeights& w, const CompressedModel* m,
                     const std::vector<TokenId>& tokens) {
  std::unique_ptr<LlamaForward> model =
      m ? std::make_unique<LlamaForward>(w, make_latent_attention(w, *m))
        : std::make_unique<LlamaForward>(w, KvDtype::kF32);
  MatrixRM logits;
  model->forward(tokens, &logits);
  return logits;
}

double mean_error(const CompressedModel& m) {
  double s = 0;
  for (const CompressedLayer& l : m.layers) s += l.key_error + l.value_error;
  return s / (2.0 * m.layers.size());
}

TEST(CompressModel, BytesStayWithinBudgetAndMatchTheCache) {
  const TinyPipeline& t = tiny();
  const int64_t fp16 = 4 * 2 * 2 * 16;  // n_layers·num_kv_heads·head_dim·4
  for (const std::string& preset : preset_names()) {
    for (const int bits : {16, 4, 2}) {
      SCOPED_TRACE(preset + " bits " + std::to_string(bits));
      CompressReport report;
      const CompressedModel m =
          compress_model(t.inputs(), TinyPipeline::options(preset, 0.4, bits), {}, &report);
      EXPECT_EQ(m.fp16_kv_bytes_per_token(), fp16);
      EXPECT_LE(m.kv_bytes_per_token(), static_cast<int64_t>(0.4 * fp16));
      EXPECT_EQ(m.kv_bytes_per_token(), report.allocation.bytes_per_token);
      EXPECT_EQ(make_latent_attention(t.weights, m)->bytes_per_token(), m.kv_bytes_per_token());
      EXPECT_EQ(m.recipe_value("preset"), preset);
      for (const CompressedLayer& l : m.layers)
        EXPECT_EQ(l.factors.key.rotation != 0, bits < 16);  // Hadamard folded only when quantized
    }
  }
}

TEST(CompressModel, AbsoluteBytesAndRankFractionBudgets) {
  const TinyPipeline& t = tiny();
  CompressOptions o = TinyPipeline::options("latentkv", 0.5, 4);
  o.budget = {BudgetSpec::Kind::kBytesPerToken, 100};
  EXPECT_LE(compress_model(t.inputs(), o).kv_bytes_per_token(), 100);
  // Palu's convention: the ranks keep half of the full rank whatever the bits.
  o.budget = {BudgetSpec::Kind::kRankFraction, 0.5};
  CompressReport r4, r16;
  compress_model(t.inputs(), o, {}, &r4);
  o.quant.bits = 16;
  compress_model(t.inputs(), o, {}, &r16);
  EXPECT_EQ(r4.allocation.ranks, r16.allocation.ranks);
  EXPECT_LE(r16.allocation.total_rank(), 2 * 2 * 2 * 16 / 2);
}

TEST(CompressModel, FullBudgetReproducesTheDenseModel) {
  const TinyPipeline& t = tiny();
  const CompressedModel m = compress_model(t.inputs(), TinyPipeline::options("latentkv", 1.0));
  for (const CompressedLayer& l : m.layers) {
    EXPECT_LT(l.key_error, 1e-5);
    EXPECT_LT(l.value_error, 1e-5);
  }
  const std::vector<TokenId> tokens = testing::random_tokens(24, 61, 5);
  const MatrixRM dense = logits_with(t.weights, nullptr, tokens);
  const MatrixRM latent = logits_with(t.weights, &m, tokens);
  // Latents are rounded to fp16 in the residual window and the cache: fp16-level differences.
  EXPECT_LT((dense - latent).cwiseAbs().maxCoeff(), 2e-2 * dense.cwiseAbs().maxCoeff());
}

TEST(CompressModel, ErrorShrinksAsTheBudgetGrows) {
  const TinyPipeline& t = tiny();
  const double small = mean_error(compress_model(t.inputs(), TinyPipeline::options("palu", 0.3)));
  const double large = mean_error(compress_model(t.inputs(), TinyPipeline::options("palu", 0.7)));
  EXPECT_GT(small, large);
}

TEST(CompressModel, FoldingDoesNotChangeTheOutput) {
  const TinyPipeline& t = tiny();
  CompressOptions o = TinyPipeline::options("latentkv", 0.5);
  o.fold = FoldPolicy::kAlways;
  CompressReport folded_report;
  const CompressedModel folded = compress_model(t.inputs(), o, {}, &folded_report);
  o.fold = FoldPolicy::kNever;
  const CompressedModel unfolded = compress_model(t.inputs(), o);
  EXPECT_EQ(folded_report.folded_layers, 2);
  const std::vector<TokenId> tokens = testing::random_tokens(16, 61, 9);
  const MatrixRM a = logits_with(t.weights, &folded, tokens);
  const MatrixRM b = logits_with(t.weights, &unfolded, tokens);
  EXPECT_LT((a - b).cwiseAbs().maxCoeff(), 1e-3 * a.cwiseAbs().maxCoeff());
}

TEST(CompressModel, SequentialValueCalibrationChangesOnlyValues) {
  const TinyPipeline& t = tiny();
  CompressOptions o = TinyPipeline::options("recalkv", 0.4);
  CompressReport report;
  const CompressedModel als = compress_model(t.inputs(), o, {}, &report);
  o.value_method = ValueMethod::kSvd;
  const CompressedModel svd = compress_model(t.inputs(), o);
  EXPECT_GT(report.sequential_seconds, 0.0);
  for (size_t l = 0; l < als.layers.size(); ++l) {
    EXPECT_EQ(als.layers[l].factors.key.a, svd.layers[l].factors.key.a);
    EXPECT_EQ(als.layers[l].factors.value.ranks, svd.layers[l].factors.value.ranks);
  }
  // Layer 0 sees the original inputs (nothing before it is compressed): ALS there cannot beat
  // the whitened SVD, which is already optimal for Γ; the next layer's inputs differ.
  EXPECT_NEAR(als.layers[0].value_error, svd.layers[0].value_error, 1e-6);
  EXPECT_NE(als.layers[1].factors.value.a, svd.layers[1].factors.value.a);
  o.value_method = ValueMethod::kSequentialAls;
  CompressInputs no_windows = t.inputs();
  no_windows.sequential_windows.clear();
  EXPECT_LKV_ERROR(compress_model(no_windows, o), StatusCode::kInvalidArgument,
                   "needs calibration windows");
}

TEST(CompressModel, GroupsOfHeadsWithSimilarityGroupingForKeys) {
  const TinyPipeline t(4);  // 4 KV heads in groups of 2: the key grouping is a real choice
  for (const GroupingMethod g :
       {GroupingMethod::kConsecutive, GroupingMethod::kSearch, GroupingMethod::kBestError}) {
    CompressOptions o = TinyPipeline::options("recalkv", 0.5, 4);
    o.group_size = 2;
    o.key_grouping = g;
    const CompressedModel m = compress_model(t.inputs(), o);
    for (const CompressedLayer& l : m.layers) {
      EXPECT_EQ(l.factors.key.num_groups(), 2);
      EXPECT_EQ(l.factors.value.group_heads, (std::vector<int>{0, 1, 2, 3}));  // values: in order
      if (g == GroupingMethod::kConsecutive) {
        EXPECT_EQ(l.factors.key.group_heads, (std::vector<int>{0, 1, 2, 3}));
      }
    }
    EXPECT_LE(m.kv_bytes_per_token(), m.fp16_kv_bytes_per_token() / 2);
    EXPECT_EQ(make_latent_attention(t.weights, m)->bytes_per_token(), m.kv_bytes_per_token());
  }
}

TEST(CompressModel, ProgressCoversSpectraAndFactors) {
  const TinyPipeline& t = tiny();
  std::vector<int64_t> seen;
  CompressProgress p;
  p.decompose = [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 4);
    seen.push_back(done);
  };
  compress_model(t.inputs(), TinyPipeline::options("latentkv", 0.5), p);
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(CompressModel, BadInputs) {
  const TinyPipeline& t = tiny();
  CompressOptions o = TinyPipeline::options("palu", 0.5);
  CompressInputs in = t.inputs();
  in.fisher = nullptr;
  EXPECT_LKV_ERROR(compress_model(in, o), StatusCode::kInvalidArgument, "needs Fisher scores");
  o.group_size = 3;
  EXPECT_LKV_ERROR(compress_model(t.inputs(), o), StatusCode::kInvalidArgument,
                   "does not divide the model's 2 KV heads");
  o.group_size = 0;
  o.budget.value = 0.01;
  EXPECT_LKV_ERROR(compress_model(t.inputs(), o), StatusCode::kInvalidArgument, "budget");
  CalibStats few = t.stats;
  few.layers.pop_back();
  in = t.inputs();
  in.stats = &few;
  EXPECT_LKV_ERROR(compress_model(in, TinyPipeline::options("latentkv", 0.5)),
                   StatusCode::kInvalidArgument, "calibration statistics have 1 layers");
  FisherScores other = t.fisher;
  other.model_id = "another model";
  in = t.inputs();
  in.fisher = &other;
  EXPECT_LKV_ERROR(compress_model(in, TinyPipeline::options("palu", 0.5)),
                   StatusCode::kInvalidArgument, "another model");
}

}  // namespace
}  // namespace latentkv
