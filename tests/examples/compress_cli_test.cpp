// End-to-end runs of latentkv-compress and of latentkv-ppl / latentkv-generate with --compressed
// and --kv-cache kivi: exit codes, the single "error:" line of each bad input, cache reuse and the
// bytes-per-token figures of the --json lines. Real-model runs use few, short windows.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "examples/cli_run.h"
#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/pipeline/lkv_file.h"

namespace latentkv {
namespace {

using testing::run_cli;

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

void expect_error(const testing::CliResult& r, const std::string& needle, int code = 1) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  const auto lines = r.error_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

// The value of "key": in the last JSON line of stdout, as text.
std::string json_value(const std::string& out, const std::string& key) {
  const std::string last = out.substr(out.rfind("\n{") + 1);
  const size_t at = last.find("\"" + key + "\": ");
  if (at == std::string::npos) return "<missing " + key + ">";
  const size_t begin = at + key.size() + 4;
  return last.substr(begin, last.find_first_of(",}", begin) - begin);
}

std::string valid_txt() { return testing::wikitext_dir() + "/valid.txt"; }
std::string test_txt() { return testing::wikitext_dir() + "/test.txt"; }

// Small calibration: 8 windows of 80 tokens, Fisher from one window; statistics cached in
// <temp>/<cache>.
std::vector<std::string> compress_args(const std::string& out, std::vector<std::string> extra,
                                       const std::string& cache = "lkv-cache") {
  std::vector<std::string> a = {"--model",
                                testing::default_model_path(),
                                "--calib",
                                valid_txt(),
                                "--out",
                                out,
                                "--calib-windows",
                                "8",
                                "--calib-ctx",
                                "80",
                                "--fisher-windows",
                                "1",
                                "--cache-dir",
                                testing::temp_dir() + "/" + cache};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(CompressCli, HelpAndUsageErrors) {
  LKV_REQUIRE_CLI("compress");
  const auto help = run_cli("compress", {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* s : {"--budget", "--bits", "--group-size", "--preset", "--json", "presets:"})
    EXPECT_NE(help.out.find(s), std::string::npos) << s;
  const std::vector<std::string> base = {"--model", "m.gguf", "--calib", "c.txt", "--out", "o.lkv"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return run_cli("compress", a);
  };
  expect_error(run_cli("compress", {"--model", "m", "--calib", "c", "--budget", "0.5"}),
               "missing required option --out", 2);
  expect_error(with({}), "give exactly one of --budget, --budget-bytes, --rank-fraction", 2);
  expect_error(with({"--budget", "0.5", "--rank-fraction", "0.5"}), "exactly one", 2);
  expect_error(with({"--budget", "abc"}), "invalid value", 2);
  expect_error(with({"--budget", "1.5"}), "budget fraction must be in (0, 1]", 2);
  expect_error(with({"--budget", "0.5", "--bits", "5"}), "bits must be 2, 3, 4, 8 or 16", 2);
  expect_error(with({"--budget", "0.5", "--preset", "fast"}), "unknown preset 'fast'", 2);
  expect_error(with({"--budget", "0.5", "--allocator", "x"}), "unknown allocator 'x'", 2);
  expect_error(with({"--budget", "0.5", "--calib-windows", "0"}), "--calib-windows", 2);
}

TEST(CompressCli, RuntimeErrors) {
  LKV_REQUIRE_CLI("compress");
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  const std::string out = testing::temp_dir() + "/never.lkv";
  expect_error(run_cli("compress", {"--model", testing::temp_dir() + "/none.gguf", "--calib",
                                    valid_txt(), "--budget", "0.5", "--out", out}),
               "none.gguf");
  expect_error(run_cli("compress",
                       compress_args(out, {"--budget", "0.5", "--calib", write_file("e.txt", "")})),
               "is empty");
  expect_error(run_cli("compress", compress_args(out, {"--budget", "0.5", "--group-size", "2"})),
               "does not divide the model's 3 KV heads");
  expect_error(
      run_cli("compress", compress_args(out, {"--budget", "0.5", "--calib-windows", "100000"})),
      "too few for 100000 windows");
  expect_error(
      run_cli("compress", compress_args(out, {"--budget", "0.5", "--fisher",
                                              write_file("f.txt", "latentkv-fisher 9\n")})),
      "f.txt");
  EXPECT_FALSE(testing::file_exists(out));
}

// compress (twice: the second run reuses the cached statistics), then ppl and generate with the
// latent cache; also the errors of a corrupted file and of a file made from another model.
TEST(CompressCli, CompressThenEvaluateWithTheLatentCache) {
  LKV_REQUIRE_CLI("compress");
  LKV_REQUIRE_CLI("ppl");
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  const std::string lkv = testing::temp_dir() + "/e2e.lkv";
  const auto c = run_cli(
      "compress", compress_args(lkv, {"--budget", "0.25", "--bits", "4", "--json"}, "e2e-cache"));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  for (const char* s : {"calibration [", "fisher [", "decomposition [", "rank_k", "err_v"})
    EXPECT_NE((c.out + c.err).find(s), std::string::npos) << s;
  const std::string bytes = json_value(c.out, "kv_bytes_per_token");
  EXPECT_EQ(json_value(c.out, "baseline_kv_bytes_per_token"), "23040");
  EXPECT_LE(std::stoll(bytes), 23040 / 4);
  EXPECT_EQ(json_value(c.out, "calibration_cached"), "false");

  const auto again = run_cli(
      "compress", compress_args(lkv, {"--budget", "0.25", "--bits", "4", "--json"}, "e2e-cache"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json_value(again.out, "calibration_cached"), "true");
  EXPECT_EQ(json_value(again.out, "fisher_cached"), "true");
  EXPECT_EQ(json_value(again.out, "kv_bytes_per_token"), bytes);

  const std::string model = testing::default_model_path();
  const auto p = run_cli("ppl", {"--model", model, "--text", test_txt(), "--ctx", "64", "--chunks",
                                 "2", "--compressed", lkv, "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(json_value(p.out, "kv_cache"), "\"latent\"");
  EXPECT_EQ(std::stod(json_value(p.out, "kv_bytes_per_token")), std::stod(bytes));
  EXPECT_EQ(json_value(p.out, "baseline_kv_bytes_per_token"), "23040");
  const double ppl = std::stod(json_value(p.out, "ppl"));
  EXPECT_GT(ppl, 1.0);
  EXPECT_LT(ppl, 1000.0);

  const auto g = run_cli("generate", {"--model", model, "--compressed", lkv, "--prompt",
                                      "The capital of France is", "-n", "2"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(g.out.rfind("The capital of France is", 0), 0u) << g.out;
  EXPECT_NE(g.err.find("KV latent"), std::string::npos) << g.err;

  // Corrupted: one byte flipped in the middle.
  std::string data;
  {
    std::ifstream in(lkv, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::string bad = data;
  bad[bad.size() / 2] ^= 1;
  const std::string corrupt = write_file("corrupt.lkv", bad);
  expect_error(run_cli("ppl", {"--model", model, "--text", test_txt(), "--compressed", corrupt}),
               "checksum mismatch");
  expect_error(run_cli("generate", {"--model", model, "--prompt", "x", "--compressed", corrupt}),
               "checksum mismatch");
  expect_error(run_cli("ppl", {"--model", model, "--text", test_txt(), "--compressed",
                               write_file("short.lkv", data.substr(0, 100))}),
               "truncated");
  // Made from another model (same shape, other file): rejected before the weights are loaded.
  CompressedModel other = load_compressed_model(lkv);
  other.base.sha256 = std::string(64, '0');
  const std::string foreign = testing::temp_dir() + "/foreign.lkv";
  save_compressed_model(other, foreign);
  expect_error(run_cli("ppl", {"--model", model, "--text", test_txt(), "--compressed", foreign}),
               "was compressed from a different model");
}

// Fisher scores computed elsewhere, in the documented text format (fisher_scores.h).
TEST(CompressCli, FisherScoresFromAFile) {
  LKV_REQUIRE_CLI("compress");
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  FisherScores f;
  f.model_id = "-";  // unknown: accepted for any model of the right shape
  f.num_kv_heads = 3;
  for (int l = 0; l < 30; ++l) {
    f.key.push_back(1.0 + l);
    f.value.push_back(100.0 - l);
  }
  const std::string path = testing::temp_dir() + "/scores.txt";
  save_fisher_scores(f, path);
  const std::string lkv = testing::temp_dir() + "/from-file.lkv";
  const auto r = run_cli(
      "compress",
      compress_args(lkv, {"--budget", "0.5", "--preset", "palu", "--fisher", path, "--json"},
                    "file-cache"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("fisher ["), std::string::npos) << "scores were recomputed";
  const CompressedModel m = load_compressed_model(lkv);
  EXPECT_EQ(m.recipe_value("fisher"), "file " + path);
  EXPECT_EQ(m.recipe_value("allocator"), "palu");
  // Values get more rank where their score is larger: layer 0 (100) over layer 29 (71).
  EXPECT_GE(m.layers[0].factors.value.ranks[0], m.layers[29].factors.value.ranks[0]);

  f.key.pop_back();
  f.value.pop_back();
  save_fisher_scores(f, path);
  expect_error(
      run_cli("compress", compress_args(lkv, {"--budget", "0.5", "--fisher", path}, "file-cache")),
      "layers");
}

TEST(PplCli, KiviBaselineAndKvCacheOptionErrors) {
  LKV_REQUIRE_CLI("ppl");
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  const std::string model = testing::default_model_path();
  auto ppl = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"--model", model, "--text", test_txt()};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_cli("ppl", a);
  };
  const auto k = ppl({"--ctx", "64", "--chunks", "1", "--kv-cache", "kivi", "--kivi-bits", "2",
                      "--kivi-residual", "16", "--json"});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  EXPECT_EQ(json_value(k.out, "kv_cache"), "\"kivi\"");
  // 30 layers · 192 channels: keys (32·2/8 + 4)/32 bytes per value, values 2 bits + 4 bytes per
  // 32 channels.
  EXPECT_EQ(std::stod(json_value(k.out, "kv_bytes_per_token")), 30 * (192 * 12 / 32.0 + 48 + 24));
  const auto d = ppl({"--ctx", "64", "--chunks", "1", "--kv-dtype", "f16", "--json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(json_value(d.out, "kv_bytes_per_token"), "23040");
  expect_error(ppl({"--kv-cache", "paged"}), "--kv-cache must be dense or kivi");
  expect_error(ppl({"--kv-cache", "kivi", "--kivi-bits", "5"}), "--kivi-bits must be 2, 3, 4 or 8");
  expect_error(ppl({"--kivi-bits", "2"}), "--kivi-* options need --kv-cache kivi");
  expect_error(ppl({"--compressed", "c.lkv", "--kv-dtype", "f16"}), "do not combine");
  expect_error(ppl({"--compressed", testing::temp_dir() + "/none.lkv"}), "does not exist");
}

}  // namespace
}  // namespace latentkv
