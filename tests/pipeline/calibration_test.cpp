// The calibration pass (Gram statistics through the forward pass's observer), its window settings
// and cache key, and the sequential statistics of ReCalKV's value calibration.
#include "latentkv/pipeline/calibration.h"

#include <gtest/gtest.h>

#include "latentkv/pipeline/sequential_stats.h"
#include "latentkv/reference/latent_store.h"
#include "pipeline/pipeline_test_util.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

using testing::TinyPipeline;

TEST(Calibration, WindowsAndKeys) {
  CalibrationWindows w;
  w.num_windows = 3;
  w.window_len = 8;
  EXPECT_EQ(w.describe(), "3x8");
  w.bos = true;
  EXPECT_EQ(w.describe(), "3x8+bos");
  EXPECT_NE(calibration_data_key("abc", w).find("abc"), std::string::npos);
  CalibrationWindows other = w;
  other.window_len = 9;
  EXPECT_NE(calibration_data_key("abc", w), calibration_data_key("abc", other));

  const std::vector<TokenId> text = testing::random_tokens(40, 61, 3);
  const auto windows = tokenize_calibration_windows(text, w, 60);
  ASSERT_EQ(windows.size(), 3u);
  for (const auto& win : windows) {
    ASSERT_EQ(win.size(), 8u);
    EXPECT_EQ(win[0], 60);  // BOS first
  }
  EXPECT_LKV_ERROR(tokenize_calibration_windows(text, w, -1), StatusCode::kInvalidArgument,
                   "vocabulary has none");
  w.num_windows = 0;
  EXPECT_LKV_ERROR(w.validate(), StatusCode::kInvalidArgument, "at least one window");
  w.num_windows = 10;
  EXPECT_LKV_ERROR(tokenize_calibration_windows(text, w, 60), StatusCode::kInvalidArgument,
                   "too few");
}

TEST(Calibration, GramIsTheSumOverWindowsOfTheObservedInputs) {
  const TinyPipeline t;
  // Statistics of the union of windows = sum of the statistics of each window.
  CalibStats sum = collect_calib_stats(t.weights, {t.windows[0]});
  for (size_t i = 1; i < t.windows.size(); ++i)
    sum += collect_calib_stats(t.weights, {t.windows[i]});
  for (int l = 0; l < t.stats.n_layers(); ++l) {
    EXPECT_EQ(t.stats.layers[l].tokens(), 160);
    EXPECT_LT((t.stats.layers[l].gram() - sum.layers[l].gram()).norm(),
              1e-9 * sum.layers[l].gram().norm());
  }
  std::vector<int64_t> progress;
  collect_calib_stats(t.weights, t.windows, [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 4);
    progress.push_back(done);
  });
  EXPECT_EQ(progress, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_LKV_ERROR(collect_calib_stats(t.weights, {}), StatusCode::kInvalidArgument,
                   "at least one window");
}

TEST(SequentialStats, ExactFullRankModelSeesTheOriginalInputs) {
  const TinyPipeline t;
  // Full rank and fp32 latents: the compressed model is the original one, so X̃ = X and the three
  // statistics coincide with Γ.
  const CompressedModel m = compress_model(t.inputs(), TinyPipeline::options("latentkv", 1.0));
  std::vector<LatentLayerFactors> factors;
  for (const CompressedLayer& l : m.layers) factors.push_back(l.factors);
  LatentCacheConfig exact;
  exact.key.bits = exact.value.bits = kExactLatentBits;
  const auto targets = collect_sequential_targets(t.weights, factors, exact, t.windows);
  ASSERT_EQ(targets.size(), 2u);
  for (int l = 0; l < 2; ++l) {
    const Eigen::MatrixXd g = t.stats.layers[l].gram();
    const double tol = 1e-4 * g.norm();
    EXPECT_LT((targets[l].gram_target - g).norm(), tol);
    EXPECT_LT((targets[l].gram_input - g).norm(), tol);
    EXPECT_LT((targets[l].cross - g).norm(), tol);
  }
  // A compressed model changes the inputs of every layer after the first one.
  const CompressedModel half = compress_model(t.inputs(), TinyPipeline::options("latentkv", 0.3));
  factors.clear();
  for (const CompressedLayer& l : half.layers) factors.push_back(l.factors);
  const auto seq = collect_sequential_targets(t.weights, factors, exact, t.windows);
  EXPECT_LT((seq[0].gram_input - t.stats.layers[0].gram()).norm(),
            1e-4 * t.stats.layers[0].gram().norm());
  EXPECT_GT((seq[1].gram_input - t.stats.layers[1].gram()).norm(),
            1e-3 * t.stats.layers[1].gram().norm());
  EXPECT_LKV_ERROR(collect_sequential_targets(t.weights, factors, exact, {}),
                   StatusCode::kInvalidArgument, "at least one window");
}

}  // namespace
}  // namespace latentkv
