#include "latentkv/fisher/fisher_scores.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "latentkv/fisher/fisher_calibration.h"
#include "model/tiny_llama.h"
#include "support/expect_error.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

// 2 layers, 2 KV heads of width 2, d_model 3: W_k/W_v are [4, 3].
LlamaConfig small_config() {
  LlamaConfig c;
  c.n_layers = 2;
  c.d_model = 3;
  c.num_qo_heads = 2;
  c.num_kv_heads = 2;
  c.head_dim = 2;
  return c;
}

// Gradients whose element (i, j) of unit u in sample s is (s + 1)·(u + 1)·(i - j + 0.5).
KvProjectionGradients<float> synthetic_gradients(int sample) {
  KvProjectionGradients<float> g;
  for (int l = 0; l < 2; ++l) {
    for (int kind = 0; kind < 2; ++kind) {
      MatrixRM m(4, 3);
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 3; ++j) m(i, j) = (sample + 1.0f) * (2 * l + kind + 1) * (i - j + 0.5f);
      (kind == 0 ? g.wk : g.wv).push_back(m);
    }
  }
  return g;
}

TEST(FisherAccumulator, ReducesPerElementSquaresAsDocumented) {
  FisherAccumulator acc(small_config());
  acc.add(synthetic_gradients(0));
  acc.add(synthetic_gradients(1));
  EXPECT_EQ(acc.num_samples(), 2);
  const FisherScores ms = acc.scores(FisherReduction::kMeanSquare, "abc");
  const FisherScores rms = acc.scores(FisherReduction::kRms);
  EXPECT_EQ(ms.model_id, "abc");
  EXPECT_EQ(ms.num_samples, 2);
  ASSERT_EQ(ms.n_layers(), 2);
  ASSERT_TRUE(ms.has_head_scores());
  for (int u = 0; u < 4; ++u) {
    // Per element: mean over the 2 samples of g² = (1 + 4)/2 · (u+1)² · (i - j + 0.5)².
    double ms_heads[2] = {0, 0}, rms_heads[2] = {0, 0};
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 3; ++j) {
        const double x = (u + 1.0) * (i - j + 0.5);
        const double mean_sq = 2.5 * x * x;
        ms_heads[i / 2] += mean_sq / 6;
        rms_heads[i / 2] += std::sqrt(mean_sq) / 6;
      }
    }
    const int l = u / 2;
    const bool v = u % 2 == 1;
    for (int h = 0; h < 2; ++h) {
      EXPECT_NEAR((v ? ms.value_heads : ms.key_heads)[2 * l + h], ms_heads[h], 1e-12 * ms_heads[h]);
      EXPECT_NEAR((v ? rms.value_heads : rms.key_heads)[2 * l + h], rms_heads[h],
                  1e-12 * rms_heads[h]);
    }
    const double ms_proj = (ms_heads[0] + ms_heads[1]) / 2;
    EXPECT_NEAR((v ? ms.value : ms.key)[l], ms_proj, 1e-12 * ms_proj);
    EXPECT_NEAR(ms.group_score(l, v, {0, 1}), ms_proj, 1e-12 * ms_proj);
    EXPECT_DOUBLE_EQ(ms.group_score(l, v, {1}), (v ? ms.value_heads : ms.key_heads)[2 * l + 1]);
  }
  EXPECT_EQ(ms.unit_scores(),
            (std::vector<double>{ms.key[0], ms.value[0], ms.key[1], ms.value[1]}));
}

TEST(FisherAccumulator, RejectsBadGradients) {
  FisherAccumulator acc(small_config());
  EXPECT_LKV_ERROR(acc.scores(FisherReduction::kMeanSquare), StatusCode::kInvalidArgument,
                   "no calibration window");
  KvProjectionGradients<float> g = synthetic_gradients(0);
  g.wv.pop_back();
  EXPECT_LKV_ERROR(acc.add(g), StatusCode::kInvalidArgument, "gradients cover 2/1 layers");
  g = synthetic_gradients(0);
  g.wk[1] = MatrixRM::Zero(4, 2);
  EXPECT_LKV_ERROR(acc.add(g), StatusCode::kInvalidArgument,
                   "gradient of layer 1 k_proj is [4, 2], expected [4, 3]");
  g = synthetic_gradients(0);
  g.wv[0](3, 2) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_LKV_ERROR(acc.add(g), StatusCode::kNumericalError, "layer 0 v_proj is not finite");
  EXPECT_EQ(acc.num_samples(), 0);  // nothing was added by the failed calls
}

FisherScores example_scores(bool heads) {
  FisherScores s;
  s.model_id = "0123abcd";
  s.reduction = FisherReduction::kRms;
  s.num_samples = 8;
  s.num_kv_heads = 3;
  s.key = {1.0 / 3, 2.5e-7, 0};
  s.value = {1e-300, 7.25, 3.0000000000000004};
  if (heads) {
    for (int i = 0; i < 9; ++i) {
      s.key_heads.push_back(0.1 * i + 1.0 / 7);
      s.value_heads.push_back(1e-9 * (i + 1));
    }
  }
  return s;
}

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

TEST(FisherFile, RoundTripsExactly) {
  for (bool heads : {false, true}) {
    const FisherScores s = example_scores(heads);
    const std::string path = testing::temp_dir() + "/fisher_roundtrip.txt";
    save_fisher_scores(s, path);
    const FisherScores r = load_fisher_scores(path);
    EXPECT_EQ(r.model_id, s.model_id);
    EXPECT_EQ(r.reduction, s.reduction);
    EXPECT_EQ(r.num_samples, s.num_samples);
    EXPECT_EQ(r.num_kv_heads, s.num_kv_heads);
    EXPECT_EQ(r.key, s.key);
    EXPECT_EQ(r.value, s.value);
    EXPECT_EQ(r.key_heads, s.key_heads);
    EXPECT_EQ(r.value_heads, s.value_heads);
  }
}

TEST(FisherFile, ReadsAHandWrittenFile) {
  const std::string path = write_file("fisher_hand.txt",
                                      "# computed elsewhere\n"
                                      "latentkv-fisher 1\n"
                                      "model -\n"
                                      "reduction mean_square\n"
                                      "samples 0\n"
                                      "layers 2 kv_heads 4\n"
                                      "\n"
                                      "1 v 4e-6\n"
                                      "0 k 1e-6\n"
                                      "1 k 3e-6\r\n"
                                      "0 v 2e-6\n");
  const FisherScores s = load_fisher_scores(path);
  EXPECT_EQ(s.model_id, "");
  EXPECT_EQ(s.reduction, FisherReduction::kMeanSquare);
  EXPECT_EQ(s.unit_scores(), (std::vector<double>{1e-6, 2e-6, 3e-6, 4e-6}));
  EXPECT_FALSE(s.has_head_scores());
  EXPECT_LKV_ERROR(s.group_score(0, false, {0}), StatusCode::kInvalidArgument,
                   "no per-head scores");
}

TEST(FisherFile, RejectsMalformedFiles) {
  const std::string header =
      "latentkv-fisher 1\nmodel m\nreduction rms\nsamples 4\nlayers 2 kv_heads 2\n";
  const std::string body = "0 k 1\n0 v 2\n1 k 3\n1 v 4\n";
  struct Case {
    std::string content, fragment;
  };
  const std::vector<Case> cases = {
      {"", "empty file"},
      {"hello 1\n", "not a Fisher scores file"},
      {"latentkv-fisher x\n", "version 'x' is not an integer"},
      {"latentkv-fisher 1\nmodel m\nreduction rms\nsamples 4\n" + body, "before the 'layers'"},
      {"latentkv-fisher 1\nmodel m\nsamples 4\nlayers 2 kv_heads 2\n", "must come before"},
      {"latentkv-fisher 1\nmodel m\nreduction fancy\n", "unknown reduction 'fancy'"},
      {"latentkv-fisher 1\nmodel m\nmodel n\n", "duplicate 'model'"},
      {"latentkv-fisher 1\nmodel m\nreduction rms\nsamples -1\n", "samples must be >= 0"},
      {"latentkv-fisher 1\nmodel m\nreduction rms\nsamples 1\nlayers 0 kv_heads 2\n",
       "n_layers 0 out of range"},
      {"latentkv-fisher 1\nmodel m\nreduction rms\nsamples 1\nlayers 2 heads 2\n",
       "expected 'layers <n_layers> kv_heads <num_kv_heads>'"},
      {header + "0 k 1\n0 v 2\n1 k 3\n", "line 8: no v line for layer 1"},
      {header + body + "1 v 5\n", "duplicate line for layer 1 v"},
      {header + "2 k 1\n", "layer 2 outside [0, 2)"},
      {header + "0 q 1\n", "expected '<layer> <k|v> <score>"},
      {header + "0 k abc\n", "score 'abc' is not a number"},
      {header + "0 k nan\n", "score nan is not a finite non-negative number"},
      {header + "0 k inf\n", "not a finite non-negative number"},
      {header + "0 k -1e-6\n", "score -1e-6 is not a finite non-negative number"},
      {header + "0 k 1e999\n", "is not a number"},
      {header + "0 k 1 0.5\n", "1 per-head scores, expected 0 or 2"},
      {header + "0 k 1 0.5 1.5\n0 v 2\n", "on every line or on none"},
      {header + "x k 1\n", "layer 'x' is not an integer"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].content);
    const std::string path =
        write_file("fisher_bad_" + std::to_string(i) + ".txt", cases[i].content);
    EXPECT_LKV_ERROR(load_fisher_scores(path), StatusCode::kCorruptData, cases[i].fragment);
  }
  EXPECT_LKV_ERROR(load_fisher_scores(write_file("fisher_v2.txt", "latentkv-fisher 2\n")),
                   StatusCode::kUnsupported, "format version 2");
  EXPECT_LKV_ERROR(load_fisher_scores(testing::temp_dir() + "/no_such_fisher.txt"),
                   StatusCode::kNotFound, "cannot be opened");
}

TEST(FisherScores, CheckForModelAndValidate) {
  LlamaConfig c = small_config();
  c.num_kv_heads = 3;
  c.n_layers = 3;
  FisherScores s = example_scores(true);
  s.check_for(c, "0123abcd");
  s.check_for(c, "");  // unknown expected id: not checked
  EXPECT_LKV_ERROR(s.check_for(c, "ffff"), StatusCode::kInvalidArgument,
                   "computed for model 0123abcd, not ffff");
  c.n_layers = 30;
  EXPECT_LKV_ERROR(s.check_for(c, ""), StatusCode::kInvalidArgument,
                   "are for 3 layers, the model has 30");
  c.n_layers = 3;
  c.num_kv_heads = 4;
  EXPECT_LKV_ERROR(s.check_for(c, ""), StatusCode::kInvalidArgument, "are for 3 KV heads");
  s.value[1] = -1;
  EXPECT_LKV_ERROR(s.validate(), StatusCode::kInvalidArgument, "Fisher score v[1] = -1");
  EXPECT_LKV_ERROR(save_fisher_scores(s, testing::temp_dir() + "/never.txt"),
                   StatusCode::kInvalidArgument, "v[1]");
  s = example_scores(true);
  s.key_heads.pop_back();
  EXPECT_LKV_ERROR(s.validate(), StatusCode::kInvalidArgument, "per-head vectors");
  s = example_scores(false);
  s.model_id = "two words";
  EXPECT_LKV_ERROR(save_fisher_scores(s, testing::temp_dir() + "/never.txt"),
                   StatusCode::kInvalidArgument, "white space");
  EXPECT_LKV_ERROR(example_scores(true).group_score(0, true, {3}), StatusCode::kInvalidArgument,
                   "KV head 3 outside [0, 3)");
  EXPECT_LKV_ERROR(parse_fisher_reduction("mean"), StatusCode::kInvalidArgument,
                   "unknown Fisher reduction 'mean'");
}

TEST(CalibrationWindows, SpreadsDisjointWindowsWithBos) {
  std::vector<TokenId> text(100);
  for (int i = 0; i < 100; ++i) text[i] = 1000 + i;
  const auto w = calibration_windows(text, 10, 4, 7);
  ASSERT_EQ(w.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(w[i].size(), 10u);
    EXPECT_EQ(w[i][0], 7);
    EXPECT_EQ(w[i][1], 1000 + 25 * i);  // stride ⌊100/4⌋
    EXPECT_EQ(w[i][9], 1000 + 25 * i + 8);
  }
  const auto no_bos = calibration_windows(text, 50, 2, -1);
  EXPECT_EQ(no_bos[1].front(), 1050);
  EXPECT_EQ(no_bos[1].back(), 1099);
  EXPECT_LKV_ERROR(calibration_windows(text, 51, 2, -1), StatusCode::kInvalidArgument,
                   "too few for 2 windows of 51 tokens (at most 1 windows)");
  EXPECT_LKV_ERROR(calibration_windows(text, 1, 2, -1), StatusCode::kInvalidArgument,
                   "length must be >= 2");
  EXPECT_LKV_ERROR(calibration_windows(text, 10, 0, -1), StatusCode::kInvalidArgument,
                   "windows must be >= 1");
}

TEST(AccumulateFisher, SumsWindowGradientsAndReportsProgress) {
  testing::TinyLlamaSpec spec;
  const LlamaWeights w = testing::make_tiny_llama(spec, 5);
  const std::vector<std::vector<TokenId>> windows = {testing::random_tokens(9, spec.vocab_size, 1),
                                                     testing::random_tokens(9, spec.vocab_size, 2)};
  std::vector<std::pair<int64_t, int64_t>> calls;
  const FisherAccumulator acc = accumulate_fisher(
      w, windows, [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {2, 2}}));
  FisherAccumulator manual(w.config);
  for (const auto& win : windows) manual.add(llama_kv_projection_gradients<float>(w, win));
  const FisherScores a = acc.scores(FisherReduction::kMeanSquare);
  const FisherScores b = manual.scores(FisherReduction::kMeanSquare);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.value, b.value);
  for (double s : a.unit_scores()) EXPECT_GT(s, 0);
  EXPECT_LKV_ERROR(accumulate_fisher(w, {}), StatusCode::kInvalidArgument,
                   "at least one calibration window");
}

}  // namespace
}  // namespace latentkv
