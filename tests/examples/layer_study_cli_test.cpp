// latentkv-layer-study end to end on the default model: the table has every row, errors are in
// (0, 1), the whitened SVD (the optimum of the reported error) never loses to plain SVD; bad
// options give one error line.
#include <gtest/gtest.h>

#include <sstream>

#include "examples/cli_run.h"

namespace latentkv {
namespace {

using testing::run_cli;

TEST(LayerStudyCli, TableForOneLayerAndBadOptions) {
  LKV_REQUIRE_CLI("layer-study");
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  const std::string model = testing::default_model_path();
  const std::string calib = testing::wikitext_dir() + "/valid.txt";
  const auto r = run_cli("layer-study", {"--model", model, "--calib", calib, "--layers", "3",
                                         "--windows", "2", "--ctx", "128", "--group-sizes", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // K and V at 2 rank fractions, 5 variants each: 20 data rows after the 2 header lines.
  std::istringstream in(r.out);
  int rows = 0;
  double plain = -1, whitened = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| 3 | 3 |", 0) != 0) continue;
    ++rows;
    const double err = std::stod(line.substr(line.rfind('|', line.size() - 2) + 1));
    EXPECT_GT(err, 0.0) << line;
    EXPECT_LT(err, 1.0) << line;
    if (line.find("| k | 50 % |") != std::string::npos) {
      if (line.find("plain_svd") != std::string::npos) plain = err;
      if (line.find("whitened_svd | consecutive | no") != std::string::npos) whitened = err;
    }
  }
  EXPECT_EQ(rows, 20) << r.out;
  ASSERT_GT(plain, 0.0) << r.out;
  ASSERT_GT(whitened, 0.0) << r.out;
  // The whitened SVD minimises exactly the reported output error: it cannot lose to plain SVD.
  EXPECT_LE(whitened, plain * (1 + 1e-9)) << r.out;

  auto expect_error = [&](std::vector<std::string> extra, const std::string& needle) {
    std::vector<std::string> args = {"--model", model, "--calib", calib};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto bad = run_cli("layer-study", args);
    EXPECT_EQ(bad.exit_code, 1) << bad.err;
    ASSERT_EQ(bad.error_lines().size(), 1u) << bad.err;
    EXPECT_NE(bad.error_lines()[0].find(needle), std::string::npos) << bad.err;
  };
  expect_error({"--layers", "30"}, "layer 30 is outside 0..29");
  expect_error({"--layers", "1,x"}, "'x' is not an integer");
  expect_error({"--group-sizes", "2"}, "2 does not divide num_kv_heads 3");
}

}  // namespace
}  // namespace latentkv
