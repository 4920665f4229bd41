// CPU tests of the engine-facing decode API: support checks with their reasons, planning,
// cache layout, the residual-window policy (against the CPU LatentStore), and the int8 key
// factors and e4m3 folded factors (accuracy against the 4-bit latent error they sit next to).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attention/split_planner.h"
#include "latent_cache_fixture.h"
#include "latent_decode_layout.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/attention/paged_decode.h"
#include "latentkv/attention/value_projection.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_decode.h"
#include "latentkv/reference/latent_store.h"
#include "latentkv/rope.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

// A consistent latent decode configuration (Llama-2-7B shape, group size 4, 50 %, 4-bit), with
// dummy non-null pointers: support checks and plans never dereference them.
struct Config {
  std::vector<int32_t> dummy = std::vector<int32_t>(64, 0);
  LatentCacheLayout kl, vl;
  LatentDecodeParams p;
  explicit Config(int bits = 4, int rank = 256, int rank_v = 0, int group_size = 4) {
    if (rank_v == 0) rank_v = rank;
    QuantConfig q;
    q.bits = bits;
    LatentWindowPolicy w;
    if (bits < 16) {
      w.residual = 128;
      w.chunk = 16;
    }
    kl = make_latent_cache_layout(32 / group_size, rank, q, 16, 100, w, 1);
    vl = make_latent_cache_layout(32 / group_size, rank_v, q, 16, 100, w, 1);
    void* ptr = dummy.data();
    p.batch_size = 1;
    p.num_qo_heads = 32;
    p.num_kv_heads = 32;
    p.head_dim = 128;
    p.group_size = group_size;
    p.group_heads = dummy.data();
    p.q = ptr;
    p.b_k = reinterpret_cast<const uint16_t*>(ptr);
    p.b_k_i8 = reinterpret_cast<const int8_t*>(ptr);
    p.b_k_i8_scale = reinterpret_cast<const float*>(ptr);
    p.b_k_i8_rowsum = dummy.data();
    p.inv_freq = reinterpret_cast<const double*>(ptr);
    p.sm_scale = 0.088f;
    p.k = kl.view;
    p.v = vl.view;
    for (LatentCacheView* v : {&p.k, &p.v}) {
      v->codes = ptr;
      v->scale_zero = ptr;
      v->ring = ptr;
    }
    p.window = w;
    p.pages.indptr = p.pages.indices = p.pages.seq_lens = dummy.data();
    p.pages.page_size = 16;
    p.out = ptr;
    p.out_stride_batch = 32 * rank_v;
    p.out_stride_head = rank_v;
  }
};

TEST(LatentDecodeSupport, AcceptsTheBenchmarkShapes) {
  for (int bits : {16, 4, 3, 2})
    for (int rank : {128, 256}) {
      Config c(bits, rank);
      EXPECT_TRUE(latent_decode_is_supported(c.p).ok())
          << bits << " " << rank << ": " << latent_decode_is_supported(c.p).to_string();
    }
}

TEST(LatentDecodeSupport, TakesGroupsOfThree) {
  // The default model's shape: 9 query heads over 3 KV heads in one joint group, head_dim 64.
  Config c(3, 96, 64, 3);
  c.p.num_qo_heads = 9;
  c.p.num_kv_heads = 3;
  c.p.head_dim = 64;
  EXPECT_TRUE(latent_decode_is_supported(c.p).ok()) << latent_decode_is_supported(c.p).to_string();
  DecodePlan plan;
  ASSERT_TRUE(latent_decode_plan(c.p, 4096, 132, &plan).ok());
  EXPECT_EQ(plan.heads_per_cta, 3);  // the whole group: 9 query rows in one CTA
  c.p.num_kv_heads = 6;              // two groups of 3 at GQA ratio 2
  c.p.num_qo_heads = 12;
  EXPECT_TRUE(latent_decode_is_supported(c.p).ok()) << latent_decode_is_supported(c.p).to_string();
  // GQA ratio 8: 3 heads would need 24 query rows, so one head per CTA; MHA (the folded form)
  // takes 1, 2 or 4 heads per CTA.
  c.p.num_qo_heads = 48;
  ASSERT_TRUE(latent_decode_plan(c.p, 4096, 132, &plan).ok());
  EXPECT_EQ(plan.heads_per_cta, 1);
  c.p.num_qo_heads = 6;
  ASSERT_TRUE(latent_decode_plan(c.p, 4096, 132, &plan).ok());
  EXPECT_EQ(plan.heads_per_cta, 1);
}

TEST(LatentDecodeSupport, RejectsWithAReason) {
  struct Bad {
    const char* what;
    void (*edit)(LatentDecodeParams&);
    StatusCode code;
  };
  const Bad cases[] = {
      {"head_dim", [](LatentDecodeParams& p) { p.head_dim = 96; }, StatusCode::kUnsupported},
      {"group_size", [](LatentDecodeParams& p) { p.group_size = 16; }, StatusCode::kUnsupported},
      {"group_size",
       [](LatentDecodeParams& p) {
         p.num_kv_heads = 6;
         p.num_qo_heads = 12;
       },
       StatusCode::kInvalidArgument},
      {"GQA ratio",
       [](LatentDecodeParams& p) {
         p.num_kv_heads = 4;
         p.num_qo_heads = 64;
       },
       StatusCode::kUnsupported},
      {"key bits", [](LatentDecodeParams& p) { p.v.bits = 2; }, StatusCode::kUnsupported},
      {"bits 5", [](LatentDecodeParams& p) { p.k.bits = p.v.bits = 5; }, StatusCode::kUnsupported},
      {"quant_group", [](LatentDecodeParams& p) { p.k.quant_group = 64; },
       StatusCode::kUnsupported},
      {"multiple of 16", [](LatentDecodeParams& p) { p.k.rank = 72; }, StatusCode::kUnsupported},
      {"batch_size", [](LatentDecodeParams& p) { p.batch_size = 0; }, StatusCode::kUnsupported},
      {"batch_size", [](LatentDecodeParams& p) { p.batch_size = 300; }, StatusCode::kUnsupported},
      {"page_size", [](LatentDecodeParams& p) { p.pages.page_size = 0; },
       StatusCode::kInvalidArgument},
      {"ring is null", [](LatentDecodeParams& p) { p.k.ring = nullptr; },
       StatusCode::kInvalidArgument},
      {"int8 key factors",
       [](LatentDecodeParams& p) {
         p.num_qo_heads = 64;  // GQA: the key rebuild path reads the int8 factors
         p.b_k_i8 = nullptr;
       },
       StatusCode::kInvalidArgument},
      {"b_k", [](LatentDecodeParams& p) { p.b_k = nullptr; },  // MHA folds the fp16 factors
       StatusCode::kInvalidArgument},
      {"pointer is null", [](LatentDecodeParams& p) { p.q = nullptr; },
       StatusCode::kInvalidArgument},
      {"16 bytes", [](LatentDecodeParams& p) { p.k.token_stride = 8; },
       StatusCode::kInvalidArgument},
      {"q_dtype", [](LatentDecodeParams& p) { p.q_dtype = DType::kF32; }, StatusCode::kUnsupported},
      {"sm_scale", [](LatentDecodeParams& p) { p.sm_scale = 0.0f; }, StatusCode::kInvalidArgument},
      {"b_v",  // 2 bytes past an aligned pointer
       [](LatentDecodeParams& p) { p.b_v = static_cast<const uint16_t*>(p.q) + 1; },
       StatusCode::kInvalidArgument},
  };
  for (const Bad& b : cases) {
    Config c;
    b.edit(c.p);
    const Status st = latent_decode_is_supported(c.p);
    EXPECT_EQ(st.code(), b.code) << b.what << ": " << st.to_string();
    EXPECT_NE(st.message().find(b.what), std::string::npos) << st.message();
  }
  // Value latents wider than the warps' accumulators, key factors beyond the registers, and fp16
  // tiles beyond shared memory.
  const Status wide_v = latent_decode_is_supported(Config(4, 256, 1024, 8).p);
  EXPECT_EQ(wide_v.code(), StatusCode::kUnsupported);
  EXPECT_NE(wide_v.message().find("rank_v"), std::string::npos) << wide_v.message();
  const Status wide_k = latent_decode_is_supported(Config(16, 1024, 256, 8).p);
  EXPECT_EQ(wide_k.code(), StatusCode::kUnsupported);
  EXPECT_NE(wide_k.message().find("register-resident"), std::string::npos) << wide_k.message();
  // The fused up-projection merges at most 2048 latent values of one KV head's query heads.
  Config up(4, 256, 512);
  up.p.num_qo_heads = 256;  // GQA ratio 8
  up.p.b_v = reinterpret_cast<const uint16_t*>(up.p.q);
  const Status up_st = latent_decode_is_supported(up.p);
  EXPECT_EQ(up_st.code(), StatusCode::kUnsupported);
  EXPECT_NE(up_st.message().find("ratio*rank_v"), std::string::npos) << up_st.message();
  up.p.num_qo_heads = 128;  // ratio 4: 4 x 512 fits (without the fp16 window kernel's tiles)
  up.p.window = LatentWindowPolicy{};
  EXPECT_TRUE(latent_decode_is_supported(up.p).ok())
      << latent_decode_is_supported(up.p).to_string();
  const Status smem = latent_decode_is_supported(Config(16, 512, 512, 8).p);
  EXPECT_EQ(smem.code(), StatusCode::kUnsupported);
  EXPECT_NE(smem.message().find("shared memory"), std::string::npos) << smem.message();
}

TEST(LatentDecodePlan, SplitsLongContextsAndSizesTheWorkspace) {
  Config c(4, 256);
  DecodePlan plan;
  ASSERT_TRUE(latent_decode_plan(c.p, 65536, 132, &plan).ok());
  EXPECT_EQ(plan.heads_per_cta, 4);
  EXPECT_GT(plan.num_splits, 8);
  EXPECT_GE(int64_t{plan.num_splits} * plan.tokens_per_split, 65536);
  EXPECT_EQ(plan.tokens_per_split % 64, 0);
  // Ring of 128 + 16 - 1 tokens: three 64-token slots, as its 3 x 16 CTAs fit one wave.
  EXPECT_EQ(plan.extra_splits, 3);
  // Split partials plus the folded query factors (MHA): fp16 and int8 [32 heads][128][256].
  EXPECT_GE(plan.workspace_bytes,
            int64_t{plan.num_splits + 3} * 32 * (256 + 1) * 4 + 32 * 128 * 256 * 3);
  // Many sequences: one split, and one residual-window slot (its CTAs fill the GPU already).
  c.p.batch_size = 256;
  ASSERT_TRUE(latent_decode_plan(c.p, 4096, 132, &plan).ok());
  EXPECT_EQ(plan.num_splits, 1);
  EXPECT_EQ(plan.extra_splits, 1);
  c.p.batch_size = 4;  // 4 x 16 CTAs per slot: two slots fit 132 SMs
  ASSERT_TRUE(latent_decode_plan(c.p, 4096, 132, &plan).ok());
  EXPECT_EQ(plan.extra_splits, 2);
  EXPECT_EQ(latent_decode_plan(c.p, 200000, 132, &plan).code(), StatusCode::kUnsupported);
  // fp16 latents of rank 256 at group size 4: two CTAs per group.
  Config f(16, 256);
  ASSERT_TRUE(latent_decode_plan(f.p, 1024, 132, &plan).ok());
  EXPECT_EQ(plan.heads_per_cta, 2);
  EXPECT_EQ(plan.extra_splits, 0);
  // One split: with the fused up-projection (b_v) its result goes through the partials too,
  // fp32 [256 sequences][32 heads][256] and their log-sum-exps.
  f.p.batch_size = 256;
  ASSERT_TRUE(latent_decode_plan(f.p, 4096, 132, &plan).ok());
  ASSERT_EQ(plan.num_splits + plan.extra_splits, 1);
  const int64_t direct = plan.workspace_bytes;
  f.p.b_v = reinterpret_cast<const uint16_t*>(f.dummy.data());
  ASSERT_TRUE(latent_decode_plan(f.p, 4096, 132, &plan).ok());
  EXPECT_EQ(plan.workspace_bytes - direct, 256 * 32 * 256 * 4 + 256 * 32 * 4);
  // Most splits, GQA ratio 8: the fused up-projection keeps 4096 merge weights per KV head, so
  // a plan takes at most 512 slots (and still covers the whole context).
  Config g(4, 64, 64, 1);
  g.p.num_qo_heads = 256;
  g.p.b_v = reinterpret_cast<const uint16_t*>(g.dummy.data());
  ASSERT_TRUE(latent_decode_plan(g.p, 131072, 1 << 20, &plan).ok());
  EXPECT_LE((plan.num_splits + plan.extra_splits) * 8, 4096);
  EXPECT_GE(int64_t{plan.num_splits} * plan.tokens_per_split, 131072);
}

// The warpgroup form runs the residual window's CTAs after the page CTAs in one grid, one CTA
// per SM. At b1 4K (4 tiles per split) the 24 window CTAs would queue on the 4 SMs that 16 x 8
// page CTAs leave free; the plan takes fewer splits so that both kinds fit one wave. At 64K a
// page CTA lasts long enough for the free SMs to run the window CTAs in turn.
TEST(LatentDecodePlan, LeavesRoomForTheWindowCtasOfShortContexts) {
  EXPECT_EQ(detail::choose_splits(8, 4096, 64, 1, 132, 2.0).num_splits, 16);
  EXPECT_EQ(detail::choose_splits(8, 4096, 64, 1, 132, 2.0, {24, 3.0}).num_splits, 13);
  EXPECT_EQ(detail::choose_splits(8, 65536, 64, 1, 132, 2.0, {24, 3.0}).num_splits, 16);
  for (int rank : {128, 256}) {
    Config c(4, rank);
    DecodePlan plan;
    ASSERT_TRUE(latent_decode_plan(c.p, 4096, 132, &plan).ok());
    EXPECT_EQ(plan.extra_splits, 3);
    EXPECT_LE((plan.num_splits + plan.extra_splits) * 8, 132) << "rank " << rank;
    EXPECT_GE(int64_t{plan.num_splits} * plan.tokens_per_split, 4096);
    ASSERT_TRUE(latent_decode_plan(c.p, 65536, 132, &plan).ok());
    EXPECT_EQ(plan.num_splits, 16) << "rank " << rank;
  }
}

TEST(LatentDecodePlan, SmallFoldedFragmentsPlanTwoCtasPerSm) {
  // Compiled minimum: folded form with hpc·ks <= 8 only.
  EXPECT_EQ(kernels::latent_min_ctas(true, 2, 4), 2);
  EXPECT_EQ(kernels::latent_min_ctas(true, 1, 8), 2);
  EXPECT_EQ(kernels::latent_min_ctas(true, 4, 4), 1);
  EXPECT_EQ(kernels::latent_min_ctas(false, 1, 2), 1);
  // Shared memory decides whether the second CTA fits.
  EXPECT_EQ(kernels::latent_ctas_per_sm(true, 2, 4, 100 * 1024), 2);
  EXPECT_EQ(kernels::latent_ctas_per_sm(true, 2, 4, 120 * 1024), 1);
  // Llama-2 shape at 64K: group size 2, 75 % (rank 64), 4-bit -> two heads per CTA, 2 k-steps:
  // the splits fill 2 x 132 CTA slots; group size 4, rank 128 stays at one CTA per SM.
  const auto ctas = [](int group_size, int rank) {
    Config c(4, rank, rank, group_size);
    DecodePlan plan;
    EXPECT_TRUE(latent_decode_plan(c.p, 65536, 132, &plan).ok());
    return int64_t{plan.num_splits} * (32 / plan.heads_per_cta);
  };
  EXPECT_GT(ctas(2, 64), 132);
  EXPECT_LE(ctas(2, 64), 2 * 132);
  EXPECT_LE(ctas(4, 128), 132);
}

TEST(LatentCacheLayout, ExactBytesAndPaddedStrides) {
  QuantConfig q;
  q.bits = 3;
  LatentWindowPolicy w;
  w.residual = 128;
  w.chunk = 16;
  const auto l = make_latent_cache_layout(8, 96, q, 16, 10, w, 4);
  EXPECT_EQ(l.code_row_bytes, 36);
  EXPECT_EQ(l.view.token_stride, 48);
  EXPECT_EQ(l.bytes_per_token, 8 * (36 + 4));
  EXPECT_EQ(l.view.ring_group_stride, 2 * 96 * (128 + 16 - 1));
  EXPECT_EQ(l.view.sz_token_stride, 4);
  EXPECT_THROW(make_latent_cache_layout(8, 96, q, 0, 10, w, 4), Error);
  q.bits = 5;
  EXPECT_THROW(make_latent_cache_layout(8, 96, q, 16, 10, w, 4), Error);
}

TEST(LatentWindowPolicy, MatchesTheCpuLatentStore) {
  for (int residual : {0, 1, 8, 128})
    for (int chunk : {1, 4, 16}) {
      QuantConfig q;
      q.bits = 4;
      q.residual = residual;
      LatentStore store(16, q, chunk);
      LatentWindowPolicy w;
      w.residual = residual;
      w.chunk = chunk;
      std::vector<float> h(16, 0.5f);
      for (int t = 1; t <= 300; ++t) {
        store.append(h.data(), 1, 16);
        ASSERT_EQ(store.quantized(), w.quantized_len(t)) << residual << " " << chunk << " " << t;
        ASSERT_LE(t - w.quantized_len(t), std::max(w.ring_capacity(), 0));
      }
    }
}

TEST(KeyFactorsI8, PairScalesRowSumsAndErrorFarBelowFourBitLatents) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int groups = 2, gs = 2, hd = 64, rank = 128;
  std::vector<float> b(static_cast<size_t>(groups) * gs * hd * rank);
  for (auto& x : b) x = nd(rng) / std::sqrt(static_cast<float>(rank));
  const LatentKeyFactorsI8 f = make_key_factors_i8(b, groups, gs, hd, rank);
  for (int64_t row = 0; row < groups * gs * hd; ++row) {
    const int64_t partner = (row % hd) < hd / 2 ? row + hd / 2 : row - hd / 2;
    EXPECT_EQ(f.scale[row], f.scale[partner]);
    int32_t sum = 0;
    for (int c = 0; c < rank; ++c) sum += f.values[row * rank + c];
    EXPECT_EQ(sum, f.rowsum[row]);
  }
  // Keys of random latents: error added by int8 factors vs error of 4-bit latents.
  QuantConfig q4;
  q4.bits = 4;
  double e_lat = 0, e_i8 = 0, norm = 0;
  std::vector<float> h(rank), hq(rank);
  std::vector<uint8_t> codes(rank / 2);
  uint16_t s, z;
  for (int t = 0; t < 64; ++t) {
    for (auto& x : h) x = nd(rng);
    quantize_latent(h.data(), rank, q4, codes.data(), &s, &z);
    dequantize_latent(codes.data(), &s, &z, rank, q4, hq.data());
    for (int64_t row = 0; row < groups * gs * hd; ++row) {
      double k = 0, kq = 0, ki8 = 0;
      for (int c = 0; c < rank; ++c) {
        k += b[row * rank + c] * h[c];
        kq += b[row * rank + c] * hq[c];
        ki8 += f.scale[row] * f.values[row * rank + c] * hq[c];
      }
      norm += k * k;
      e_lat += (kq - k) * (kq - k);
      e_i8 += (ki8 - kq) * (ki8 - kq);
    }
  }
  const double rel_lat = std::sqrt(e_lat / norm), rel_i8 = std::sqrt(e_i8 / norm);
  std::printf("key error: 4-bit latents %.4f, int8 factors %.4f\n", rel_lat, rel_i8);
  ::testing::Test::RecordProperty("key_err_4bit_latents", std::to_string(rel_lat));
  ::testing::Test::RecordProperty("key_err_int8_factors", std::to_string(rel_i8));
  EXPECT_LT(rel_i8, 0.1 * rel_lat);
  EXPECT_THROW(make_key_factors_i8(b, groups, gs, hd, rank + 1), Error);
}

// The Hopper warpgroup kernel's e4m3 folded query factors (emulated by the reference with
// fp8_key_factors): their output error against the exact reference must stay far below what the
// 4-bit latents themselves change (the same latents stored in fp16), and above the int8
// factors' (so the option changes the emulation at all). MHA, one group of 4 heads, c50 ranks.
TEST(FoldedFactorsFp8, OutputErrorFarBelowFourBitLatents) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int heads = 4, hd = 128, rank = 256, rank_v = 64;
  const std::vector<int> lens = {300};
  std::vector<uint16_t> b_k(static_cast<size_t>(heads) * hd * rank), q(heads * hd);
  for (auto& x : b_k) x = float_to_half_bits(nd(rng) / 16.0f);  // keys ~ N(0, 1)
  for (auto& x : q) x = float_to_half_bits(nd(rng));
  std::vector<int32_t> group_heads = {0, 1, 2, 3};
  const std::vector<double> inv_freq = rope_inv_freq(RopeConfig{}, hd);
  std::vector<float> out(static_cast<size_t>(heads) * rank_v);  // checked for presence only
  auto values = [&](int bits, bool emulate, bool fp8) {
    QuantConfig quant;
    quant.bits = bits;
    std::mt19937 cache_rng(3);  // the same latents for every bit width
    testing::HostLatentCache c =
        testing::make_filled_cache(lens, 1, rank, rank_v, quant, 16, {}, 1.0f, cache_rng);
    LatentDecodeParams p;
    p.batch_size = 1;
    p.num_qo_heads = p.num_kv_heads = p.group_size = heads;
    p.head_dim = hd;
    p.group_heads = group_heads.data();
    p.q = q.data();
    p.q_stride_batch = int64_t{heads} * hd;
    p.q_stride_head = hd;
    p.b_k = b_k.data();
    p.inv_freq = inv_freq.data();
    p.sm_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    p.k = c.kview();
    p.v = c.vview();
    p.pages = c.pages();
    p.out = out.data();
    p.out_stride_batch = int64_t{heads} * rank_v;
    p.out_stride_head = rank_v;
    reference::LatentDecodeOptions opt;
    opt.emulate_kernel = emulate;
    opt.fp8_key_factors = fp8;
    return reference::latent_decode_values(p, opt).out;
  };
  using testing::rel_err;
  const std::vector<double> exact4 = values(4, false, false);
  const double e_latents = rel_err(exact4, values(16, false, false));
  const double e_int8 = rel_err(values(4, true, false), exact4);
  const double e_fp8 = rel_err(values(4, true, true), exact4);
  std::printf("output error: 4-bit latents %.4f, int8 factors %.4f, e4m3 factors %.4f\n", e_latents,
              e_int8, e_fp8);
  ::testing::Test::RecordProperty("out_err_4bit_latents", std::to_string(e_latents));
  ::testing::Test::RecordProperty("out_err_int8_factors", std::to_string(e_int8));
  ::testing::Test::RecordProperty("out_err_e4m3_factors", std::to_string(e_fp8));
  EXPECT_LT(e_fp8, 0.25 * e_latents);
  EXPECT_GT(e_fp8, e_int8);
}

TEST(ValueUpProjectionSupport, StridedFormNeedsMha) {
  ValueUpProjectionParams p;
  p.batch_size = 1;
  p.num_qo_heads = 8;
  p.num_kv_heads = 2;
  p.head_dim = 64;
  p.group_size = 2;
  p.rank_v = 32;
  int32_t dummy[8] = {};
  uint16_t buf[8] = {};
  p.group_heads = dummy;
  p.b_v = p.z = buf;
  p.o = buf;
  p.z_stride_batch = 8 * 32;
  p.o_stride_batch = 8 * 64;
  EXPECT_TRUE(value_up_projection_is_supported(p).ok());
  p.heads_in_order = true;
  EXPECT_EQ(value_up_projection_is_supported(p).code(), StatusCode::kUnsupported);
}

TEST(PagedDecodePlan, RejectsBadContextAndSizesTheWorkspace) {
  std::vector<int32_t> dummy(8, 0);
  PagedDecodeParams p;
  p.batch_size = 1;
  p.num_qo_heads = 32;
  p.num_kv_heads = 8;
  p.head_dim = 128;
  p.q = p.k_cache = p.v_cache = p.out = dummy.data();
  p.page_stride = 128 * 16 * 8;
  p.head_stride = 128 * 16;
  p.token_stride = 128;
  p.pages.indptr = p.pages.indices = p.pages.seq_lens = dummy.data();
  p.pages.page_size = 16;
  p.sm_scale = 0.088f;
  DecodePlan plan;
  ASSERT_TRUE(paged_decode_plan(p, 65536, 132, &plan).ok());
  EXPECT_GT(plan.num_splits, 1);
  EXPECT_GT(plan.workspace_bytes, 0);
  EXPECT_EQ(paged_decode_plan(p, 0, 132, &plan).code(), StatusCode::kUnsupported);
  p.token_stride = 100;
  EXPECT_EQ(paged_decode_is_supported(p).code(), StatusCode::kInvalidArgument);
}

TEST(LatentDecodeSupport, WarpgroupFormShapes) {
  using kernels::latent_wg_takes;
  EXPECT_TRUE(latent_wg_takes(128, 4, 4, 256, 256));   // Llama-2 shape, 50 % kept
  EXPECT_TRUE(latent_wg_takes(128, 4, 4, 128, 128));   // 75 % kept
  EXPECT_TRUE(latent_wg_takes(128, 4, 4, 96, 64));     // k-step bucket 4 with 3 real steps
  EXPECT_FALSE(latent_wg_takes(128, 4, 4, 288, 256));  // factors exceed shared memory
  EXPECT_FALSE(latent_wg_takes(128, 4, 4, 112, 128));  // not whole int8 k-steps
  EXPECT_FALSE(latent_wg_takes(128, 4, 4, 256, 192));  // 3 value blocks for 4 warps
  EXPECT_FALSE(latent_wg_takes(128, 4, 2, 256, 256));  // 2 heads per CTA
  EXPECT_FALSE(latent_wg_takes(64, 4, 4, 128, 128));
  EXPECT_FALSE(latent_wg_takes(128, 2, 4, 128, 128));
  EXPECT_FALSE(latent_wg_takes(128, 16, 4, 128, 128));
  // The largest taken layout fits one CTA's opt-in shared memory on sm_90 (227 KiB).
  EXPECT_LE(kernels::latent_wg_smem_layout(256, 256).total, 227 * 1024);
}

}  // namespace
}  // namespace latentkv
