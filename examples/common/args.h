// Command-line parsing and the error/exit-code convention shared by every latentkv CLI.
//
// Exit codes: 0 success, 1 runtime failure (bad file, numerical error, ...), 2 usage error.
// Every error is one line on stderr starting with "error: ".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace latentkv::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

/// Declarative parser for `--name value` / `--name=value` options and boolean `--flag`s.
class ArgParser {
 public:
  ArgParser(std::string program, std::string summary);

  void add_flag(const std::string& name, const std::string& help, bool* out);
  void add_string(const std::string& name, const std::string& metavar, const std::string& help,
                  std::string* out, bool required = false);
  void add_int(const std::string& name, const std::string& metavar, const std::string& help,
               int64_t* out, bool required = false);
  void add_double(const std::string& name, const std::string& metavar, const std::string& help,
                  double* out, bool required = false);
  /// Short alias, e.g. alias("-n", "--n-predict").
  void alias(const std::string& short_name, const std::string& long_name);
  /// Extra text printed after the option list of --help (examples, notes).
  void set_epilog(std::string epilog) { epilog_ = std::move(epilog); }

  /// Parses argv. Returns -1 when the program should continue, otherwise the exit code to return
  /// (0 after --help, kExitUsage after a usage error, which is printed).
  int parse(int argc, char** argv);
  /// Whether the option was given on the command line.
  bool given(const std::string& name) const;
  std::string help() const;

 private:
  struct Option {
    std::string name, metavar, help;
    bool required = false, seen = false, is_flag = false;
    std::function<bool(const std::string&)> set;  // returns false when the value is malformed
    std::string default_text;
  };
  Option* find(const std::string& name);
  const Option* find(const std::string& name) const;
  std::string program_, summary_, epilog_;
  std::vector<Option> options_;
  std::vector<std::pair<std::string, std::string>> aliases_;
};

/// Runs `body`, turning latentkv::Error and other exceptions into one "error: ..." line on stderr
/// and kExitFailure. Returns body's exit code otherwise.
int run_main(const std::function<int()>& body);

}  // namespace latentkv::cli
