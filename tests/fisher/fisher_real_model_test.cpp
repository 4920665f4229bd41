// The training-style forward/backward on the default model (SmolLM2-135M): same logits as the
// inference path, a sane loss on real text, and finite, positive Fisher scores for all 60
// projections. Skips when the model or WikiText-2 is missing (see test_support.h).
#include <gtest/gtest.h>

#include <memory>

#include "latentkv/eval/perplexity.h"
#include "latentkv/eval/text_file.h"
#include "latentkv/fisher/fisher_calibration.h"
#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/fisher/llama_backward.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/model/llama_loader.h"
#include "latentkv/tokenizer/tokenizer.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

class RealModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::file_exists(testing::default_model_path())) return;
    GgufFile file(testing::default_model_path());
    weights_ = std::make_unique<LlamaWeights>(load_llama(file));
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(file));
  }
  static void TearDownTestSuite() {
    weights_.reset();
    tokenizer_.reset();
  }
  static std::unique_ptr<LlamaWeights> weights_;
  static std::unique_ptr<Tokenizer> tokenizer_;
};
std::unique_ptr<LlamaWeights> RealModel::weights_;
std::unique_ptr<Tokenizer> RealModel::tokenizer_;

TEST_F(RealModel, WindowLogitsMatchInferenceForward) {
  LKV_REQUIRE_MODEL();
  const std::vector<TokenId> tokens = tokenizer_->encode(
      "The quick brown fox jumps over the lazy dog. It was not amused, and it "
      "said so at some length to everyone who would listen.");
  const MatrixRM window = llama_window_logits<float>(*weights_, tokens);
  LlamaForward fwd(*weights_);
  MatrixRM inference;
  fwd.forward(tokens, &inference);
  ASSERT_EQ(window.rows(), inference.rows());
  // fp32 through 30 layers with different summation orders: measured at most 6e-6 of the row's
  // largest logit (~20); the bound leaves a 15× margin, a wrong operation would differ by O(1).
  for (int t = 0; t < window.rows(); ++t) {
    const double scale = inference.row(t).cwiseAbs().maxCoeff();
    EXPECT_LT((window.row(t) - inference.row(t)).cwiseAbs().maxCoeff(), 1e-4 * scale) << t;
  }
}

TEST_F(RealModel, FisherScoresOfAWikiTextWindow) {
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  const std::vector<TokenId> text =
      perplexity_tokens(*tokenizer_, read_text_file(testing::wikitext_dir() + "/valid.txt"), false);
  const auto windows = calibration_windows(text, 96, 1, -1);
  const KvProjectionGradients<float> g =
      llama_kv_projection_gradients<float>(*weights_, windows[0]);
  // A trained 135M model on English text (measured 3.07 nats on this window): far below the
  // uniform ln(49152) = 10.8 nats.
  EXPECT_GT(g.loss, 1.0);
  EXPECT_LT(g.loss, 6.0);
  FisherAccumulator acc(weights_->config);
  acc.add(g);
  const FisherScores s = acc.scores(FisherReduction::kMeanSquare);
  s.check_for(weights_->config, "");
  ASSERT_EQ(s.unit_scores().size(), 60u);
  for (double f : s.unit_scores()) {
    EXPECT_TRUE(std::isfinite(f));
    EXPECT_GT(f, 0.0);
  }
}

}  // namespace
}  // namespace latentkv
