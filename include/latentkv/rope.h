// Rotary position embedding, one convention for the whole project (design §3.9).
//
// Convention: HF "rotate_half" (half-split). Within a head of width head_dim, element i and
// element i + head_dim/2 form a pair rotated by angle pos * inv_freq[i]:
//   y[i]          = x[i] * cos - x[i + half] * sin
//   y[i + half]   = x[i + half] * cos + x[i] * sin
// GGUF files written by llama.cpp store W_q/W_k rows permuted for adjacent-pair RoPE; the GGUF
// loader un-permutes them into this order (GGUF row 2i+s = HF row s*half + i), so every CPU
// reference and every kernel uses the half-split form above.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "latentkv/status.h"

namespace latentkv {

/// RoPE parameters of a model.
struct RopeConfig {
  double theta = 10000.0;
  /// rope.scaling.type = linear: positions are divided by this factor.
  double linear_factor = 1.0;
  /// Optional per-frequency divisors, [head_dim/2] (Llama-3 scaling, GGUF `rope_freqs.weight`).
  std::vector<float> freq_factors;
};

/// inv_freq[i] = theta^(-2i/head_dim) / freq_factors[i] / linear_factor, i in [0, head_dim/2).
inline std::vector<double> rope_inv_freq(const RopeConfig& rope, int head_dim) {
  LKV_CHECK_ARG(head_dim > 0 && head_dim % 2 == 0, "RoPE head_dim must be even, got ", head_dim);
  const int half = head_dim / 2;
  LKV_CHECK_ARG(rope.freq_factors.empty() || static_cast<int>(rope.freq_factors.size()) == half,
                "RoPE freq_factors has ", rope.freq_factors.size(), " entries, expected ", half);
  LKV_CHECK_ARG(rope.theta > 0 && rope.linear_factor > 0, "RoPE theta and factor must be > 0");
  std::vector<double> inv(half);
  for (int i = 0; i < half; ++i) {
    double f = std::pow(rope.theta, -2.0 * i / head_dim) / rope.linear_factor;
    if (!rope.freq_factors.empty()) f /= rope.freq_factors[i];
    inv[i] = f;
  }
  return inv;
}

/// Llama-3 frequency-scaling divisors ([head_dim/2]) as declared by a model's rope_scaling.
inline std::vector<float> llama3_freq_factors(int head_dim, double theta, double factor,
                                              double low_freq_factor, double high_freq_factor,
                                              double original_max_position) {
  LKV_CHECK_ARG(factor > 0 && high_freq_factor > low_freq_factor,
                "invalid Llama-3 RoPE scaling parameters");
  const double kPi = 3.14159265358979323846;
  const double low_wavelen = original_max_position / low_freq_factor;
  const double high_wavelen = original_max_position / high_freq_factor;
  std::vector<float> out(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow(theta, -2.0 * i / head_dim);
    const double wavelen = 2 * kPi / freq;
    double scaled;
    if (wavelen < high_wavelen) {
      scaled = freq;
    } else if (wavelen > low_wavelen) {
      scaled = freq / factor;
    } else {
      const double smooth =
          (original_max_position / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      scaled = (1 - smooth) * freq / factor + smooth * freq;
    }
    out[i] = static_cast<float>(freq / scaled);
  }
  return out;
}

/// Rotates one head vector x[head_dim] in place for position `pos` (half-split convention).
template <typename T>
inline void apply_rope(T* x, int head_dim, int64_t pos, const double* inv_freq) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * inv_freq[i];
    const double c = std::cos(angle), s = std::sin(angle);
    const double a = static_cast<double>(x[i]), b = static_cast<double>(x[i + half]);
    x[i] = static_cast<T>(a * c - b * s);
    x[i + half] = static_cast<T>(b * c + a * s);
  }
}

}  // namespace latentkv
