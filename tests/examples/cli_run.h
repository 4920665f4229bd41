// Runs a built latentkv CLI binary and captures its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace latentkv::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
  /// stderr lines that start with "error: ".
  std::vector<std::string> error_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);)
      if (l.rfind("error: ", 0) == 0) lines.push_back(l);
    return lines;
  }
};

/// Path of examples/<name>/main.cpp's binary in this build tree.
inline std::string cli_path(const std::string& name) {
  return std::string(LATENTKV_BINARY_DIR) + "/examples/latentkv-" + name;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

/// Runs `latentkv-<name> args...` with one thread (tests run in parallel).
inline CliResult run_cli(const std::string& name, const std::vector<std::string>& args) {
  const std::string dir = temp_dir();
  std::string cmd = "OMP_NUM_THREADS=1 " + shell_quote(cli_path(name));
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " >" + dir + "/cli.out 2>" + dir + "/cli.err";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir + "/cli.out");
  r.err = slurp(dir + "/cli.err");
  return r;
}

}  // namespace latentkv::testing

/// Skips when the examples were not built (LATENTKV_BUILD_EXAMPLES=OFF).
#define LKV_REQUIRE_CLI(name)                                                        \
  do {                                                                               \
    if (!::latentkv::testing::file_exists(::latentkv::testing::cli_path(name)))      \
      GTEST_SKIP() << "examples not built: " << ::latentkv::testing::cli_path(name); \
  } while (0)
