// Dequantization of every supported ggml block format on hand-built blocks, bit-exact.
//
// Each test writes one block byte by byte from chosen scales/mins/quants (values picked so that
// every product is exact in float32), then checks (a) a few elements against numbers computed
// by hand and (b) every element against the format's definition, written here per element
// index (independently of the implementation's loop structure).
#include "latentkv/gguf/dequantize.h"

#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>
#include <random>

#include "support/expect_error.h"

namespace latentkv {
namespace {

using Bytes = std::vector<uint8_t>;

// fp16 bit patterns of exactly representable scales.
constexpr uint16_t kHalf0_125 = 0x3000, kHalf0_25 = 0x3400, kHalf0_5 = 0x3800;
constexpr uint16_t kHalf2 = 0x4000, kHalf3 = 0x4200, kHalfMinus1 = 0xBC00;

void put_half(Bytes* b, uint16_t h) {
  b->push_back(static_cast<uint8_t>(h & 0xFF));
  b->push_back(static_cast<uint8_t>(h >> 8));
}

// A deterministic byte pattern: (k·a + c) mod 256.
Bytes pattern(int n, int a, int c) {
  Bytes b(n);
  for (int k = 0; k < n; ++k) b[k] = static_cast<uint8_t>((k * a + c) & 0xFF);
  return b;
}

void append(Bytes* b, const Bytes& more) { b->insert(b->end(), more.begin(), more.end()); }

std::vector<float> dequant(GgmlType type, const Bytes& block, int n) {
  std::vector<float> y(n, std::nanf(""));
  dequantize_row(type, block.data(), y.data(), n);
  return y;
}

// Bit-exact comparison (also distinguishes -0 from +0).
void expect_bits_eq(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << "element " << i << ": got " << got[i] << ", want " << want[i];
  }
}

TEST(Dequantize, Q4_0) {
  Bytes b;
  put_half(&b, kHalf0_5);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 18u);
  const std::vector<float> y = dequant(GgmlType::kQ4_0, b, 32);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[9], 0.5f);
  EXPECT_EQ(y[16], 3.5f);
  EXPECT_EQ(y[31], -4.0f);
  std::vector<float> want(32);
  for (int e = 0; e < 32; ++e) {
    const int nib = e < 16 ? e : 15 - (e - 16);
    want[e] = (nib - 8) * 0.5f;
  }
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q4_1) {
  Bytes b;
  put_half(&b, kHalf0_25);
  put_half(&b, kHalfMinus1);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 20u);
  const std::vector<float> y = dequant(GgmlType::kQ4_1, b, 32);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[15], 2.75f);
  EXPECT_EQ(y[16], 2.75f);
  EXPECT_EQ(y[31], -1.0f);
  std::vector<float> want(32);
  for (int e = 0; e < 32; ++e) want[e] = (e < 16 ? e : 31 - e) * 0.25f - 1.0f;
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q5_0) {
  const uint32_t qh = 0x00018003;  // high bits of elements 0, 1, 15 and 16
  Bytes b;
  put_half(&b, kHalf2);
  for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(qh >> (8 * k)));
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 22u);
  const std::vector<float> y = dequant(GgmlType::kQ5_0, b, 32);
  EXPECT_EQ(y[0], 0.0f);    // (0 + 16 - 16) · 2
  EXPECT_EQ(y[1], 2.0f);    // (1 + 16 - 16) · 2
  EXPECT_EQ(y[2], -28.0f);  // (2 - 16) · 2
  EXPECT_EQ(y[15], 30.0f);  // (15 + 16 - 16) · 2
  EXPECT_EQ(y[16], 30.0f);  // (15 + 16 - 16) · 2
  EXPECT_EQ(y[17], -4.0f);  // (14 - 16) · 2
  std::vector<float> want(32);
  for (int e = 0; e < 32; ++e) {
    const int nib = e < 16 ? e : 31 - e;
    want[e] = (nib + 16 * static_cast<int>((qh >> e) & 1) - 16) * 2.0f;
  }
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q5_1) {
  const uint32_t qh = 0xFFFF0000;  // every element of the upper half has bit 4 set
  Bytes b;
  put_half(&b, kHalf0_5);
  put_half(&b, kHalf3);
  for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(qh >> (8 * k)));
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 24u);
  const std::vector<float> y = dequant(GgmlType::kQ5_1, b, 32);
  EXPECT_EQ(y[0], 3.0f);
  EXPECT_EQ(y[16], 18.5f);  // 31 · 0.5 + 3
  EXPECT_EQ(y[31], 11.0f);  // 16 · 0.5 + 3
  std::vector<float> want(32);
  for (int e = 0; e < 32; ++e) {
    const int q = e < 16 ? e : 31 - e + 16;
    want[e] = q * 0.5f + 3.0f;
  }
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q8_0) {
  Bytes b;
  put_half(&b, kHalf0_125);
  for (int j = 0; j < 32; ++j) b.push_back(static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128)));
  ASSERT_EQ(b.size(), 34u);
  const std::vector<float> y = dequant(GgmlType::kQ8_0, b, 32);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[31], 15.0f);
  std::vector<float> want(32);
  for (int e = 0; e < 32; ++e) want[e] = (e * 8 - 128) * 0.125f;
  expect_bits_eq(y, want);
}

// k-quants: element e of a 256-element super-block sits in 16-element group e/16.

TEST(Dequantize, Q2_K) {
  Bytes b;
  for (int i = 0; i < 16; ++i) b.push_back(static_cast<uint8_t>(i | ((15 - i) << 4)));  // sc, m
  const Bytes qs = pattern(64, 37, 11);
  append(&b, qs);
  put_half(&b, kHalf0_5);   // d
  put_half(&b, kHalf0_25);  // dmin
  ASSERT_EQ(b.size(), 84u);
  const std::vector<float> y = dequant(GgmlType::kQ2_K, b, 256);
  EXPECT_EQ(y[0], -3.75f);    // 0.5·0·3 − 0.25·15
  EXPECT_EQ(y[16], -2.0f);    // 0.5·1·3 − 0.25·14
  EXPECT_EQ(y[32], -1.25f);   // 0.5·2·2 − 0.25·13
  EXPECT_EQ(y[128], 10.25f);  // 0.5·8·3 − 0.25·7
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) {
    // 128-element halves use 32 bytes each; within a half, 32-element runs take successive
    // 2-bit fields, and 16-element groups alternate between bytes 0-15 and 16-31.
    const int half = e / 128, w = e % 128, field = w / 32, g = (w % 32) / 16, l = w % 16;
    const int q = (qs[half * 32 + g * 16 + l] >> (2 * field)) & 3;
    const int group = e / 16;
    want[e] = 0.5f * static_cast<float>(group) * q - 0.25f * static_cast<float>(15 - group);
  }
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q3_K) {
  // Sixteen 6-bit scales stored with bias 32: raw r_i = 4i, i.e. scale 4i − 32.
  Bytes scales(12, 0);
  for (int i = 0; i < 16; ++i) {
    const int r = 4 * i;
    if (i < 8) {
      scales[i] |= r & 0x0F;
    } else {
      scales[i - 8] |= (r & 0x0F) << 4;
    }
    scales[8 + i % 4] |= (r >> 4) << (2 * (i / 4));
  }
  const Bytes hmask = pattern(32, 29, 7), qs = pattern(64, 37, 11);
  Bytes b = hmask;
  append(&b, qs);
  append(&b, scales);
  put_half(&b, kHalf0_5);
  ASSERT_EQ(b.size(), 110u);
  const std::vector<float> y = dequant(GgmlType::kQ3_K, b, 256);
  EXPECT_EQ(y[0], -48.0f);   // 0.5·(−32)·3 (hmask bit set: no −4)
  EXPECT_EQ(y[1], 64.0f);    // 0.5·(−32)·(0 − 4) (hmask bit clear)
  EXPECT_EQ(y[48], -20.0f);  // 0.5·(−20)·2
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, w = e % 128, field = w / 32, g = (w % 32) / 16, l = w % 16;
    const int low = (qs[half * 32 + g * 16 + l] >> (2 * field)) & 3;
    const int high = (hmask[g * 16 + l] >> (4 * half + field)) & 1;  // one bit per 32-run
    const int scale = 4 * (e / 16) - 32;
    want[e] = (0.5f * static_cast<float>(scale)) * static_cast<float>(low - (high ? 0 : 4));
  }
  expect_bits_eq(y, want);
}

// The 12-byte (scale, min) packing of q4_K/q5_K for eight 6-bit pairs.
Bytes pack_k4_scales(const int (&sc)[8], const int (&m)[8]) {
  Bytes b(12, 0);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      b[j] |= sc[j];
      b[j + 4] |= m[j];
    } else {
      b[j + 4] = static_cast<uint8_t>((sc[j] & 0x0F) | ((m[j] & 0x0F) << 4));
      b[j - 4] |= (sc[j] >> 4) << 6;
      b[j] |= (m[j] >> 4) << 6;
    }
  }
  return b;
}

constexpr int kSc[8] = {10, 17, 24, 31, 38, 45, 52, 59};
constexpr int kMin[8] = {63, 58, 53, 48, 43, 38, 33, 28};

TEST(Dequantize, Q4_K) {
  const Bytes qs = pattern(128, 37, 11);
  Bytes b;
  put_half(&b, kHalf0_5);
  put_half(&b, kHalf0_25);
  append(&b, pack_k4_scales(kSc, kMin));
  append(&b, qs);
  ASSERT_EQ(b.size(), 144u);
  const std::vector<float> y = dequant(GgmlType::kQ4_K, b, 256);
  EXPECT_EQ(y[0], 39.25f);    // 0.5·10·11 − 0.25·63
  EXPECT_EQ(y[100], 34.5f);   // 0.5·31·3 − 0.25·48
  EXPECT_EQ(y[255], 170.0f);  // 0.5·59·6 − 0.25·28
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) {
    // 64-element chunks of 32 bytes: low nibbles first, then high nibbles; 32-element subs.
    const int chunk = e / 64, w = e % 64, sub = e / 32, l = w % 32;
    const uint8_t byte = qs[chunk * 32 + l];
    const int q = w < 32 ? (byte & 0x0F) : (byte >> 4);
    want[e] = 0.5f * static_cast<float>(kSc[sub]) * q - 0.25f * static_cast<float>(kMin[sub]);
  }
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q5_K) {
  const Bytes qh = pattern(32, 29, 7), qs = pattern(128, 37, 11);
  Bytes b;
  put_half(&b, kHalf0_5);
  put_half(&b, kHalf0_25);
  append(&b, pack_k4_scales(kSc, kMin));
  append(&b, qh);
  append(&b, qs);
  ASSERT_EQ(b.size(), 176u);
  const std::vector<float> y = dequant(GgmlType::kQ5_K, b, 256);
  EXPECT_EQ(y[0], 119.25f);   // 0.5·10·(11 + 16) − 0.25·63
  EXPECT_EQ(y[100], 282.5f);  // 0.5·31·(3 + 16) − 0.25·48
  EXPECT_EQ(y[255], 642.0f);  // 0.5·59·(6 + 16) − 0.25·28
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) {
    const int chunk = e / 64, w = e % 64, sub = e / 32, l = w % 32;
    const uint8_t byte = qs[chunk * 32 + l];
    const int q = (w < 32 ? (byte & 0x0F) : (byte >> 4)) + 16 * ((qh[l] >> sub) & 1);
    want[e] = 0.5f * static_cast<float>(kSc[sub]) * q - 0.25f * static_cast<float>(kMin[sub]);
  }
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q6_K) {
  const Bytes ql = pattern(128, 37, 11), qh = pattern(64, 29, 7);
  Bytes b = ql;
  append(&b, qh);
  for (int i = 0; i < 16; ++i) b.push_back(static_cast<uint8_t>(static_cast<int8_t>(9 * i - 70)));
  put_half(&b, kHalf0_25);
  ASSERT_EQ(b.size(), 210u);
  const std::vector<float> y = dequant(GgmlType::kQ6_K, b, 256);
  EXPECT_EQ(y[0], -472.5f);  // 0.25·(−70)·((11 | 3<<4) − 32)
  EXPECT_EQ(y[100], 52.0f);
  EXPECT_EQ(y[255], -422.5f);  // 0.25·65·(6 − 32)
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) {
    // Per 128-element half: 64 ql bytes (elements w and w+64 share a byte, low then high
    // nibble, for w < 64) and 32 qh bytes (four 2-bit fields for w, w+32, w+64, w+96).
    const int half = e / 128, w = e % 128, quarter = w / 32, l = w % 32;
    const uint8_t lo_byte = ql[half * 64 + (quarter % 2) * 32 + l];
    const int lo = quarter < 2 ? (lo_byte & 0x0F) : (lo_byte >> 4);
    const int hi = (qh[half * 32 + l] >> (2 * quarter)) & 3;
    const int scale = 9 * (e / 16) - 70;
    want[e] = 0.25f * static_cast<float>(scale) * static_cast<float>((lo | (hi << 4)) - 32);
  }
  expect_bits_eq(y, want);
}

TEST(Dequantize, Q8_K) {
  const float d = 0.75f;
  Bytes b(4);
  std::memcpy(b.data(), &d, 4);
  for (int j = 0; j < 256; ++j) b.push_back(static_cast<uint8_t>(static_cast<int8_t>(j - 128)));
  b.resize(292, 0xAB);  // bsums: not used for dequantization
  const std::vector<float> y = dequant(GgmlType::kQ8_K, b, 256);
  EXPECT_EQ(y[0], -96.0f);
  EXPECT_EQ(y[255], 95.25f);
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[e] = 0.75f * static_cast<float>(e - 128);
  expect_bits_eq(y, want);
}

TEST(Dequantize, F16AllBitPatterns) {
  // Every binary16 value against Eigen's independent half → float conversion.
  Bytes b(2 * 65536);
  for (int h = 0; h < 65536; ++h) {
    b[2 * h] = static_cast<uint8_t>(h & 0xFF);
    b[2 * h + 1] = static_cast<uint8_t>(h >> 8);
  }
  const std::vector<float> y = dequant(GgmlType::kF16, b, 65536);
  EXPECT_EQ(y[0x3C00], 1.0f);
  EXPECT_EQ(y[0xC000], -2.0f);
  EXPECT_EQ(y[0x0001], std::ldexp(1.0f, -24));         // smallest subnormal
  EXPECT_EQ(y[0x03FF], 1023 * std::ldexp(1.0f, -24));  // largest subnormal
  EXPECT_EQ(y[0x7BFF], 65504.0f);
  EXPECT_TRUE(std::isinf(y[0xFC00]) && y[0xFC00] < 0);
  EXPECT_TRUE(std::signbit(y[0x8000]) && y[0x8000] == 0.0f);
  for (int h = 0; h < 65536; ++h) {
    const float want =
        static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(static_cast<uint16_t>(h)));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(y[h])) << std::hex << h;
    } else {
      ASSERT_EQ(y[h], want) << std::hex << h;
      ASSERT_EQ(std::signbit(y[h]), std::signbit(want)) << std::hex << h;
    }
  }
}

TEST(Dequantize, BF16AndF32) {
  const Bytes bf = {0x80, 0x3F, 0x40, 0xC0, 0x80, 0x7F, 0x01, 0x00};
  const std::vector<float> y = dequant(GgmlType::kBF16, bf, 4);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -3.0f);
  EXPECT_TRUE(std::isinf(y[2]));
  EXPECT_EQ(y[3], std::ldexp(1.0f, -133));  // smallest bf16 subnormal
  const float vals[3] = {1.5f, -0.0f, 3e38f};
  Bytes f(sizeof vals);
  std::memcpy(f.data(), vals, sizeof vals);
  expect_bits_eq(dequant(GgmlType::kF32, f, 3), {1.5f, -0.0f, 3e38f});
}

TEST(Dequantize, ReadsUnalignedBlocks) {
  Bytes b = {0xEE};  // shifts the block to an odd address
  put_half(&b, kHalf0_5);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  std::vector<float> y(32);
  dequantize_row(GgmlType::kQ4_0, b.data() + 1, y.data(), 32);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[16], 3.5f);
}

TEST(Dequantize, RowsFollowTheRowMapAndMatchSerialDecoding) {
  // A 64 × 2048 q4_K matrix of random blocks (above the parallel threshold).
  const int rows = 64, cols = 2048;
  const uint64_t row_bytes = ggml_row_bytes(GgmlType::kQ4_K, cols);
  std::mt19937 rng(7);
  Bytes data(rows * row_bytes);
  for (uint8_t& x : data) x = static_cast<uint8_t>(rng());
  for (uint64_t blk = 0; blk < data.size() / 144; ++blk) {  // keep d, dmin finite: |v| < 2
    data[blk * 144 + 1] &= 0x3B;
    data[blk * 144 + 3] &= 0x3B;
  }
  std::vector<int64_t> order(rows);
  for (int r = 0; r < rows; ++r) order[r] = (r * 37) % rows;  // 37 is coprime to 64
  std::vector<float> out(rows * cols);
  dequantize_rows(GgmlType::kQ4_K, data.data(), rows, cols, out.data(), &order);
  for (int r = 0; r < rows; ++r) {
    std::vector<float> one(cols);
    dequantize_row(GgmlType::kQ4_K, data.data() + r * row_bytes, one.data(), cols);
    const std::vector<float> got(out.begin() + order[r] * cols,
                                 out.begin() + (order[r] + 1) * cols);
    expect_bits_eq(got, one);
  }
}

TEST(Dequantize, RejectsBadArguments) {
  const Bytes zeros(4096, 0);
  std::vector<float> out(1024);
  EXPECT_LKV_ERROR(dequantize_row(GgmlType::kIQ2_XS, zeros.data(), out.data(), 256),
                   StatusCode::kUnsupported, "dequantization of ggml type iq2_xs is not supported");
  EXPECT_LKV_ERROR(dequantize_row(GgmlType::kQ4_0, zeros.data(), out.data(), 48),
                   StatusCode::kInvalidArgument, "48 elements of q4_0 are not a whole number");
  const std::vector<int64_t> not_perm = {0, 0};
  EXPECT_LKV_ERROR(dequantize_rows(GgmlType::kF32, zeros.data(), 2, 4, out.data(), &not_perm),
                   StatusCode::kInvalidArgument, "not a permutation");
  const std::vector<int64_t> short_map = {0};
  EXPECT_LKV_ERROR(dequantize_rows(GgmlType::kF32, zeros.data(), 2, 4, out.data(), &short_map),
                   StatusCode::kInvalidArgument, "row map has 1 entries for 2 rows");
  EXPECT_TRUE(ggml_can_dequantize(GgmlType::kQ6_K));
  EXPECT_FALSE(ggml_can_dequantize(GgmlType::kIQ4_NL));
}

}  // namespace
}  // namespace latentkv
