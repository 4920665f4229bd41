#include "latentkv/reference/latent_store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "latentkv/status.h"

namespace latentkv {
namespace {

std::vector<float> random_latents(int64_t n, int rank, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> h(static_cast<size_t>(n * rank));
  for (auto& v : h) v = normal(rng);
  return h;
}

// What the policy says token t of T must hold, bit for bit: quantize_latent(fp16(h)) decoded when
// it is among the first quantized(T) tokens, fp16(h) otherwise (fp32 h in exact mode).
std::vector<float> expected_latent(const float* h, int rank, const QuantConfig& cfg,
                                   bool quantized) {
  std::vector<float> out(rank);
  if (cfg.bits == kExactLatentBits) {
    std::copy(h, h + rank, out.begin());
    return out;
  }
  std::vector<float> half(rank);
  for (int c = 0; c < rank; ++c) half[c] = half_bits_to_float(float_to_half_bits(h[c]));
  if (!quantized || cfg.bits == 16) return half;
  std::vector<uint8_t> codes(latent_code_bytes(rank, cfg.bits));
  std::vector<uint16_t> scale(rank), zero(rank);
  quantize_latent(half.data(), rank, cfg, codes.data(), scale.data(), zero.data());
  dequantize_latent(codes.data(), scale.data(), zero.data(), rank, cfg, out.data());
  return out;
}

int64_t expected_quantized(int64_t total, int residual, int chunk) {
  return total < residual ? 0 : (total - residual) / chunk * chunk;
}

TEST(LatentStore, PolicyAndContentBitExactForEveryFormat) {
  const int rank = 24;
  for (int bits : {2, 3, 4, 8, 16, kExactLatentBits}) {
    for (int residual : {0, 1, 5}) {
      for (int chunk : {1, 4}) {
        for (int64_t total : {1, 2, 17, 113}) {
          QuantConfig cfg;
          cfg.bits = bits;
          cfg.residual = residual;
          cfg.quant_group = bits == 3 ? 8 : 0;
          const std::vector<float> h = random_latents(total, rank, 5 + bits + residual);
          // Appending all at once, token by token, or in uneven pieces gives the same state.
          for (int split : {0, 1, 7}) {
            LatentStore store(rank, cfg, chunk);
            int64_t done = 0;
            while (done < total) {
              const int64_t n = split == 0 ? total : std::min<int64_t>(split, total - done);
              store.append(h.data() + done * rank, n, rank);
              done += n;
              ASSERT_EQ(store.quantized(), expected_quantized(done, residual, chunk));
              ASSERT_EQ(store.window(), done - store.quantized());
            }
            std::vector<float> out(static_cast<size_t>(total * rank));
            store.dequantize(out.data(), rank);
            for (int64_t t = 0; t < total; ++t) {
              const std::vector<float> want =
                  expected_latent(h.data() + t * rank, rank, cfg, t < store.quantized());
              ASSERT_EQ(0, std::memcmp(want.data(), out.data() + t * rank, rank * sizeof(float)))
                  << "bits " << bits << " residual " << residual << " chunk " << chunk << " total "
                  << total << " split " << split << " token " << t;
            }
            const int64_t q = store.quantized();
            const int64_t want_bytes =
                bits == kExactLatentBits
                    ? total * 4 * rank
                    : q * latent_bytes_per_token(rank, cfg) + (total - q) * 2 * rank;
            EXPECT_EQ(store.bytes_held(), want_bytes);
          }
        }
      }
    }
  }
}

TEST(LatentStore, StoredCodesAreTheQuantizerOutput) {
  const int rank = 40;
  QuantConfig cfg;
  cfg.bits = 3;
  cfg.residual = 2;
  const std::vector<float> h = random_latents(9, rank, 3);
  LatentStore store(rank, cfg, 1);
  store.append(h.data(), 9, rank);
  ASSERT_EQ(store.quantized(), 7);
  std::vector<float> half(rank);
  std::vector<uint8_t> codes(latent_code_bytes(rank, 3));
  uint16_t scale, zero;
  for (int t = 0; t < 7; ++t) {
    for (int c = 0; c < rank; ++c)
      half[c] = half_bits_to_float(float_to_half_bits(h[t * rank + c]));
    quantize_latent(half.data(), rank, cfg, codes.data(), &scale, &zero);
    EXPECT_EQ(0, std::memcmp(codes.data(), store.codes(t), codes.size())) << "token " << t;
    EXPECT_EQ(scale, store.scales(t)[0]);
    EXPECT_EQ(zero, store.zeros(t)[0]);
  }
}

TEST(LatentStore, BytesPerTokenByHand) {
  QuantConfig q3;
  q3.bits = 3;
  q3.quant_group = 8;
  LatentStore a(40, q3, 1);
  EXPECT_EQ(a.quantized_bytes_per_token(), 15 + 4 * 5);  // ceil(120/8) code bytes, 5 pairs
  EXPECT_EQ(a.window_bytes_per_token(), 80);
  QuantConfig fp16;
  LatentStore b(13, fp16, 1);
  EXPECT_EQ(b.quantized_bytes_per_token(), 26);
  QuantConfig exact;
  exact.bits = kExactLatentBits;
  LatentStore c(13, exact, 1);
  EXPECT_EQ(c.quantized_bytes_per_token(), 52);
  EXPECT_EQ(c.window_bytes_per_token(), 52);
}

TEST(LatentStore, ClearForgetsEverything) {
  QuantConfig cfg;
  cfg.bits = 4;
  cfg.residual = 3;
  const std::vector<float> h = random_latents(10, 8, 1);
  LatentStore store(8, cfg, 2);
  store.append(h.data(), 10, 8);
  store.clear();
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(store.bytes_held(), 0);
  store.append(h.data(), 4, 8);
  EXPECT_EQ(store.quantized(), 0);
  EXPECT_EQ(store.window(), 4);
}

TEST(LatentStore, RejectsBadConfigs) {
  QuantConfig cfg;
  EXPECT_THROW(LatentStore(16, cfg, 0), Error);  // chunk 0
  cfg.bits = 5;
  EXPECT_THROW(LatentStore(16, cfg, 1), Error);
  cfg.bits = 4;
  cfg.quant_group = 5;
  EXPECT_THROW(LatentStore(16, cfg, 1), Error);
  cfg.bits = kExactLatentBits;
  EXPECT_THROW(LatentStore(16, cfg, 1), Error);  // exact mode takes no quant_group
  cfg.quant_group = 0;
  cfg.residual = -1;
  EXPECT_THROW(LatentStore(16, cfg, 1), Error);
  cfg.residual = 0;
  EXPECT_THROW(LatentStore(0, cfg, 1), Error);
}

TEST(LatentStore, RejectsNonFiniteAndOverflowingLatentsWithoutStoring) {
  QuantConfig cfg;
  cfg.bits = 4;
  cfg.residual = 0;
  LatentStore store(4, cfg, 1);
  const float good[4] = {1, 2, 3, 4};
  store.append(good, 1, 4);
  const float nan[8] = {1, 2, 3, 4, 1, std::nanf(""), 3, 4};
  try {
    store.append(nan, 2, 4);
    FAIL() << "NaN latent accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kNumericalError);
    EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
  }
  const float big[4] = {1, 70000.0f, 3, 4};  // fp16 would store infinity
  try {
    store.append(big, 1, 4);
    FAIL() << "latent outside the fp16 range accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kNumericalError);
    EXPECT_NE(std::string(e.what()).find("fp16 range"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store.size(), 1);
  QuantConfig exact;
  exact.bits = kExactLatentBits;
  LatentStore wide(4, exact, 1);
  wide.append(big, 1, 4);  // fp32 mode has no fp16 limit
  EXPECT_EQ(wide.size(), 1);
}

}  // namespace
}  // namespace latentkv
