// GPU test of the fused latent decode kernel against its CPU reference (same params struct).
// Bound: ‖kernel − exact‖ ≤ 2·‖emulated − exact‖ + output-dtype noise (relative L2 norms), where
// "emulated" is the reference with the kernel's roundings (GQA: int8 key factors, fp16 keys;
// MHA: fp16 / int8 folded query factors, e4m3 on the Hopper warpgroup kernel; both: fp16 P and
// values).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "attention/gpu_buffer.h"
#include "attention/latent_cache_fixture.h"
#include "cuda/latent_decode_wgmma.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_decode.h"
#include "latentkv/rope.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::DeviceBuffer;
using testing::rel_err;

struct DecodeCase {
  const char* name;
  int head_dim, num_qo_heads, num_kv_heads, group_size, rank_k, rank_v, bits, page_size;
  LatentWindowPolicy window;
  std::vector<int> lens;
  DType q_dtype = DType::kF16;
  DType out_dtype = DType::kF32;
  bool up = false;  ///< value up-projection fused into the combine (LatentDecodeParams::b_v)
};

uint16_t to_bf16_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b += 0x7fffu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

double out_value(const std::vector<uint8_t>& raw, DType t, size_t i) {
  if (t == DType::kF32) {
    float f;
    std::memcpy(&f, raw.data() + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, raw.data() + 2 * i, 2);
  if (t == DType::kF16) return half_bits_to_float(h);
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

/// One decode problem: the host cache and factors (CPU reference inputs, `p`) and their device
/// mirror (`dp`, kernel inputs).
struct Problem {
  DecodeCase c;
  testing::HostLatentCache cache;
  std::vector<uint16_t> b_k, b_v, q;
  LatentKeyFactorsI8 b_i8;
  std::vector<int32_t> group_heads;
  std::vector<double> inv_freq;
  std::vector<uint8_t> out_host;
  std::vector<float> lse_host;
  size_t out_elems = 0;
  LatentDecodeParams p, dp;
  DeviceBuffer<uint8_t> kc, ksz, kr, vc, vsz, vr, d_out;
  DeviceBuffer<int32_t> d_indptr, d_indices, d_lens, d_gh, d_rowsum;
  DeviceBuffer<uint16_t> d_q, d_bk, d_bv;
  DeviceBuffer<int8_t> d_bi8;
  DeviceBuffer<float> d_bscale, d_lse;
  DeviceBuffer<double> d_inv;

  explicit Problem(const DecodeCase& dc) : c(dc) {
    std::mt19937 rng(1234 + c.head_dim + c.bits * 7 + c.rank_k);
    const int num_groups = c.num_kv_heads / c.group_size;
    QuantConfig quant;
    quant.bits = c.bits;
    cache = testing::make_filled_cache(c.lens, num_groups, c.rank_k, c.rank_v, quant, c.page_size,
                                       c.window, 1.0f, rng);
    const int batch = static_cast<int>(c.lens.size());
    const int hd = c.head_dim;
    // Key factors: N(0, 1/rank) so that keys are O(1); stored as fp16, int8 made from the fp16
    // values.
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t brows = int64_t{num_groups} * c.group_size * hd;
    b_k.resize(brows * c.rank_k);
    std::vector<float> b_f(b_k.size());
    for (size_t i = 0; i < b_k.size(); ++i) {
      b_k[i] = float_to_half_bits(nd(rng) / std::sqrt(static_cast<float>(c.rank_k)));
      b_f[i] = half_bits_to_float(b_k[i]);
    }
    b_i8 = make_key_factors_i8(b_f, num_groups, c.group_size, hd, c.rank_k);
    group_heads.resize(c.num_kv_heads);
    for (int i = 0; i < c.num_kv_heads; ++i) group_heads[i] = i;
    std::shuffle(group_heads.begin(), group_heads.end(), rng);
    q.resize(static_cast<size_t>(batch) * c.num_qo_heads * hd);
    for (auto& x : q)
      x = c.q_dtype == DType::kF16 ? float_to_half_bits(nd(rng)) : to_bf16_bits(nd(rng));
    RopeConfig rope;
    rope.theta = 10000.0;
    inv_freq = rope_inv_freq(rope, hd);
    if (c.up) {  // value factors of the same scale as the key factors
      b_v.resize(brows * c.rank_v);
      for (auto& x : b_v) x = float_to_half_bits(nd(rng) / std::sqrt(static_cast<float>(c.rank_v)));
    }
    out_elems = static_cast<size_t>(batch) * c.num_qo_heads * out_width();
    out_host.resize(out_elems * dtype_bytes(c.out_dtype));
    lse_host.resize(static_cast<size_t>(batch) * c.num_qo_heads);

    p.batch_size = batch;
    p.num_qo_heads = c.num_qo_heads;
    p.num_kv_heads = c.num_kv_heads;
    p.head_dim = hd;
    p.group_size = c.group_size;
    p.group_heads = group_heads.data();
    p.q = q.data();
    p.q_dtype = c.q_dtype;
    p.q_stride_batch = int64_t{c.num_qo_heads} * hd;
    p.q_stride_head = hd;
    p.b_k = b_k.data();
    p.b_k_i8 = b_i8.values.data();
    p.b_k_i8_scale = b_i8.scale.data();
    p.b_k_i8_rowsum = b_i8.rowsum.data();
    p.inv_freq = inv_freq.data();
    p.sm_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    p.k = cache.kview();
    p.v = cache.vview();
    p.window = c.window;
    p.pages = cache.pages();
    p.out = out_host.data();
    p.out_dtype = c.out_dtype;
    p.out_stride_batch = int64_t{c.num_qo_heads} * out_width();
    p.out_stride_head = out_width();
    p.lse = lse_host.data();
    if (c.up) p.b_v = b_v.data();

    kc = DeviceBuffer<uint8_t>(cache.k_codes);
    ksz = DeviceBuffer<uint8_t>(cache.k_sz);
    kr = DeviceBuffer<uint8_t>(cache.k_ring);
    vc = DeviceBuffer<uint8_t>(cache.v_codes);
    vsz = DeviceBuffer<uint8_t>(cache.v_sz);
    vr = DeviceBuffer<uint8_t>(cache.v_ring);
    d_indptr = DeviceBuffer<int32_t>(cache.indptr);
    d_indices = DeviceBuffer<int32_t>(cache.indices);
    d_lens = DeviceBuffer<int32_t>(cache.seq_lens);
    d_gh = DeviceBuffer<int32_t>(group_heads);
    d_q = DeviceBuffer<uint16_t>(q);
    d_bk = DeviceBuffer<uint16_t>(b_k);
    if (c.up) d_bv = DeviceBuffer<uint16_t>(b_v);
    d_bi8 = DeviceBuffer<int8_t>(b_i8.values);
    d_bscale = DeviceBuffer<float>(b_i8.scale);
    d_lse = DeviceBuffer<float>(lse_host.size());
    d_rowsum = DeviceBuffer<int32_t>(b_i8.rowsum);
    d_inv = DeviceBuffer<double>(inv_freq);
    d_out = DeviceBuffer<uint8_t>(out_host.size());
    dp = p;
    dp.group_heads = d_gh.get();
    dp.q = d_q.get();
    dp.b_k = d_bk.get();
    if (c.up) dp.b_v = d_bv.get();
    dp.b_k_i8 = d_bi8.get();
    dp.b_k_i8_scale = d_bscale.get();
    dp.b_k_i8_rowsum = d_rowsum.get();
    dp.inv_freq = d_inv.get();
    dp.k = cache.view(false, kc.get(), ksz.get(), kr.get());
    dp.v = cache.view(true, vc.get(), vsz.get(), vr.get());
    dp.pages.indptr = d_indptr.get();
    dp.pages.indices = d_indices.get();
    dp.pages.seq_lens = d_lens.get();
    dp.out = d_out.get();
    dp.lse = d_lse.get();
  }

  /// Values per head in the output: head space with the fused up-projection, else latent space.
  int out_width() const { return c.up ? c.head_dim : c.rank_v; }

  /// Poisons the device output and lse (NaN) before a run.
  void poison() {
    d_out.fill_bytes(0xFF);
    d_lse.fill_bytes(0xFF);
  }

  /// Checks the device output of a run over sequences of `lens` tokens (a prefix of each cached
  /// sequence) against the exact reference; returns the kernel's relative error.
  double check(const std::vector<int>& lens) {
    LatentDecodeParams hp = p;
    hp.pages.seq_lens = lens.data();
    const reference::DecodeValues exact = reference::latent_decode_values(hp);
    reference::LatentDecodeOptions emu_opt;
    emu_opt.emulate_kernel = true;
    emu_opt.fp8_key_factors = detail::latent_uses_wgmma(p);
    const reference::DecodeValues emu = reference::latent_decode_values(hp, emu_opt);
    const double e_emu = rel_err(emu.out, exact.out);
    const double noise = c.out_dtype == DType::kF32   ? 2e-4
                         : c.out_dtype == DType::kF16 ? 1.5e-3
                                                      : 1e-2;
    const std::vector<uint8_t> raw = d_out.download();
    const std::vector<float> lse = d_lse.download();
    std::vector<double> got(out_elems);
    for (size_t i = 0; i < out_elems; ++i) {
      got[i] = out_value(raw, c.out_dtype, i);
      EXPECT_TRUE(std::isfinite(got[i])) << "output " << i << " not written or not finite";
      if (!std::isfinite(got[i])) return INFINITY;
    }
    const double e_k = rel_err(got, exact.out);
    EXPECT_LE(e_k, 2.0 * e_emu + noise) << "emulated-reference error " << e_emu;
    double lse_err = 0.0, lse_emu = 0.0;
    for (size_t i = 0; i < lse.size(); ++i) {
      const int b = static_cast<int>(i / c.num_qo_heads);
      if (lens[b] == 0) {
        EXPECT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << "empty sequence lse " << lse[i];
        for (int col = 0; col < out_width(); ++col) EXPECT_EQ(got[i * out_width() + col], 0.0);
        continue;
      }
      lse_err = std::max(lse_err, static_cast<double>(std::fabs(lse[i] - exact.lse[i])));
      lse_emu = std::max(lse_emu, static_cast<double>(std::fabs(emu.lse[i] - exact.lse[i])));
    }
    EXPECT_LE(lse_err, 2.0 * lse_emu + 1e-3);
    std::printf("  rel err kernel %.3e, emulated %.3e, lse %.2e\n", e_k, e_emu, lse_err);
    return e_k;
  }
};

void run_case(const DecodeCase& c) {
  Problem pr(c);
  ASSERT_TRUE(latent_decode_is_supported(pr.p).ok())
      << latent_decode_is_supported(pr.p).to_string();
  const int max_len = std::max(1, *std::max_element(c.lens.begin(), c.lens.end()));
  // Few splits (direct output when possible) and many splits (combine path).
  for (int sms : {1, 4096}) {
    SCOPED_TRACE(::testing::Message() << c.name << " num_sms=" << sms);
    DecodePlan plan;
    LKV_ASSERT_OK(latent_decode_plan(pr.dp, max_len, sms, &plan));
    DeviceBuffer<uint8_t> ws(std::max<int64_t>(plan.workspace_bytes, 16));
    pr.poison();
    LKV_ASSERT_OK(latent_decode_run(pr.dp, plan, ws.get(), plan.workspace_bytes, nullptr));
    LKV_ASSERT_CUDA(cudaDeviceSynchronize());
    std::printf("[%s sms=%d splits=%d+%d hpc=%d wgmma=%d]\n", c.name, sms, plan.num_splits,
                plan.extra_splits, plan.heads_per_cta, detail::latent_uses_wgmma(pr.dp) ? 1 : 0);
    const double e_k = pr.check(c.lens);
    ::testing::Test::RecordProperty(std::string(c.name) + "_err", std::to_string(e_k));
  }
}

class LatentDecodeGpu : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(LatentDecodeGpu, MatchesReference) {
  LKV_REQUIRE_GPU();
  run_case(GetParam());
}

LatentWindowPolicy win(int residual, int chunk) {
  LatentWindowPolicy w;
  w.residual = residual;
  w.chunk = chunk;
  return w;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LatentDecodeGpu,
    ::testing::Values(
        DecodeCase{
            "fp16_mha_g4_r256", 128, 4, 4, 4, 256, 256, 16, 16, win(0, 1), {1, 2, 17, 113, 1023}},
        DecodeCase{"int4_gqa_g2_r128_window",
                   128,
                   8,
                   2,
                   2,
                   128,
                   128,
                   4,
                   16,
                   win(32, 16),
                   {0, 4097, 1, 40}},
        DecodeCase{"int3_hd64_ratio3_page1",
                   64,
                   9,
                   3,
                   1,
                   64,
                   32,
                   3,
                   1,
                   win(8, 4),
                   {17, 113, 2, 0},
                   DType::kBF16,
                   DType::kF16},
        DecodeCase{"int2_hd64_g2",
                   64,
                   4,
                   4,
                   2,
                   128,
                   64,
                   2,
                   16,
                   win(16, 16),
                   {1023, 5},
                   DType::kF16,
                   DType::kBF16},
        DecodeCase{"fp16_ring_hd64_g4_gqa",
                   64,
                   16,
                   4,
                   4,
                   128,
                   128,
                   16,
                   4,
                   win(8, 4),
                   {113, 3, 1},
                   DType::kF16,
                   DType::kF16},
        DecodeCase{
            "int4_mha_g4_r256_window", 128, 4, 4, 4, 256, 256, 4, 16, win(128, 16), {1500, 300}},
        DecodeCase{"int4_g8_r128", 128, 8, 8, 8, 128, 96, 4, 16, win(0, 1), {200, 64}},
        // MHA (query-folded kernel): 3-bit re-packed codes at page size 1, an fp16 ring with a
        // small rank, and an odd number of int8 k-steps.
        DecodeCase{"int3_mha_hd64_g2_page1",
                   64,
                   4,
                   4,
                   2,
                   64,
                   32,
                   3,
                   1,
                   win(8, 4),
                   {17, 113, 2, 0},
                   DType::kBF16,
                   DType::kF16},
        DecodeCase{"fp16_mha_ring_hd64_g1", 64, 4, 4, 1, 32, 64, 16, 4, win(8, 4), {113, 3, 1}},
        DecodeCase{"int4_mha_g1_r96", 128, 2, 2, 1, 96, 32, 4, 16, win(16, 16), {300, 7}},
        // Groups of 3 KV heads (one head per CTA): the default model's shape (9 / 3 heads of
        // 64, one joint group, 3-bit), and the folded MHA form.
        DecodeCase{"int3_hd64_gqa_g3", 64, 9, 3, 3, 96, 64, 3, 16, win(16, 8), {300, 1, 0, 77}},
        DecodeCase{"fp16_mha_g3_r144", 128, 6, 6, 3, 144, 96, 16, 16, win(0, 1), {1023, 17}},
        // Warpgroup (wgmma) form on sm_90a: a rank with a zero-padded k-step bucket (96 -> 4),
        // one value block, page size 1; two head blocks per group of 8 with 5 k-steps; a value
        // rank of 3 blocks takes the mma.sync kernel (LatentDecodeWgmma below).
        DecodeCase{"int4_mha_g4_r96_v64_page1",
                   128,
                   4,
                   4,
                   4,
                   96,
                   64,
                   4,
                   1,
                   win(16, 8),
                   {1, 2, 17, 113, 0},
                   DType::kBF16,
                   DType::kBF16},
        DecodeCase{
            "int4_mha_g8_r160_v128", 128, 8, 8, 8, 160, 128, 4, 16, win(0, 1), {4097, 0, 129}},
        DecodeCase{"int4_mha_g8_r160_v192", 128, 8, 8, 8, 160, 192, 4, 16, win(0, 1), {700, 64}},
        // Value up-projection fused into the combine (b_v): the engine's shape (warpgroup form
        // with its window), GQA groups of 3 at head_dim 64 with a permuted grouping, and 11
        // sequences (several blocks of the combine-up's sequences) at rank 512 (two B_v
        // fragments per lane). One split writes the latent result for the combine-up to read.
        DecodeCase{"up_int4_mha_g4_r256_window",
                   128,
                   4,
                   4,
                   4,
                   256,
                   256,
                   4,
                   16,
                   win(128, 16),
                   {1500, 300, 0},
                   DType::kF16,
                   DType::kF16,
                   true},
        DecodeCase{"up_int3_hd64_gqa_g3",
                   64,
                   9,
                   3,
                   3,
                   96,
                   64,
                   3,
                   16,
                   win(16, 8),
                   {300, 1, 0, 77},
                   DType::kBF16,
                   DType::kBF16,
                   true},
        DecodeCase{"up_int4_mha_g4_r512_b11",
                   128,
                   4,
                   4,
                   4,
                   128,
                   512,
                   4,
                   16,
                   win(0, 1),
                   {5, 0, 17, 1, 113, 64, 2, 300, 1, 9, 33},
                   DType::kF16,
                   DType::kF32,
                   true}),
    [](const ::testing::TestParamInfo<DecodeCase>& info) { return std::string(info.param.name); });

// Which shapes the warpgroup kernel takes (sm_90a build on a compute capability 9.0 device): the
// folded 4-bit head_dim-128 cases with 4 heads per CTA and 1, 2 or 4 value blocks of 64.
TEST(LatentDecodeWgmma, TakesFoldedFourBitShapes) {
  LKV_REQUIRE_GPU();
  if (!detail::latent_wgmma_available()) GTEST_SKIP() << "no sm_90a kernel for this device";
  const auto uses = [](const DecodeCase& c) { return detail::latent_uses_wgmma(Problem(c).dp); };
  EXPECT_TRUE(uses(DecodeCase{"a", 128, 4, 4, 4, 256, 256, 4, 16, win(128, 16), {300}}));
  EXPECT_TRUE(uses(DecodeCase{"b", 128, 4, 4, 4, 96, 64, 4, 1, win(16, 8), {17}}));
  EXPECT_TRUE(uses(DecodeCase{"c", 128, 8, 8, 8, 160, 128, 4, 16, win(0, 1), {129}}));
  EXPECT_FALSE(uses(DecodeCase{"d", 128, 8, 8, 8, 160, 192, 4, 16, win(0, 1), {64}}));
  EXPECT_FALSE(uses(DecodeCase{"e", 128, 4, 4, 4, 256, 256, 3, 16, win(0, 1), {64}}));
  EXPECT_FALSE(uses(DecodeCase{"f", 128, 4, 4, 4, 256, 256, 16, 16, win(0, 1), {64}}));
  EXPECT_FALSE(uses(DecodeCase{"g", 128, 8, 2, 2, 128, 128, 4, 16, win(0, 1), {64}}));  // GQA
  EXPECT_FALSE(uses(DecodeCase{"h", 64, 4, 4, 4, 128, 128, 4, 16, win(0, 1), {64}}));
}

// Engine pattern (design §7): plan once for the longest sequence, capture run() on a stream into
// a CUDA graph, then replay it after writing new sequence lengths to device memory. Capture in
// global mode fails on any allocation or synchronizing call inside run(); each replay must match
// the reference for the lengths it read.
void run_graph_case(const DecodeCase& c, const std::vector<std::vector<int>>& replays) {
  Problem pr(c);
  ASSERT_TRUE(latent_decode_is_supported(pr.p).ok())
      << latent_decode_is_supported(pr.p).to_string();
  int sms = 0;
  LKV_ASSERT_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int max_len = *std::max_element(c.lens.begin(), c.lens.end());
  DecodePlan plan;
  LKV_ASSERT_OK(latent_decode_plan(pr.dp, max_len, sms, &plan));
  DeviceBuffer<uint8_t> ws(std::max<int64_t>(plan.workspace_bytes, 16));
  cudaStream_t stream;
  LKV_ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const auto gs = reinterpret_cast<GpuStream>(stream);
  // First call outside the capture (one-time kernel attribute setup, as an engine's warm-up).
  LKV_ASSERT_OK(latent_decode_run(pr.dp, plan, ws.get(), plan.workspace_bytes, gs));
  LKV_ASSERT_CUDA(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  LKV_ASSERT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status st = latent_decode_run(pr.dp, plan, ws.get(), plan.workspace_bytes, gs);
  LKV_ASSERT_CUDA(cudaStreamEndCapture(stream, &graph));
  LKV_ASSERT_OK(st);
  cudaGraphExec_t exec;
  LKV_ASSERT_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  for (const std::vector<int>& lens : replays) {
    SCOPED_TRACE(::testing::Message() << c.name << " replay lens[0]=" << lens[0]);
    ASSERT_EQ(lens.size(), c.lens.size());
    for (size_t b = 0; b < lens.size(); ++b) ASSERT_LE(lens[b], c.lens[b]);
    LKV_ASSERT_CUDA(cudaMemcpy(pr.d_lens.get(), lens.data(), lens.size() * sizeof(int32_t),
                               cudaMemcpyHostToDevice));
    pr.poison();
    LKV_ASSERT_CUDA(cudaGraphLaunch(exec, stream));
    LKV_ASSERT_CUDA(cudaStreamSynchronize(stream));
    std::printf("[graph %s lens[0]=%d splits=%d+%d hpc=%d]\n", c.name, lens[0], plan.num_splits,
                plan.extra_splits, plan.heads_per_cta);
    pr.check(lens);
  }
  LKV_ASSERT_CUDA(cudaGraphExecDestroy(exec));
  LKV_ASSERT_CUDA(cudaGraphDestroy(graph));
  LKV_ASSERT_CUDA(cudaStreamDestroy(stream));
}

// No residual window (every token in pages), so any prefix of a cached sequence is a valid cache.
TEST(LatentDecodeGraph, Fp16ReplaysWithNewLengths) {
  LKV_REQUIRE_GPU();
  run_graph_case(
      DecodeCase{"graph_fp16_g4_r256", 128, 4, 4, 4, 256, 256, 16, 16, win(0, 1), {3000, 700, 17}},
      {{3000, 700, 17}, {1, 0, 17}, {2049, 64, 2}});
}

TEST(LatentDecodeGraph, Int4ReplaysWithNewLengths) {
  LKV_REQUIRE_GPU();
  run_graph_case(
      DecodeCase{"graph_int4_g4_r128", 128, 4, 4, 4, 128, 128, 4, 16, win(0, 1), {2500, 90}},
      {{2500, 90}, {113, 0}, {1024, 1}});
}

}  // namespace
}  // namespace latentkv
