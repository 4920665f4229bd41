// GPU test of the fp16 paged decode kernel against its CPU reference (same params struct).
// The kernel accumulates in fp32 and writes fp16; the bound is twice the error of the exact
// result rounded to fp16 plus fp32 accumulation noise.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "attention/gpu_buffer.h"
#include "latentkv/attention/paged_decode.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/paged_decode.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::DeviceBuffer;

struct PagedCase {
  const char* name;
  int head_dim, num_qo_heads, num_kv_heads, page_size;
  std::vector<int> lens;
};

void run_case(const PagedCase& c) {
  std::mt19937 rng(99 + c.head_dim + c.page_size);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int batch = static_cast<int>(c.lens.size()), hd = c.head_dim;
  std::vector<int32_t> indptr(1, 0);
  for (int len : c.lens) indptr.push_back(indptr.back() + (len + c.page_size - 1) / c.page_size);
  const int pages = indptr.back(), pool = pages + 2;
  std::vector<int32_t> ids(pool);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> indices(ids.begin(), ids.begin() + pages),
      lens(c.lens.begin(), c.lens.end());
  // HND pages with a padded token stride (head_dim + 8) to exercise strides.
  const int64_t token_stride = hd + 8, head_stride = token_stride * c.page_size,
                page_stride = head_stride * c.num_kv_heads;
  std::vector<uint16_t> k(page_stride * pool), v(page_stride * pool);
  for (auto& x : k) x = float_to_half_bits(nd(rng));
  for (auto& x : v) x = float_to_half_bits(nd(rng));
  std::vector<uint16_t> q(static_cast<size_t>(batch) * c.num_qo_heads * hd);
  for (auto& x : q) x = float_to_half_bits(nd(rng));

  PagedDecodeParams p;
  p.batch_size = batch;
  p.num_qo_heads = c.num_qo_heads;
  p.num_kv_heads = c.num_kv_heads;
  p.head_dim = hd;
  p.q = q.data();
  p.q_stride_batch = int64_t{c.num_qo_heads} * hd;
  p.q_stride_head = hd;
  p.k_cache = k.data();
  p.v_cache = v.data();
  p.page_stride = page_stride;
  p.head_stride = head_stride;
  p.token_stride = token_stride;
  p.pages.indptr = indptr.data();
  p.pages.indices = indices.data();
  p.pages.seq_lens = lens.data();
  p.pages.page_size = c.page_size;
  p.sm_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<uint16_t> out_host(q.size());
  p.out = out_host.data();
  p.out_stride_batch = int64_t{c.num_qo_heads} * hd;
  p.out_stride_head = hd;
  const reference::DecodeValues exact = reference::paged_decode_values(p);
  double num16 = 0, den = 0;
  for (double x : exact.out) {
    const double r = half_bits_to_float(float_to_half_bits(static_cast<float>(x)));
    num16 += (r - x) * (r - x);
    den += x * x;
  }
  const double e16 = std::sqrt(num16 / std::max(den, 1e-300));

  DeviceBuffer<uint16_t> dq(q), dk(k), dv(v), dout(out_host.size());
  DeviceBuffer<int32_t> dind(indptr), didx(indices), dlen(lens);
  DeviceBuffer<float> dlse(static_cast<size_t>(batch) * c.num_qo_heads);
  PagedDecodeParams dp = p;
  dp.q = dq.get();
  dp.k_cache = dk.get();
  dp.v_cache = dv.get();
  dp.pages.indptr = dind.get();
  dp.pages.indices = didx.get();
  dp.pages.seq_lens = dlen.get();
  dp.out = dout.get();
  dp.lse = dlse.get();
  const int max_len = std::max(1, *std::max_element(c.lens.begin(), c.lens.end()));
  for (int sms : {1, 4096}) {
    SCOPED_TRACE(::testing::Message() << c.name << " num_sms=" << sms);
    DecodePlan plan;
    LKV_ASSERT_OK(paged_decode_plan(dp, max_len, sms, &plan));
    DeviceBuffer<uint8_t> ws(std::max<int64_t>(plan.workspace_bytes, 16));
    dout.fill_bytes(0xFF);
    dlse.fill_bytes(0xFF);
    LKV_ASSERT_OK(paged_decode_run(dp, plan, ws.get(), plan.workspace_bytes, nullptr));
    LKV_ASSERT_CUDA(cudaDeviceSynchronize());
    const std::vector<uint16_t> got16 = dout.download();
    const std::vector<float> lse = dlse.download();
    double num = 0;
    for (size_t i = 0; i < got16.size(); ++i) {
      const double g = half_bits_to_float(got16[i]);
      ASSERT_TRUE(std::isfinite(g)) << "output " << i << " not written";
      num += (g - exact.out[i]) * (g - exact.out[i]);
    }
    const double e = std::sqrt(num / std::max(den, 1e-300));
    EXPECT_LE(e, 2.0 * e16 + 1e-4);
    for (size_t i = 0; i < lse.size(); ++i) {
      if (c.lens[i / c.num_qo_heads] == 0) {
        EXPECT_TRUE(std::isinf(lse[i]) && lse[i] < 0);
      } else {
        EXPECT_NEAR(lse[i], exact.lse[i], 1e-3 * std::max(1.0, std::fabs(exact.lse[i])));
      }
    }
    std::printf("[%s sms=%d splits=%d] rel err %.3e (fp16 rounding of exact %.3e)\n", c.name, sms,
                plan.num_splits, e, e16);
  }
}

class PagedDecodeGpu : public ::testing::TestWithParam<PagedCase> {};

TEST_P(PagedDecodeGpu, MatchesReference) {
  LKV_REQUIRE_GPU();
  run_case(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PagedDecodeGpu,
    ::testing::Values(PagedCase{"mha128_page16", 128, 4, 4, 16, {1, 2, 17, 113, 1023, 4097}},
                      PagedCase{"gqa128_page1", 128, 8, 2, 1, {0, 1, 113, 1023}},
                      PagedCase{"ratio3_hd64_page16", 64, 9, 3, 16, {17, 0, 4097, 2}},
                      PagedCase{"ratio8_hd64_page1", 64, 16, 2, 1, {1, 1023}}),
    [](const ::testing::TestParamInfo<PagedCase>& info) { return std::string(info.param.name); });

TEST(PagedDecodeSupport, RejectsBadShapes) {
  PagedDecodeParams p;
  p.batch_size = 1;
  p.num_qo_heads = 8;
  p.num_kv_heads = 8;
  p.head_dim = 96;
  EXPECT_EQ(paged_decode_is_supported(p).code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace latentkv
