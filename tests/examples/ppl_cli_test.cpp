// End-to-end runs of latentkv-ppl and latentkv-generate: exit codes, the single "error:" line of
// each bad input, and the --json line. The checks behind the errors are unit-tested in
// tests/eval; here the binaries are shown to surface them.
#include <gtest/gtest.h>

#include <fstream>

#include "examples/cli_run.h"

namespace latentkv {
namespace {

using testing::run_cli;

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// One "error: ..." line containing `needle`, exit code 1 (runtime failure) or 2 (usage).
void expect_error(const testing::CliResult& r, const std::string& needle, int code = 1) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  const auto lines = r.error_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

std::string wikitext_test() { return testing::wikitext_dir() + "/test.txt"; }

TEST(PplCli, HelpAndUsageErrors) {
  LKV_REQUIRE_CLI("ppl");
  const auto help = run_cli("ppl", {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--ctx"), std::string::npos);
  expect_error(run_cli("ppl", {"--text", "x.txt"}), "missing required option --model", 2);
  expect_error(run_cli("ppl", {"--model", "m", "--text", "t", "--ctx", "abc"}), "invalid value", 2);
}

TEST(PplCli, BadTextFiles) {
  LKV_REQUIRE_CLI("ppl");
  const std::string model = testing::default_model_path();
  expect_error(run_cli("ppl", {"--model", model, "--text", testing::temp_dir() + "/none.txt"}),
               "does not exist");
  expect_error(run_cli("ppl", {"--model", model, "--text", write_file("empty.txt", "")}),
               "is empty");
  expect_error(run_cli("ppl", {"--model", model, "--text", write_file("bad.txt", "ab\xC3(")}),
               "not valid UTF-8");
}

TEST(PplCli, MissingModel) {
  LKV_REQUIRE_CLI("ppl");
  const std::string text = write_file("short.txt", "hello world\n");
  expect_error(run_cli("ppl", {"--model", testing::temp_dir() + "/none.gguf", "--text", text}),
               "none.gguf");
}

TEST(PplCli, CorruptModels) {
  LKV_REQUIRE_CLI("ppl");
  LKV_REQUIRE_MODEL();
  const std::string text = write_file("short2.txt", "hello world\n");
  expect_error(run_cli("ppl", {"--model", write_file("magic.gguf", "GGML0000000000000000000000"),
                               "--text", text}),
               "not a GGUF file");
  // The real model cut in the middle of its tensor data.
  std::ifstream in(testing::default_model_path(), std::ios::binary);
  std::string head(4u << 20, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  expect_error(run_cli("ppl", {"--model", write_file("cut.gguf", head), "--text", text}),
               "truncated tensor data");
}

TEST(PplCli, OptionsCheckedAgainstModelAndText) {
  LKV_REQUIRE_CLI("ppl");
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  const std::string model = testing::default_model_path(), text = wikitext_test();
  auto ppl = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--model", model, "--text", text};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli("ppl", args);
  };
  expect_error(ppl({"--ctx", "9000"}), "exceeds the model's context length 8192");
  expect_error(ppl({"--ctx", "2"}), "ctx 2 leaves no token to score");
  expect_error(ppl({"--chunks", "0"}), "chunks must be >= 1");
  expect_error(ppl({"--kv-dtype", "q8"}), "unknown KV cache dtype");
  expect_error(run_cli("ppl", {"--model", model, "--text",
                               write_file("few.txt", "Only a handful of tokens.\n")}),
               "fewer than one window");
}

TEST(PplCli, JsonLineOnSuccess) {
  LKV_REQUIRE_CLI("ppl");
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  const auto r = run_cli("ppl", {"--model", testing::default_model_path(), "--text",
                                 wikitext_test(), "--ctx", "64", "--chunks", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string last = r.out.substr(r.out.rfind('{'));
  for (const char* key : {"\"ppl\": ", "\"ppl_stderr\": ", "\"ctx\": 64", "\"chunks\": 2",
                          "\"tokens_scored\": 62", "\"tokens_per_second\": "})
    EXPECT_NE(last.find(key), std::string::npos) << key << " missing from " << last;
  EXPECT_NE(r.out.find("perplexity:"), std::string::npos);
}

TEST(GenerateCli, GreedyAnswerAndBadOptions) {
  LKV_REQUIRE_CLI("generate");
  LKV_REQUIRE_MODEL();
  const std::string model = testing::default_model_path();
  const auto r =
      run_cli("generate", {"--model", model, "--prompt", "The capital of France is", "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("The capital of France is Paris", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
  expect_error(run_cli("generate", {"--model", model, "--prompt", "x", "--temp", "-1"}),
               "temperature must be >= 0");
  expect_error(run_cli("generate", {"--model", model, "--prompt", "x", "--top-p", "0"}),
               "top-p must be in (0, 1]");
  expect_error(run_cli("generate", {"--model", model, "--prompt", "x", "-n", "0"}), "-n must be");
  expect_error(run_cli("generate", {"--model", model, "--prompt", ""}), "prompt is empty");
  expect_error(
      run_cli("generate", {"--model", testing::temp_dir() + "/none.gguf", "--prompt", "x"}),
      "none.gguf");
}

TEST(GenerateCli, ChatTemplateStopsAtEndOfTurn) {
  LKV_REQUIRE_CLI("generate");
  LKV_REQUIRE_MODEL();
  const auto r = run_cli("generate", {"--model", testing::default_model_path(), "--chat",
                                      "--prompt", "What is the capital of France?", "-n", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Paris"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("<|im_end|>"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("stop: end of turn"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace latentkv
