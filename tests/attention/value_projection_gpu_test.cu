// GPU test of value_up_projection_run (pointer kernel + cuBLAS batched GEMM, or the strided
// form for MHA with heads in order) against a double-precision CPU product, with a permuted value
// grouping, GQA and padded z rows.
#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "attention/gpu_buffer.h"
#include "latentkv/attention/value_projection.h"
#include "latentkv/quant/latent_quant.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::DeviceBuffer;

struct VupCase {
  int batch, qo, kv, gs, head_dim, rank_v;
  int64_t z_pad;          // extra elements per z row
  bool in_order = false;  // identity grouping, run with heads_in_order (the strided form)
};

void run_case(const VupCase& c) {
  std::mt19937 rng(11 + c.batch + c.rank_v);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const auto half_of = [](float x) { return float_to_half_bits(x); };
  // A non-identity grouping: slice i holds KV head heads[i].
  std::vector<int32_t> heads(c.kv);
  for (int i = 0; i < c.kv; ++i) heads[i] = (i * 3 + 1) % c.kv;
  if (c.kv % 3 == 0)
    for (int i = 0; i < c.kv; ++i) heads[i] = c.kv - 1 - i;
  if (c.in_order)
    for (int i = 0; i < c.kv; ++i) heads[i] = i;
  std::vector<uint16_t> bv(static_cast<size_t>(c.kv) * c.head_dim * c.rank_v);
  for (auto& x : bv) x = half_of(nd(rng) / 8.0f);
  const int64_t zsb = int64_t{c.qo} * c.rank_v + c.z_pad;
  std::vector<uint16_t> z(static_cast<size_t>(c.batch * zsb));
  for (auto& x : z) x = half_of(nd(rng));
  const int64_t osb = int64_t{c.qo} * c.head_dim;
  DeviceBuffer<int32_t> d_heads(heads);
  DeviceBuffer<uint16_t> d_bv(bv), d_z(z), d_o(std::vector<uint16_t>(c.batch * osb, 0x7e00));
  ValueUpProjectionParams p;
  p.batch_size = c.batch;
  p.num_qo_heads = c.qo;
  p.num_kv_heads = c.kv;
  p.head_dim = c.head_dim;
  p.group_size = c.gs;
  p.rank_v = c.rank_v;
  p.group_heads = d_heads.get();
  p.b_v = d_bv.get();
  p.z = d_z.get();
  p.z_stride_batch = zsb;
  p.o = d_o.get();
  p.o_stride_batch = osb;
  p.heads_in_order = c.in_order;
  cublasHandle_t cublas;
  ASSERT_EQ(cublasCreate(&cublas), CUBLAS_STATUS_SUCCESS);
  const int64_t ws_bytes = value_up_projection_workspace_bytes(p);
  DeviceBuffer<uint8_t> ws(ws_bytes);
  LKV_ASSERT_OK(value_up_projection_run(p, cublas, ws.get(), ws_bytes, nullptr));
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  cublasDestroy(cublas);
  const std::vector<uint16_t> o = d_o.download();
  const int ratio = c.qo / c.kv;
  double max_err = 0.0;
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.qo; ++h) {
      int slice = 0;
      for (int i = 0; i < c.kv; ++i)
        if (heads[i] == h / ratio) slice = i;
      for (int d = 0; d < c.head_dim; ++d) {
        double ref = 0.0;
        for (int r = 0; r < c.rank_v; ++r)
          ref += static_cast<double>(half_bits_to_float(
                     bv[(static_cast<size_t>(slice) * c.head_dim + d) * c.rank_v + r])) *
                 half_bits_to_float(z[b * zsb + h * c.rank_v + r]);
        const double got = half_bits_to_float(o[b * osb + h * c.head_dim + d]);
        ASSERT_TRUE(std::isfinite(got)) << "b=" << b << " h=" << h << " d=" << d;
        max_err = std::max(max_err, std::fabs(got - ref) / (1.0 + std::fabs(ref)));
      }
    }
  EXPECT_LE(max_err, 2e-3);  // fp16 output rounding
}

TEST(ValueUpProjectionGpu, MatchesReference) {
  LKV_REQUIRE_GPU();
  run_case({1, 32, 32, 4, 128, 256, 0});  // Llama-2 c50 decode
  run_case({8, 8, 2, 2, 64, 48, 8});      // GQA, padded z rows
  run_case({3, 6, 6, 3, 64, 288, 0});     // groups of 3
  run_case({9, 8, 8, 4, 128, 64, 0});
  run_case({2, 4, 4, 2, 64, 20, 4});  // rank not a multiple of 8
  // Strided form: Llama-2 c50 at batch 1 and 8, and padded z rows with a rank of 40.
  run_case({1, 32, 32, 4, 128, 256, 0, true});
  run_case({8, 32, 32, 4, 128, 128, 0, true});
  run_case({3, 6, 6, 3, 64, 40, 8, true});
}

}  // namespace
}  // namespace latentkv
