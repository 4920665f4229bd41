// Next-token selection for text generation: greedy, or temperature + nucleus (top-p) sampling
// with a seeded generator (the same seed gives the same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace latentkv {

struct SamplingOptions {
  double temperature = 0.0;  ///< 0 = greedy (arg-max); > 0 divides the logits before softmax
  double top_p = 1.0;        ///< keep the smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;
};

class Sampler {
 public:
  /// Throws Error(kInvalidArgument) unless temperature >= 0 and 0 < top_p <= 1.
  explicit Sampler(const SamplingOptions& options);

  /// Picks a token id from `logits` [n] (n >= 1). Greedy ties go to the lowest id.
  int32_t sample(const float* logits, int64_t n);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<double, int32_t>> candidates_;  // scratch: (probability, id)
};

}  // namespace latentkv
