// CPU tests of reference::latent_gather: caches filled by several reference appends (so the
// residual ring wraps and tokens leave it in chunks) are read back and checked against
//   * the appended latents: fp16-rounded exactly for the ring and for bits = 16, within half a
//     quantization step for page codes;
//   * an independent dequantization of the stored codes (unpack_code, the (scale, zero) pair of
//     the channel's quant group, fma, fp16 rounding): bit-exact;
//   * the latent decode reference: with zero key factors every score is 0, so its output is the
//     mean of the dequantized value latents it reads.
// Plus the support checks.
#include "latentkv/attention/latent_gather.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "attention/latent_cache_fixture.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_append.h"
#include "latentkv/reference/latent_decode.h"
#include "latentkv/reference/latent_gather.h"
#include "latentkv/rope.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

struct GatherCase {
  const char* name;
  int bits, quant_group, num_groups, rank_k, rank_v, page_size;
  LatentWindowPolicy window;
};

/// A cache filled by appends of random sizes, with the appended fp32 latents
/// ([b][t][num_groups*(rank_k + rank_v)], key groups first).
struct Filled {
  testing::HostLatentCache cache;
  std::vector<std::vector<float>> latents;
  int width = 0;
};

Filled fill(const GatherCase& c, const std::vector<int>& lens, std::mt19937& rng) {
  QuantConfig quant;
  quant.bits = c.bits;
  quant.quant_group = c.quant_group;
  Filled f;
  f.cache = testing::make_empty_cache(lens, c.num_groups, c.rank_k, c.rank_v, quant, c.page_size,
                                      c.window, rng);
  f.width = c.num_groups * (c.rank_k + c.rank_v);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int batch = static_cast<int>(lens.size());
  f.latents.resize(batch);
  for (int b = 0; b < batch; ++b) {
    f.latents[b].resize(static_cast<size_t>(lens[b]) * f.width);
    for (auto& x : f.latents[b]) x = nd(rng);
  }
  std::uniform_int_distribution<int> step(0, 40);
  while (true) {
    std::vector<int32_t> indptr(1, 0);
    std::vector<float> rows;
    for (int b = 0; b < batch; ++b) {
      const int at = f.cache.seq_lens[b], n = std::min(step(rng), lens[b] - at);
      rows.insert(rows.end(), f.latents[b].begin() + static_cast<size_t>(at) * f.width,
                  f.latents[b].begin() + static_cast<size_t>(at + n) * f.width);
      indptr.push_back(indptr.back() + n);
    }
    if (indptr.back() == 0) {
      bool done = true;
      for (int b = 0; b < batch; ++b) done = done && f.cache.seq_lens[b] == lens[b];
      if (done) break;
      continue;
    }
    LatentAppendParams ap;
    ap.batch_size = batch;
    ap.num_groups = c.num_groups;
    ap.d_model = 1;
    ap.num_tokens = indptr.back();
    ap.append_indptr = indptr.data();
    ap.k = f.cache.kview();
    ap.v = f.cache.vview();
    ap.window = c.window;
    ap.pages = f.cache.pages();
    ap.seq_lens_out = f.cache.seq_lens.data();
    reference::latent_append_store(ap, rows.data(), f.width);
  }
  return f;
}

LatentGatherParams gather_params(Filled& f, const GatherCase& c, bool v, int b) {
  LatentGatherParams p;
  p.num_groups = c.num_groups;
  p.cache = v ? f.cache.vview() : f.cache.kview();
  p.window = c.window;
  p.pages = f.cache.indices.data() + f.cache.indptr[b];
  p.page_size = c.page_size;
  p.seq_slot = b;
  p.num_tokens = f.cache.seq_lens[b];
  p.out_stride = int64_t{c.num_groups} * p.cache.rank + 5;
  return p;
}

class LatentGatherRef : public ::testing::TestWithParam<GatherCase> {};

TEST_P(LatentGatherRef, MatchesStoredLatents) {
  const GatherCase& c = GetParam();
  std::mt19937 rng(77 + c.bits + c.rank_k);
  const std::vector<int> lens = {1, 17, 113, 300};
  Filled f = fill(c, lens, rng);
  for (int kvsel = 0; kvsel < 2; ++kvsel) {
    for (int b = 0; b < static_cast<int>(lens.size()); ++b) {
      SCOPED_TRACE(::testing::Message() << (kvsel ? "V" : "K") << " sequence " << b);
      LatentGatherParams p = gather_params(f, c, kvsel == 1, b);
      const LatentCacheView& view = p.cache;
      const int rank = view.rank, T = lens[b];
      ASSERT_EQ(p.num_tokens, T);
      std::vector<uint16_t> out(static_cast<size_t>(T) * p.out_stride, 0xABCD);
      p.out = out.data();
      reference::latent_gather(p);
      const int64_t qlen = c.window.quantized_len(T);
      const int qg = c.quant_group ? c.quant_group : rank;
      for (int t = 0; t < T; ++t) {
        for (int g = 0; g < c.num_groups; ++g) {
          const float* x = f.latents[b].data() + static_cast<size_t>(t) * f.width +
                           (kvsel ? c.num_groups * c.rank_k : 0) + g * rank;
          const uint16_t* got = out.data() + t * p.out_stride + g * rank;
          const int64_t page = p.pages[t / c.page_size], slot = t % c.page_size;
          const auto* codes = static_cast<const uint8_t*>(view.codes) + page * view.page_stride +
                              g * view.group_stride + slot * view.token_stride;
          const auto* sz = static_cast<const uint8_t*>(view.scale_zero) +
                           page * view.sz_page_stride + g * view.sz_group_stride +
                           slot * view.sz_token_stride;
          for (int ch = 0; ch < rank; ++ch) {
            const uint16_t x16 = float_to_half_bits(x[ch]);
            if (t >= qlen || c.bits == 16) {
              ASSERT_EQ(got[ch], x16) << "t " << t << " group " << g << " channel " << ch;
              continue;
            }
            uint16_t scale_bits, zero_bits;
            std::memcpy(&scale_bits, sz + 4 * (ch / qg), 2);
            std::memcpy(&zero_bits, sz + 4 * (ch / qg) + 2, 2);
            const float scale = half_bits_to_float(scale_bits),
                        zero = half_bits_to_float(zero_bits);
            const float code = unpack_code(codes, ch, c.bits);
            ASSERT_EQ(got[ch], float_to_half_bits(std::fma(code, scale, zero)))
                << "t " << t << " group " << g << " channel " << ch;
            // Half a step, plus the fp16 roundings of zero, scale (over 2^bits steps) and x̂.
            const double xf = half_bits_to_float(x16),
                         err = std::fabs(half_bits_to_float(got[ch]) - xf);
            ASSERT_LE(err,
                      0.5 * scale +
                          std::ldexp(std::fabs(xf) + std::fabs(zero) + (1 << c.bits) * scale, -10))
                << "t " << t << " group " << g << " channel " << ch;
          }
          for (int e = c.num_groups * rank; e < p.out_stride; ++e)
            ASSERT_EQ(out[t * p.out_stride + e], 0xABCD) << "row padding written";
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Caches, LatentGatherRef,
    ::testing::Values(GatherCase{"fp16_page1", 16, 0, 1, 16, 32, 1, {0, 1}},
                      GatherCase{"fp16_window_page16", 16, 0, 3, 64, 32, 16, {32, 16}},
                      GatherCase{"b4_page16", 4, 0, 3, 128, 48, 16, {0, 1}},
                      GatherCase{"b4_window_page1", 4, 0, 1, 32, 16, 1, {32, 16}},
                      GatherCase{"b3_window_page16", 3, 0, 3, 48, 80, 16, {32, 16}},
                      GatherCase{"b2_page1", 2, 0, 1, 128, 16, 1, {0, 1}},
                      GatherCase{"b8_qg16_window_page16", 8, 16, 3, 64, 32, 16, {5, 3}},
                      GatherCase{"b4_qg32_window_page1", 4, 32, 1, 96, 64, 1, {32, 16}}),
    [](const ::testing::TestParamInfo<GatherCase>& info) { return std::string(info.param.name); });

// With zero key factors every key is 0, so the latent decode reference (exact mode) returns the
// mean over the sequence of the dequantized value latents it reads: the gathered rows must average
// to it up to their fp16 rounding.
TEST(LatentGatherRef, AgreesWithDecodeReference) {
  for (const GatherCase& c : {GatherCase{"fp16", 16, 0, 3, 16, 64, 16, {32, 16}},
                              GatherCase{"b4", 4, 0, 2, 16, 128, 1, {32, 16}},
                              GatherCase{"b2", 2, 0, 1, 16, 32, 16, {0, 1}}}) {
    SCOPED_TRACE(c.name);
    std::mt19937 rng(5 + c.bits);
    const std::vector<int> lens = {1, 40, 113, 17};
    Filled f = fill(c, lens, rng);
    const int batch = static_cast<int>(lens.size()), hd = 128, heads = c.num_groups;
    std::vector<uint16_t> b_k(static_cast<size_t>(heads) * hd * c.rank_k, 0),
        q(batch * heads * hd, 0x3C00);
    std::vector<int8_t> b_i8(b_k.size(), 0);
    std::vector<float> b_i8_scale(static_cast<size_t>(heads) * hd, 1.0f);
    std::vector<int32_t> rowsum(b_i8_scale.size(), 0), group_heads(heads);
    for (int h = 0; h < heads; ++h) group_heads[h] = h;
    RopeConfig rope;
    const std::vector<double> inv_freq = rope_inv_freq(rope, hd);
    std::vector<float> out(static_cast<size_t>(batch) * heads * c.rank_v);
    LatentDecodeParams dp;
    dp.batch_size = batch;
    dp.num_qo_heads = heads;
    dp.num_kv_heads = heads;
    dp.head_dim = hd;
    dp.group_size = 1;
    dp.group_heads = group_heads.data();
    dp.q = q.data();
    dp.q_stride_batch = int64_t{heads} * hd;
    dp.q_stride_head = hd;
    dp.b_k = b_k.data();
    dp.b_k_i8 = b_i8.data();
    dp.b_k_i8_scale = b_i8_scale.data();
    dp.b_k_i8_rowsum = rowsum.data();
    dp.inv_freq = inv_freq.data();
    dp.sm_scale = 0.1f;
    dp.k = f.cache.kview();
    dp.v = f.cache.vview();
    dp.window = c.window;
    dp.pages = f.cache.pages();
    dp.out = out.data();
    dp.out_stride_batch = int64_t{heads} * c.rank_v;
    dp.out_stride_head = c.rank_v;
    const reference::DecodeValues want = reference::latent_decode_values(dp);
    for (int b = 0; b < batch; ++b) {
      LatentGatherParams p = gather_params(f, c, true, b);
      std::vector<uint16_t> rows(static_cast<size_t>(lens[b]) * p.out_stride);
      p.out = rows.data();
      reference::latent_gather(p);
      for (int g = 0; g < heads; ++g)
        for (int ch = 0; ch < c.rank_v; ++ch) {
          double sum = 0.0, abs_sum = 0.0;
          for (int t = 0; t < lens[b]; ++t) {
            const double x = half_bits_to_float(rows[t * p.out_stride + g * c.rank_v + ch]);
            sum += x;
            abs_sum += std::fabs(x);
          }
          const double w = want.out[(static_cast<size_t>(b) * heads + g) * c.rank_v + ch];
          ASSERT_NEAR(sum / lens[b], w, std::ldexp(abs_sum / lens[b], -10) + 1e-9)
              << "sequence " << b << " group " << g << " channel " << ch;
        }
    }
  }
}

TEST(LatentGatherSupport, RejectsBadParams) {
  std::mt19937 rng(3);
  const GatherCase c{"b4", 4, 0, 2, 32, 32, 16, {32, 16}};
  Filled f = fill(c, {60}, rng);
  LatentGatherParams p = gather_params(f, c, false, 0);
  std::vector<uint16_t> out(static_cast<size_t>(60) * p.out_stride);
  p.out = out.data();
  EXPECT_TRUE(latent_gather_is_supported(p).ok());
  const auto code = [&](auto edit) {
    LatentGatherParams b = p;
    edit(b);
    return latent_gather_is_supported(b).code();
  };
  EXPECT_EQ(code([](auto& b) { b.num_groups = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.cache.rank = 24; }), StatusCode::kUnsupported);
  EXPECT_EQ(code([](auto& b) { b.cache.bits = 5; }), StatusCode::kUnsupported);
  EXPECT_EQ(code([](auto& b) { b.cache.quant_group = 12; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.window.chunk = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.page_size = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.num_tokens = -1; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.out_stride = 63; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.cache.ring = nullptr; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.cache.scale_zero = nullptr; }), StatusCode::kInvalidArgument);
  // Null pointers that the length does not need are fine: 20 tokens all sit in the window.
  EXPECT_EQ(code([](auto& b) {
              b.num_tokens = 20;
              b.cache.codes = b.cache.scale_zero = nullptr;
              b.pages = nullptr;
            }),
            StatusCode::kOk);
  LatentGatherParams b = p;
  b.out = nullptr;
  EXPECT_LKV_ERROR(reference::latent_gather(b), StatusCode::kInvalidArgument, "out is null");
}

}  // namespace
}  // namespace latentkv
