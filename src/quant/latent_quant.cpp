#include "latentkv/quant/latent_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "latentkv/status.h"

namespace latentkv {

namespace {
// Smallest float magnitude that rounds to fp16 infinity.
constexpr float kHalfMax = 65520.0f;
}  // namespace

bool is_supported_bits(int bits) {
  return bits == 2 || bits == 3 || bits == 4 || bits == 8 || bits == 16;
}

int effective_quant_group(const QuantConfig& config, int rank) {
  return config.quant_group == 0 ? rank : config.quant_group;
}

void validate_quant_config(const QuantConfig& config, int rank) {
  LKV_CHECK_ARG(is_supported_bits(config.bits), "latent bits ", config.bits,
                " not supported (use 2, 3, 4, 8 or 16)");
  LKV_CHECK_ARG(rank >= 1, "latent rank must be >= 1, got ", rank);
  LKV_CHECK_ARG(config.quant_group >= 0, "quant_group must be >= 0, got ", config.quant_group);
  const int qg = effective_quant_group(config, rank);
  LKV_CHECK_ARG(config.bits == 16 || rank % qg == 0, "quant_group ", qg,
                " does not divide the latent rank ", rank);
  LKV_CHECK_ARG(config.residual >= 0, "residual window must be >= 0, got ", config.residual);
}

int64_t latent_code_bytes(int rank, int bits) {
  return (static_cast<int64_t>(rank) * bits + 7) / 8;
}

int latent_num_quant_groups(int rank, const QuantConfig& config) {
  return config.bits == 16 ? 0 : rank / effective_quant_group(config, rank);
}

int64_t latent_bytes_per_token(int rank, const QuantConfig& config) {
  return latent_code_bytes(rank, config.bits) + 4 * int64_t{latent_num_quant_groups(rank, config)};
}

uint16_t float_to_half_bits(float x) {
  uint32_t f;
  std::memcpy(&f, &x, 4);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t abs = f & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // Inf or NaN (keep NaN quiet)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to Inf
  if (abs >= 0x38800000u) {                                              // normal half
    const uint32_t mant = abs & 0x7fffffu;
    uint32_t h = ((abs >> 23) - 112) << 10 | (mant >> 13);
    const uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // RNE; carry may bump exponent
    return static_cast<uint16_t>(sign | h);
  }
  // Subnormal half (or zero): value = m · 2^-24 with m = round(abs_value · 2^24).
  const int exp = static_cast<int>(abs >> 23);
  if (exp < 102) return static_cast<uint16_t>(sign);  // below half of the smallest subnormal
  const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
  const int shift = 126 - exp;  // 14..24
  uint32_t h = mant >> shift;
  const uint32_t rest = mant & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t f;
  if (exp == 0x1f) {
    f = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    f = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    f = sign;
  } else {  // subnormal: normalise
    int e = -1;
    uint32_t m = mant;
    do {
      ++e;
      m <<= 1;
    } while ((m & 0x400u) == 0);
    f = sign | static_cast<uint32_t>(112 - e) << 23 | ((m & 0x3ffu) << 13);
  }
  float x;
  std::memcpy(&x, &f, 4);
  return x;
}

void pack_codes(const uint8_t* codes, int64_t count, int bits, uint8_t* packed) {
  std::memset(packed, 0, static_cast<size_t>(latent_code_bytes(static_cast<int>(count), bits)));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t bit = i * bits;
    const uint32_t v = static_cast<uint32_t>(codes[i]) << (bit & 7);
    packed[bit >> 3] |= static_cast<uint8_t>(v & 0xffu);
    if ((bit & 7) + bits > 8) packed[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
  }
}

void quantize_latent(const float* x, int rank, const QuantConfig& config, uint8_t* codes,
                     uint16_t* scale, uint16_t* zero) {
  if (config.bits == 16) {
    for (int i = 0; i < rank; ++i) {
      const uint16_t h = float_to_half_bits(x[i]);
      codes[2 * i] = static_cast<uint8_t>(h & 0xffu);
      codes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
    }
    return;
  }
  const int qg = effective_quant_group(config, rank);
  const int max_code = (1 << config.bits) - 1;
  uint8_t raw[8192];  // one code per byte before packing; rank is bounded by group_size·head_dim
  LKV_CHECK_ARG(rank <= static_cast<int>(sizeof(raw)), "latent rank ", rank, " too large");
  for (int g = 0; g < rank / qg; ++g) {
    const float* xg = x + g * qg;
    const auto [lo, hi] = std::minmax_element(xg, xg + qg);
    // Outside the fp16 range the stored zero (or scale) would be infinite and every dequantized
    // value NaN/Inf. NaN fails the comparison (and is never picked by minmax_element), so each
    // value is checked. Inside the range the scale cannot overflow either.
    for (int i = 0; i < qg; ++i)
      if (!(std::abs(xg[i]) < kHalfMax))
        LKV_THROW(StatusCode::kNumericalError, "latent value ", xg[i],
                  " is NaN or outside the fp16 range");
    const uint16_t zero_h = float_to_half_bits(*lo);
    const uint16_t scale_h = float_to_half_bits((*hi - *lo) / static_cast<float>(max_code));
    zero[g] = zero_h;
    scale[g] = scale_h;
    const float z = half_bits_to_float(zero_h);
    const float s = half_bits_to_float(scale_h);
    for (int i = 0; i < qg; ++i) {
      int q = 0;
      if (s != 0.0f) {
        const float r = std::nearbyint((xg[i] - z) / s);  // default FE_TONEAREST: half to even
        q = static_cast<int>(std::clamp(r, 0.0f, static_cast<float>(max_code)));
      }
      raw[g * qg + i] = static_cast<uint8_t>(q);
    }
  }
  pack_codes(raw, rank, config.bits, codes);
}

void dequantize_latent(const uint8_t* codes, const uint16_t* scale, const uint16_t* zero, int rank,
                       const QuantConfig& config, float* out) {
  if (config.bits == 16) {
    for (int i = 0; i < rank; ++i)
      out[i] = half_bits_to_float(static_cast<uint16_t>(codes[2 * i] | codes[2 * i + 1] << 8));
    return;
  }
  const int qg = effective_quant_group(config, rank);
  for (int i = 0; i < rank; ++i) {
    const int g = i / qg;
    const float q = static_cast<float>(unpack_code(codes, i, config.bits));
    out[i] = std::fma(q, half_bits_to_float(scale[g]), half_bits_to_float(zero[g]));
  }
}

}  // namespace latentkv
