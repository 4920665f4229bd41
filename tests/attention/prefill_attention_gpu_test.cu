// GPU test of the causal prefill attention kernels against their CPU reference (same params
// struct). Both compute in fp32 and round to fp16 once, so they differ by fp32 summation order
// only: the bound is one fp16 ulp of the value plus 5e-4 of the largest output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "attention/gpu_buffer.h"
#include "latentkv/attention/prefill_attention.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/prefill_attention.h"
#include "prefill_attention.cuh"
#include "support/expect_error.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::DeviceBuffer;

struct PrefillCase {
  const char* name;
  int head_dim, num_qo_heads, num_kv_heads, n, T;
  int page_size;       ///< 0: dense token-major K/V (one page, page_size > T)
  int pad;             ///< extra elements per row of q, out and K/V (odd: unaligned rows)
  bool permute_heads;  ///< kv_head_index = a permutation into a larger buffer
  float q_gain;        ///< > 1 sharpens the softmax
};

void run_case(const PrefillCase& c) {
  ASSERT_EQ(std::string(c.name).rfind("row_", 0) == 0,
            kernels::prefill_use_row_kernel(c.n, c.num_qo_heads, c.head_dim))
      << "the case name names the other kernel";
  std::mt19937 rng(7 + c.head_dim + 31 * c.n + c.T);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int hd = c.head_dim, row = hd + c.pad;
  const int buf_heads = c.num_kv_heads + (c.permute_heads ? 2 : 0);
  std::vector<int32_t> head_index(c.num_kv_heads);
  if (c.permute_heads) {
    std::vector<int32_t> ids(buf_heads);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::copy(ids.begin(), ids.begin() + c.num_kv_heads, head_index.begin());
  }

  PrefillAttentionParams p;
  std::vector<int32_t> pages;
  int64_t kv_elems = 0;
  if (c.page_size == 0) {  // dense [T][buf_heads][row]: one page larger than T
    p.page_size = c.T + 3;
    p.token_stride = int64_t{buf_heads} * row;
    p.head_stride = row;
    p.page_stride = p.token_stride * p.page_size;
    pages = {0};
    kv_elems = p.page_stride;
  } else {  // HND pages, shuffled page ids with spares
    p.page_size = c.page_size;
    const int used = (c.T + c.page_size - 1) / c.page_size, pool = used + 3;
    std::vector<int32_t> ids(pool);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    pages.assign(ids.begin(), ids.begin() + used);
    p.token_stride = row;
    p.head_stride = p.token_stride * c.page_size;
    p.page_stride = p.head_stride * buf_heads;
    kv_elems = p.page_stride * pool;
  }
  std::vector<uint16_t> k(kv_elems), v(kv_elems);
  for (auto& x : k) x = float_to_half_bits(nd(rng));
  for (auto& x : v) x = float_to_half_bits(nd(rng));
  const int64_t q_stride_token = int64_t{c.num_qo_heads} * row;
  std::vector<uint16_t> q(c.n * q_stride_token);
  for (auto& x : q) x = float_to_half_bits(c.q_gain * nd(rng));

  p.num_qo_heads = c.num_qo_heads;
  p.num_kv_heads = c.num_kv_heads;
  p.head_dim = hd;
  p.num_queries = c.n;
  p.num_keys = c.T;
  p.q = q.data();
  p.q_stride_token = q_stride_token;
  p.q_stride_head = row;
  p.k_cache = k.data();
  p.v_cache = v.data();
  p.pages = pages.data();
  p.kv_head_index = c.permute_heads ? head_index.data() : nullptr;
  p.sm_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<uint16_t> ref(q.size(), 0xFFFF);
  p.out = ref.data();
  p.out_stride_token = q_stride_token;
  p.out_stride_head = row;
  reference::prefill_attention(p);

  DeviceBuffer<uint16_t> dq(q), dk(k), dv(v), dout(q.size());
  DeviceBuffer<int32_t> dpages(pages), dheads(head_index);
  PrefillAttentionParams dp = p;
  dp.q = dq.get();
  dp.k_cache = dk.get();
  dp.v_cache = dv.get();
  dp.pages = dpages.get();
  dp.kv_head_index = c.permute_heads ? dheads.get() : nullptr;
  dp.out = dout.get();
  dout.fill_bytes(0xFF);
  LKV_ASSERT_OK(prefill_attention_run(dp, nullptr));
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  const std::vector<uint16_t> got = dout.download();

  double max_ref = 0.0;
  for (int i = 0; i < c.n; ++i)
    for (int h = 0; h < c.num_qo_heads; ++h)
      for (int d = 0; d < hd; ++d)
        max_ref = std::max<double>(
            max_ref, std::fabs(half_bits_to_float(ref[i * q_stride_token + h * row + d])));
  double max_err = 0.0;
  int64_t ulp_diffs = 0;
  for (int i = 0; i < c.n; ++i)
    for (int h = 0; h < c.num_qo_heads; ++h)
      for (int e = 0; e < row; ++e) {
        const int64_t at = i * q_stride_token + h * row + e;
        if (e >= hd) {  // row padding is never written
          ASSERT_EQ(got[at], 0xFFFF) << "padding written at query " << i << " head " << h;
          continue;
        }
        const double r = half_bits_to_float(ref[at]), g = half_bits_to_float(got[at]);
        ASSERT_TRUE(std::isfinite(g)) << "query " << i << " head " << h << " dim " << e;
        const double err = std::fabs(g - r);
        max_err = std::max(max_err, err);
        ulp_diffs += got[at] != ref[at];
        ASSERT_LE(err, 5e-4 * max_ref + std::ldexp(std::fabs(r), -10))
            << "query " << i << " head " << h << " dim " << e << ": gpu " << g << " ref " << r;
      }
  std::printf("[%s] max |out| %.3f, max err %.2e, %lld of %lld values differ from the reference\n",
              c.name, max_ref, max_err, static_cast<long long>(ulp_diffs),
              static_cast<long long>(int64_t{c.n} * c.num_qo_heads * hd));
}

void PrintTo(const PrefillCase& c, std::ostream* os) { *os << c.name; }

class PrefillAttentionGpu : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(PrefillAttentionGpu, MatchesReference) {
  LKV_REQUIRE_GPU();
  run_case(GetParam());
}

// name, head_dim, qo heads, kv heads, n, T, page_size (0 = dense), pad, permuted heads, q gain.
// The row kernel runs while n · qo heads · head_dim <= 2^16, the tile kernel above (each case's
// name says which).
INSTANTIATE_TEST_SUITE_P(
    Shapes, PrefillAttentionGpu,
    ::testing::Values(
        PrefillCase{"row_n1_T1_hd64_dense", 64, 2, 2, 1, 1, 0, 0, false, 1.0f},
        PrefillCase{"row_n1_T17_hd128_ratio4_page16", 128, 8, 2, 1, 17, 16, 0, true, 1.0f},
        PrefillCase{"row_n17_T17_hd64_ratio3_page1_odd", 64, 9, 3, 17, 17, 1, 3, false, 1.0f},
        PrefillCase{"tile_n17_T17_hd64_ratio3_page1", 64, 72, 24, 17, 17, 1, 0, true, 1.0f},
        PrefillCase{"tile_n113_T1023_hd128_page16_pad8", 128, 8, 8, 113, 1023, 16, 8, true, 1.0f},
        PrefillCase{"tile_n512_T512_hd64_ratio3_dense", 64, 9, 3, 512, 512, 0, 0, false, 1.0f},
        PrefillCase{"row_n64_T4097_hd128_ratio4_page1", 128, 8, 2, 64, 4097, 1, 0, false, 1.0f},
        PrefillCase{"tile_n64_T4097_hd64_ratio3_page16", 64, 18, 6, 64, 4097, 16, 0, false, 1.0f},
        PrefillCase{"row_n1_T4097_hd64_ratio3_page16", 64, 9, 3, 1, 4097, 16, 0, true, 1.0f},
        PrefillCase{"row_n5_T300_hd128_ratio3_dense_odd", 128, 6, 2, 5, 300, 0, 5, true, 1.0f},
        PrefillCase{"row_n15_T1000_hd64_page1_sharp", 64, 3, 3, 15, 1000, 1, 0, false, 6.0f},
        PrefillCase{"tile_n16_T16_hd64_ratio4_page16_sharp", 64, 72, 18, 16, 16, 16, 8, false,
                    6.0f},
        PrefillCase{"tile_n200_T700_hd128_ratio3_page16_odd_sharp", 128, 9, 3, 200, 700, 16, 3,
                    true, 6.0f},
        PrefillCase{"tile_n130_T130_hd64_ratio4_dense_odd", 64, 8, 2, 130, 130, 0, 1, true, 2.0f}),
    [](const ::testing::TestParamInfo<PrefillCase>& info) { return std::string(info.param.name); });

TEST(PrefillAttentionSupport, RejectsBadParams) {
  std::vector<int32_t> dummy(8, 0);
  PrefillAttentionParams p;
  p.num_qo_heads = 9;
  p.num_kv_heads = 3;
  p.head_dim = 64;
  p.num_queries = 4;
  p.num_keys = 10;
  p.q = p.k_cache = p.v_cache = dummy.data();
  p.pages = dummy.data();
  p.page_size = 16;
  p.sm_scale = 0.125f;
  p.out = dummy.data();
  EXPECT_TRUE(prefill_attention_is_supported(p).ok());
  const auto code = [&](auto edit) {
    PrefillAttentionParams b = p;
    edit(b);
    return prefill_attention_is_supported(b).code();
  };
  EXPECT_EQ(code([](auto& b) { b.head_dim = 96; }), StatusCode::kUnsupported);
  EXPECT_EQ(code([](auto& b) { b.num_qo_heads = 8; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.num_qo_heads = 48; }), StatusCode::kUnsupported);
  EXPECT_EQ(code([](auto& b) { b.num_queries = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.num_keys = 3; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.num_keys = (1 << 20) + 1; }), StatusCode::kUnsupported);
  EXPECT_EQ(code([](auto& b) { b.page_size = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.sm_scale = 0.0f; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](auto& b) { b.pages = nullptr; }), StatusCode::kInvalidArgument);
  PrefillAttentionParams b = p;
  b.num_keys = 3;
  EXPECT_LKV_ERROR(reference::prefill_attention(b), StatusCode::kInvalidArgument, "num_keys 3");
}

}  // namespace
}  // namespace latentkv
