// Progress reporting for long offline steps (calibration, perplexity, decomposition).
//
// Library code takes a ProgressFn (may be empty) so that it never prints by itself; CLIs pass a
// ProgressBar, which draws on stderr: an updating bar on a terminal, a line every 10 % otherwise
// (so that CI logs stay readable).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace latentkv {

/// Called with (done, total) after each unit of work.
using ProgressFn = std::function<void(int64_t done, int64_t total)>;

/// A stderr progress bar with rate and ETA.
class ProgressBar {
 public:
  /// `label` prefixes every line; `unit` names what is counted ("chunks", "tokens").
  ProgressBar(std::string label, std::string unit = "")
      : label_(std::move(label)), unit_(std::move(unit)), tty_(isatty(fileno(stderr)) != 0) {}
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() { finish(); }

  void update(int64_t done, int64_t total) {
    if (finished_) return;
    total_ = total;
    done_ = done;
    const int pct = total > 0 ? static_cast<int>(100 * done / total) : 100;
    if (tty_) {
      draw(pct, '\r');
    } else if (pct / 10 > last_decile_ || done == total) {
      last_decile_ = pct / 10;
      draw(pct, '\n');
    }
    if (done >= total) finish();
  }

  /// Adapts the bar to the library's callback type.
  ProgressFn callback() {
    return [this](int64_t done, int64_t total) { update(done, total); };
  }

  void finish() {
    if (finished_ || done_ < 0) return;
    finished_ = true;
    if (tty_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  void draw(int pct, char end) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = secs > 0 ? done_ / secs : 0.0;
    const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
    constexpr int kWidth = 30;
    std::string bar(kWidth, ' ');
    for (int i = 0; i < kWidth * pct / 100; ++i) bar[i] = '=';
    std::fprintf(stderr, "%s [%s] %3d%% %lld/%lld %s %.1f/s eta %.0fs%c", label_.c_str(),
                 bar.c_str(), pct, static_cast<long long>(done_), static_cast<long long>(total_),
                 unit_.c_str(), rate, eta, end);
    std::fflush(stderr);
  }

  std::string label_, unit_;
  bool tty_;
  bool finished_ = false;
  int64_t done_ = -1, total_ = 0;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace latentkv
