#include "latentkv/quant/latent_quant.h"

#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "latentkv/status.h"

namespace latentkv {
namespace {

TEST(LatentQuant, HalfBitsRoundTripEveryHalf) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = half_bits_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_half_bits(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(LatentQuant, FloatToHalfMatchesEigenRoundToNearestEven) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    // Cover the whole half range densely: exponents around [-30, 17].
    u = (u & 0x807fffffu) | ((97u + (u >> 23) % 48u) << 23);
    float f;
    std::memcpy(&f, &u, 4);
    const Eigen::half ref(f);
    EXPECT_EQ(float_to_half_bits(f), Eigen::numext::bit_cast<uint16_t>(ref)) << f;
  }
}

TEST(LatentQuant, PackThreeBitCodesByHand) {
  // Stream value = sum c_i << 3i = 0x1F58D1 for codes 1..7,0 -> bytes D1 58 1F.
  const uint8_t codes[8] = {1, 2, 3, 4, 5, 6, 7, 0};
  uint8_t packed[3];
  pack_codes(codes, 8, 3, packed);
  EXPECT_EQ(packed[0], 0xD1);
  EXPECT_EQ(packed[1], 0x58);
  EXPECT_EQ(packed[2], 0x1F);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(unpack_code(packed, i, 3), codes[i]);
}

TEST(LatentQuant, PackUnpackRoundTripAllWidths) {
  std::mt19937 rng(3);
  for (int bits : {2, 3, 4, 8}) {
    for (int count : {1, 5, 16, 63, 128}) {
      std::vector<uint8_t> codes(count);
      for (auto& c : codes) c = static_cast<uint8_t>(rng() & ((1u << bits) - 1u));
      std::vector<uint8_t> packed(latent_code_bytes(count, bits), 0xAA);
      pack_codes(codes.data(), count, bits, packed.data());
      for (int i = 0; i < count; ++i) ASSERT_EQ(unpack_code(packed.data(), i, bits), codes[i]);
      const int tail = (count * bits) % 8;  // unused high bits of the last byte are zero
      if (tail) {
        EXPECT_EQ(packed.back() >> tail, 0);
      }
    }
  }
}

TEST(LatentQuant, TwoBitExactGrid) {
  const float x[4] = {0.f, 1.f, 2.f, 3.f};
  QuantConfig cfg;
  cfg.bits = 2;
  uint8_t codes[1];
  uint16_t scale, zero;
  quantize_latent(x, 4, cfg, codes, &scale, &zero);
  EXPECT_EQ(codes[0], 0xE4);  // codes 0,1,2,3 LSB first
  EXPECT_EQ(half_bits_to_float(scale), 1.0f);
  EXPECT_EQ(half_bits_to_float(zero), 0.0f);
  float out[4];
  dequantize_latent(codes, &scale, &zero, 4, cfg, out);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], x[i]);
}

TEST(LatentQuant, ConstantLatentHasZeroScale) {
  const std::vector<float> x(32, -1.25f);
  QuantConfig cfg;
  cfg.bits = 3;
  std::vector<uint8_t> codes(latent_code_bytes(32, 3));
  uint16_t scale, zero;
  quantize_latent(x.data(), 32, cfg, codes.data(), &scale, &zero);
  EXPECT_EQ(half_bits_to_float(scale), 0.0f);
  std::vector<float> out(32);
  dequantize_latent(codes.data(), &scale, &zero, 32, cfg, out.data());
  for (float v : out) EXPECT_EQ(v, -1.25f);
}

// |x - x̂| <= scale/2, plus what fp16 rounding of zero and scale can add at the two ends.
TEST(LatentQuant, RoundTripWithinBoundForEveryWidth) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int bits : {2, 3, 4, 8, 16}) {
    for (int qg : {0, 8, 32}) {
      const int rank = 64;
      QuantConfig cfg;
      cfg.bits = bits;
      cfg.quant_group = qg;
      validate_quant_config(cfg, rank);
      std::vector<float> x(rank);
      for (auto& v : x) v = 3.f * normal(rng);
      x[5] = 40.f;  // an outlier channel
      const int ng = std::max(1, latent_num_quant_groups(rank, cfg));
      std::vector<uint8_t> codes(latent_code_bytes(rank, bits));
      std::vector<uint16_t> scale(ng), zero(ng);
      quantize_latent(x.data(), rank, cfg, codes.data(), scale.data(), zero.data());
      std::vector<float> out(rank);
      dequantize_latent(codes.data(), scale.data(), zero.data(), rank, cfg, out.data());
      const int group = effective_quant_group(cfg, rank);
      for (int i = 0; i < rank; ++i) {
        double bound;
        if (bits == 16) {
          bound = std::abs(x[i]) * std::ldexp(1.0, -11);
        } else {
          const int g = i / group;
          float lo = x[g * group], hi = lo;
          for (int j = 0; j < group; ++j) {
            lo = std::min(lo, x[g * group + j]);
            hi = std::max(hi, x[g * group + j]);
          }
          const double s = half_bits_to_float(scale[g]);
          const double s_exact = (static_cast<double>(hi) - lo) / ((1 << bits) - 1);
          bound = 0.5 * s + std::abs(half_bits_to_float(zero[g]) - lo) +
                  ((1 << bits) - 1) * std::abs(s - s_exact) + 1e-6 * std::abs(hi);
        }
        EXPECT_LE(std::abs(out[i] - x[i]), bound) << "bits " << bits << " qg " << qg << " i " << i;
      }
    }
  }
}

TEST(LatentQuant, BytesPerTokenCountsScaleAndZero) {
  QuantConfig fp16;
  EXPECT_EQ(latent_bytes_per_token(64, fp16), 128);
  QuantConfig q4;
  q4.bits = 4;
  EXPECT_EQ(latent_bytes_per_token(64, q4), 32 + 4);
  q4.quant_group = 32;
  EXPECT_EQ(latent_bytes_per_token(64, q4), 32 + 8);
  QuantConfig q3;
  q3.bits = 3;
  EXPECT_EQ(latent_bytes_per_token(64, q3), 24 + 4);
  EXPECT_EQ(latent_bytes_per_token(40, q3), 15 + 4);
  QuantConfig q2;
  q2.bits = 2;
  EXPECT_EQ(latent_bytes_per_token(128, q2), 32 + 4);
}

TEST(LatentQuant, RejectsBadConfigs) {
  QuantConfig cfg;
  cfg.bits = 5;
  EXPECT_THROW(validate_quant_config(cfg, 64), Error);
  cfg.bits = 4;
  cfg.quant_group = 24;
  try {
    validate_quant_config(cfg, 64);
    FAIL() << "quant_group 24 must not divide rank 64";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("does not divide"), std::string::npos);
  }
  cfg.quant_group = 0;
  EXPECT_THROW(validate_quant_config(cfg, 0), Error);
  cfg.residual = -1;
  EXPECT_THROW(validate_quant_config(cfg, 64), Error);
}

TEST(LatentQuant, RejectsValuesOutsideHalfRange) {
  QuantConfig cfg;
  cfg.bits = 2;
  uint8_t codes[1];
  uint16_t scale, zero;
  const float big[4] = {0.f, 1.f, 2.f, 200000.f};
  const float low[4] = {-70000.f, 1.f, 2.f, 3.f};
  const float nan[4] = {0.f, std::nanf(""), 2.f, 3.f};
  for (const float* x : {big, low, nan}) {
    try {
      quantize_latent(x, 4, cfg, codes, &scale, &zero);
      FAIL() << "must reject";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kNumericalError);
    }
  }
}

}  // namespace
}  // namespace latentkv
