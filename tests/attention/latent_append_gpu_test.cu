// GPU test of the latent append (projection: cuBLAS, or the matrix-vector kernel for appends of
// up to 8 tokens; then the quantize/pack/ring/lengths kernel): after every append the device
// cache must equal, byte for byte, the CPU reference store fed with the same fp32 latents; the
// projection itself is checked against a double-precision GEMM.
#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "attention/gpu_buffer.h"
#include "attention/latent_cache_fixture.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_append.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::DeviceBuffer;

struct AppendCase {
  const char* name;
  int bits, quant_group, residual, chunk, page_size;
};

void run_case(const AppendCase& c) {
  std::mt19937 rng(7 + c.bits * 13 + c.residual);
  const int num_groups = 2, d_model = 64, rank_k = 64, rank_v = 32;
  const std::vector<std::vector<int>> steps = {
      {5, 0, 20}, {1, 7, 3}, {0, 1, 1}, {16, 2, 0}, {1, 1, 1}};
  std::vector<int> capacity(3, 0);
  for (const auto& s : steps)
    for (int b = 0; b < 3; ++b) capacity[b] += s[b];
  QuantConfig quant;
  quant.bits = c.bits;
  quant.quant_group = c.quant_group;
  LatentWindowPolicy window;
  window.residual = c.residual;
  window.chunk = c.chunk;
  auto host = testing::make_empty_cache(capacity, num_groups, rank_k, rank_v, quant, c.page_size,
                                        window, rng);
  DeviceBuffer<uint8_t> kc(host.k_codes), ksz(host.k_sz), kr(host.k_ring), vc(host.v_codes),
      vsz(host.v_sz), vr(host.v_ring);
  DeviceBuffer<int32_t> d_indptr(host.indptr), d_indices(host.indices), d_lens(host.seq_lens);
  const int total = num_groups * (rank_k + rank_v);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> a_cat(static_cast<size_t>(total) * d_model);
  for (auto& x : a_cat) x = float_to_half_bits(nd(rng) / 8.0f);
  DeviceBuffer<uint16_t> d_a(a_cat);
  cublasHandle_t cublas;
  ASSERT_EQ(cublasCreate(&cublas), CUBLAS_STATUS_SUCCESS);

  for (size_t step = 0; step < steps.size(); ++step) {
    SCOPED_TRACE(::testing::Message() << c.name << " step " << step);
    std::vector<int32_t> append_indptr(1, 0);
    for (int n : steps[step]) append_indptr.push_back(append_indptr.back() + n);
    const int n_tokens = append_indptr.back();
    std::vector<uint16_t> x(static_cast<size_t>(std::max(n_tokens, 1)) * d_model);
    for (auto& e : x) e = float_to_half_bits(nd(rng));
    DeviceBuffer<uint16_t> d_x(x);
    DeviceBuffer<int32_t> d_app(append_indptr);

    LatentAppendParams hp;
    hp.batch_size = 3;
    hp.num_groups = num_groups;
    hp.d_model = d_model;
    hp.num_tokens = n_tokens;
    hp.append_indptr = append_indptr.data();
    hp.x = x.data();
    hp.x_stride = d_model;
    hp.a_cat = a_cat.data();
    hp.k = host.kview();
    hp.v = host.vview();
    hp.window = window;
    hp.pages = host.pages();
    hp.seq_lens_out = host.seq_lens.data();

    LatentAppendParams dp = hp;
    dp.append_indptr = d_app.get();
    dp.x = d_x.get();
    dp.a_cat = d_a.get();
    dp.k = host.view(false, kc.get(), ksz.get(), kr.get());
    dp.v = host.view(true, vc.get(), vsz.get(), vr.get());
    dp.pages.indptr = d_indptr.get();
    dp.pages.indices = d_indices.get();
    dp.pages.seq_lens = d_lens.get();
    // Even steps update the lengths in place (latent_lengths_kernel after the store), odd steps
    // into another array (written by the store kernel itself).
    const bool in_place = step % 2 == 0;
    const std::vector<int32_t> lens_before = host.seq_lens;
    DeviceBuffer<int32_t> d_lens_out(std::vector<int32_t>(host.seq_lens.size(), -1));
    dp.seq_lens_out = in_place ? d_lens.get() : d_lens_out.get();
    const int64_t ws_bytes = latent_append_workspace_bytes(dp, std::max(n_tokens, 1));
    DeviceBuffer<uint8_t> ws(ws_bytes);
    LKV_ASSERT_OK(latent_append_run(dp, cublas, ws.get(), ws_bytes, nullptr));
    LKV_ASSERT_CUDA(cudaDeviceSynchronize());

    // The GEMM against double precision.
    std::vector<uint8_t> ws_host = ws.download();
    const float* gpu_latents = reinterpret_cast<const float*>(ws_host.data());
    const std::vector<float> ref_latents = reference::latent_append_latents(hp);
    double max_err = 0.0;
    for (size_t i = 0; i < ref_latents.size(); ++i)
      max_err = std::max(max_err, static_cast<double>(std::fabs(gpu_latents[i] - ref_latents[i])));
    EXPECT_LE(max_err, 1e-4) << "projection error";

    // The store, bit-exact against the CPU specification fed with the GPU's latents.
    reference::latent_append_store(hp, gpu_latents, total);
    if (in_place) {
      EXPECT_EQ(d_lens.download(), host.seq_lens);
    } else {
      EXPECT_EQ(d_lens.download(), lens_before) << "input lengths changed";
      EXPECT_EQ(d_lens_out.download(), host.seq_lens);
      LKV_ASSERT_CUDA(cudaMemcpy(d_lens.get(), d_lens_out.get(), host.seq_lens.size() * 4,
                                 cudaMemcpyDeviceToDevice));
    }
    EXPECT_TRUE(kc.download() == host.k_codes) << "key codes differ";
    EXPECT_TRUE(vc.download() == host.v_codes) << "value codes differ";
    if (c.bits < 16) {
      EXPECT_TRUE(ksz.download() == host.k_sz) << "key scale/zero differ";
      EXPECT_TRUE(vsz.download() == host.v_sz) << "value scale/zero differ";
    }
    if (window.ring_capacity() > 0) {
      EXPECT_TRUE(kr.download() == host.k_ring) << "key ring differs";
      EXPECT_TRUE(vr.download() == host.v_ring) << "value ring differs";
    }
    if (::testing::Test::HasFailure()) break;
  }
  cublasDestroy(cublas);
}

class LatentAppendGpu : public ::testing::TestWithParam<AppendCase> {};

TEST_P(LatentAppendGpu, BitExactWithReference) {
  LKV_REQUIRE_GPU();
  run_case(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Configs, LatentAppendGpu,
                         ::testing::Values(AppendCase{"fp16_pages_only", 16, 0, 0, 1, 4},
                                           AppendCase{"int4_window", 4, 0, 8, 4, 4},
                                           AppendCase{"int4_qgroup16_page1", 4, 16, 8, 4, 1},
                                           AppendCase{"int3_window_chunk1", 3, 0, 5, 1, 16},
                                           AppendCase{"int2_no_window", 2, 0, 0, 1, 4},
                                           AppendCase{"int8_window", 8, 32, 4, 4, 4}),
                         [](const ::testing::TestParamInfo<AppendCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace latentkv
