#include "latentkv/eval/sampler.h"

#include <algorithm>
#include <cmath>

#include "latentkv/status.h"

namespace latentkv {

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  LKV_CHECK_ARG(std::isfinite(options.temperature) && options.temperature >= 0,
                "temperature must be >= 0, got ", options.temperature);
  LKV_CHECK_ARG(options.top_p > 0 && options.top_p <= 1, "top-p must be in (0, 1], got ",
                options.top_p);
}

int32_t Sampler::sample(const float* logits, int64_t n) {
  LKV_CHECK_ARG(n >= 1, "cannot sample from an empty vocabulary");
  if (options_.temperature == 0) {
    return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
  }
  const double inv_t = 1.0 / options_.temperature;
  const double mx = *std::max_element(logits, logits + n);
  candidates_.resize(static_cast<size_t>(n));
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double p = std::exp((logits[i] - mx) * inv_t);
    candidates_[i] = {p, static_cast<int32_t>(i)};
    total += p;
  }
  // Most probable first (ties by id so that the order, and thus the draw, is deterministic).
  auto by_prob = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  double kept_mass = total;
  if (options_.top_p < 1) {
    std::sort(candidates_.begin(), candidates_.end(), by_prob);
    double cum = 0;
    for (keep = 0; keep < candidates_.size();) {
      cum += candidates_[keep++].first;
      if (cum >= options_.top_p * total) break;
    }
    kept_mass = cum;
  }
  // Inverse-CDF draw over the kept tokens; the 53-bit uniform is built by hand because
  // std::uniform_real_distribution's algorithm differs between standard libraries.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * kept_mass;
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += candidates_[i].first;
    if (u < cum) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace latentkv
