// GPU tests of the C API: append + decode + value projection through the C entry points over one
// caller arena must give byte-identical caches and outputs to the C++ engine API driven by hand,
// and outputs within the precision bound of the CPU references; the fp16 paged cache's append
// must place every row where the reference reads it; a CUDA graph of one C API decode step
// (append one token + decode) must replay like eager steps.
#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "attention/gpu_buffer.h"
#include "c_api/c_api_fixture.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/c_api.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_decode.h"
#include "latentkv/reference/paged_decode.h"
#include "latentkv/rope.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::DeviceBuffer;
using testing::rel_err;

#define ASSERT_LKV(call) ASSERT_EQ((call), LKV_OK) << #call << ": " << lkv_last_error_message()

std::vector<uint16_t> random_half(size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> out(n);
  for (auto& x : out) x = float_to_half_bits(nd(rng) * scale);
  return out;
}

/// Page table with room for capacity[b] tokens per sequence (shuffled page ids).
void make_pages(const std::vector<int>& capacity, int page_size, int64_t num_pages,
                std::mt19937& rng, std::vector<int32_t>* indptr, std::vector<int32_t>* indices) {
  std::vector<int32_t> ids(num_pages);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  indptr->assign(1, 0);
  for (int len : capacity) indptr->push_back(indptr->back() + (len + page_size - 1) / page_size);
  indices->assign(ids.begin(), ids.begin() + indptr->back());
}

/// One layer driven twice: through the C API over arena `a1` and through the C++ API over an
/// identically laid out arena `a2`.
struct LatentProblem {
  static constexpr int kBatch = 3, kDModel = 128, kRankK = 64, kRankV = 32;
  lkv_latent_cache_desc desc{};
  lkv_latent_layer layer{}, layer_host{};
  lkv_cache_sizes sizes{};
  lkv_latent_cache* c1 = nullptr;
  lkv_latent_cache* c2 = nullptr;  // handle over a2, used only for its views
  LatentCacheView k2, v2;
  DeviceBuffer<uint8_t> a1, a2, append_ws, ws;
  std::vector<uint16_t> a_cat, b_k, b_v;
  LatentKeyFactorsI8 b_i8;
  std::vector<int32_t> group_heads, indptr, indices;
  std::vector<double> inv_freq;
  DeviceBuffer<uint16_t> d_acat, d_bk, d_bv;
  DeviceBuffer<int8_t> d_bi8;
  DeviceBuffer<float> d_bscale;
  DeviceBuffer<int32_t> d_browsum, d_gh, d_indptr, d_indices, d_lens1, d_lens2;
  DeviceBuffer<double> d_inv;
  cublasHandle_t cublas = nullptr;
  std::mt19937 rng{2024};

  LatentProblem(int bits, int residual, int chunk, const std::vector<int>& capacity) {
    desc.num_groups = 2;
    desc.rank_k = kRankK;
    desc.rank_v = kRankV;
    desc.bits = bits;
    desc.page_size = 16;
    desc.num_pages = 12;
    desc.residual = residual;
    desc.chunk = chunk;
    desc.max_batch = kBatch;
    layer.d_model = kDModel;
    layer.num_qo_heads = 8;
    layer.num_kv_heads = 4;
    layer.head_dim = 64;
    layer.group_size = 2;
    layer.sm_scale = 0.125f;
    EXPECT_EQ(lkv_latent_cache_size(&desc, &sizes), LKV_OK) << lkv_last_error_message();
    a1.resize(sizes.arena_bytes);
    a2.resize(sizes.arena_bytes);
    a1.fill_bytes(0x5A);
    a2.fill_bytes(0x5A);
    EXPECT_EQ(lkv_latent_cache_create(&desc, a1.get(), sizes.arena_bytes, &c1), LKV_OK);
    EXPECT_EQ(lkv_latent_cache_create(&desc, a2.get(), sizes.arena_bytes, &c2), LKV_OK);
    lkv_latent_view k{}, v{};
    EXPECT_EQ(lkv_latent_cache_views(c2, &k, &v), LKV_OK);
    k2 = to_view(k, kRankK);
    v2 = to_view(v, kRankV);

    const int rows = desc.num_groups * layer.group_size * layer.head_dim;
    a_cat = random_half(size_t{2} * (kRankK + kRankV) * kDModel, 0.125f, rng);
    b_k = random_half(static_cast<size_t>(rows) * kRankK, 1.0f / 8.0f, rng);
    b_v = random_half(static_cast<size_t>(rows) * kRankV, 1.0f / 6.0f, rng);
    std::vector<float> b_f(b_k.size());
    for (size_t i = 0; i < b_k.size(); ++i) b_f[i] = half_bits_to_float(b_k[i]);
    b_i8 = make_key_factors_i8(b_f, desc.num_groups, layer.group_size, layer.head_dim, kRankK);
    group_heads = {2, 0, 3, 1};
    RopeConfig rope;
    inv_freq = rope_inv_freq(rope, layer.head_dim);
    make_pages(capacity, desc.page_size, desc.num_pages, rng, &indptr, &indices);

    d_acat = DeviceBuffer<uint16_t>(a_cat);
    d_bk = DeviceBuffer<uint16_t>(b_k);
    d_bv = DeviceBuffer<uint16_t>(b_v);
    d_bi8 = DeviceBuffer<int8_t>(b_i8.values);
    d_bscale = DeviceBuffer<float>(b_i8.scale);
    d_browsum = DeviceBuffer<int32_t>(b_i8.rowsum);
    d_gh = DeviceBuffer<int32_t>(group_heads);
    d_inv = DeviceBuffer<double>(inv_freq);
    d_indptr = DeviceBuffer<int32_t>(indptr);
    d_indices = DeviceBuffer<int32_t>(indices);
    d_lens1 = DeviceBuffer<int32_t>(std::vector<int32_t>(kBatch, 0));
    d_lens2 = DeviceBuffer<int32_t>(std::vector<int32_t>(kBatch, 0));
    layer.group_heads = d_gh.get();
    layer.a_cat = d_acat.get();
    layer.b_k = d_bk.get();
    layer.b_k_i8 = d_bi8.get();
    layer.b_k_i8_scale = d_bscale.get();
    layer.b_k_i8_rowsum = d_browsum.get();
    layer.b_v = d_bv.get();
    layer.inv_freq = d_inv.get();
    layer_host = layer;
    layer_host.group_heads = group_heads.data();
    layer_host.b_k = b_k.data();
    layer_host.b_k_i8 = b_i8.values.data();
    layer_host.b_k_i8_scale = b_i8.scale.data();
    layer_host.b_k_i8_rowsum = b_i8.rowsum.data();
    layer_host.inv_freq = inv_freq.data();
    int64_t ws_bytes = 0;
    EXPECT_EQ(lkv_latent_append_workspace_size(&desc, 256, &ws_bytes), LKV_OK);
    append_ws.resize(ws_bytes);
    EXPECT_EQ(cublasCreate(&cublas), CUBLAS_STATUS_SUCCESS);
  }
  ~LatentProblem() {
    lkv_latent_cache_destroy(c1);
    lkv_latent_cache_destroy(c2);
    if (cublas) cublasDestroy(cublas);
  }

  LatentCacheView to_view(const lkv_latent_view& c, int rank) const {
    LatentCacheView v;
    v.rank = rank;
    v.bits = desc.bits;
    v.quant_group = desc.quant_group;
    v.codes = c.codes;
    v.page_stride = c.page_stride;
    v.group_stride = c.group_stride;
    v.token_stride = c.token_stride;
    v.scale_zero = c.scale_zero;
    v.sz_page_stride = c.sz_page_stride;
    v.sz_group_stride = c.sz_group_stride;
    v.sz_token_stride = c.sz_token_stride;
    v.ring = c.ring;
    v.ring_seq_stride = c.ring_seq_stride;
    v.ring_group_stride = c.ring_group_stride;
    v.ring_token_stride = c.ring_token_stride;
    return v;
  }
  LatentWindowPolicy window() const {
    LatentWindowPolicy w;
    w.residual = desc.residual;
    w.chunk = desc.chunk;
    return w;
  }
  lkv_page_table pages(const DeviceBuffer<int32_t>& lens) const {
    return lkv_page_table{d_indptr.get(), d_indices.get(), lens.get()};
  }
  /// C API append arguments for rows `x` (device) split as `counts`, on lengths `lens`.
  lkv_latent_append_args append_args(const DeviceBuffer<int32_t>& app,
                                     const DeviceBuffer<uint16_t>& x, int rows,
                                     DeviceBuffer<int32_t>& lens) const {
    lkv_latent_append_args a{};
    a.batch_size = kBatch;
    a.num_tokens = rows;
    a.append_indptr = app.get();
    a.x = x.get();
    a.x_stride = kDModel;
    a.pages = pages(lens);
    a.seq_lens_out = lens.get();
    return a;
  }
  /// The same append through the C++ API on arena 2.
  Status cpp_append(const DeviceBuffer<int32_t>& app, const DeviceBuffer<uint16_t>& x, int rows) {
    LatentAppendParams p;
    p.batch_size = kBatch;
    p.num_groups = desc.num_groups;
    p.d_model = kDModel;
    p.num_tokens = rows;
    p.append_indptr = app.get();
    p.x = x.get();
    p.x_stride = kDModel;
    p.a_cat = d_acat.get();
    p.k = k2;
    p.v = v2;
    p.window = window();
    p.pages.indptr = d_indptr.get();
    p.pages.indices = d_indices.get();
    p.pages.seq_lens = d_lens2.get();
    p.pages.page_size = desc.page_size;
    p.seq_lens_out = d_lens2.get();
    return latent_append_run(p, cublas, append_ws.get(), append_ws.size(), nullptr);
  }
  /// Appends counts[b] random rows per sequence through both APIs.
  void append_both(const std::vector<int>& counts) {
    std::vector<int32_t> app(1, 0);
    for (int n : counts) app.push_back(app.back() + n);
    const int rows = app.back();
    DeviceBuffer<uint16_t> x(random_half(size_t(std::max(rows, 1)) * kDModel, 1.0f, rng));
    DeviceBuffer<int32_t> d_app(app);
    const lkv_latent_append_args a = append_args(d_app, x, rows, d_lens1);
    ASSERT_LKV(
        lkv_latent_append_run(c1, &layer, &a, cublas, append_ws.get(), append_ws.size(), nullptr));
    const Status st = cpp_append(d_app, x, rows);
    ASSERT_TRUE(st.ok()) << st.to_string();
    LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  }
  /// Decode args over arena 1 with lengths d_lens1.
  lkv_latent_decode_args decode_args(const DeviceBuffer<uint16_t>& q, void* out, lkv_dtype dt) {
    lkv_latent_decode_args a{};
    a.batch_size = kBatch;
    a.pages = pages(d_lens1);
    a.q = q.get();
    a.q_dtype = LKV_DTYPE_F16;
    a.q_stride_batch = int64_t{layer.num_qo_heads} * layer.head_dim;
    a.q_stride_head = layer.head_dim;
    a.out = out;
    a.out_dtype = dt;
    a.out_stride_batch = int64_t{layer.num_qo_heads} * kRankV;
    a.out_stride_head = kRankV;
    return a;
  }
  /// The C++ decode params equivalent to decode_args() over arena 2.
  LatentDecodeParams cpp_decode(const DeviceBuffer<uint16_t>& q, void* out) const {
    LatentDecodeParams p;
    p.batch_size = kBatch;
    p.num_qo_heads = layer.num_qo_heads;
    p.num_kv_heads = layer.num_kv_heads;
    p.head_dim = layer.head_dim;
    p.group_size = layer.group_size;
    p.group_heads = d_gh.get();
    p.q = q.get();
    p.q_stride_batch = int64_t{layer.num_qo_heads} * layer.head_dim;
    p.q_stride_head = layer.head_dim;
    p.b_k = d_bk.get();
    p.b_k_i8 = d_bi8.get();
    p.b_k_i8_scale = d_bscale.get();
    p.b_k_i8_rowsum = d_browsum.get();
    p.inv_freq = d_inv.get();
    p.sm_scale = layer.sm_scale;
    p.k = k2;
    p.v = v2;
    p.window = window();
    p.pages.indptr = d_indptr.get();
    p.pages.indices = d_indices.get();
    p.pages.seq_lens = d_lens2.get();
    p.pages.page_size = desc.page_size;
    p.out = out;
    p.out_dtype = DType::kF32;
    p.out_stride_batch = int64_t{layer.num_qo_heads} * kRankV;
    p.out_stride_head = kRankV;
    return p;
  }
};

DecodePlan cpp_plan(const lkv_decode_plan& c) {
  DecodePlan p;
  p.max_seq_len = c.max_seq_len;
  p.num_splits = c.num_splits;
  p.tokens_per_split = c.tokens_per_split;
  p.heads_per_cta = c.heads_per_cta;
  p.extra_splits = c.extra_splits;
  p.workspace_bytes = c.workspace_bytes;
  return p;
}

struct LatentCase {
  const char* name;
  int bits, residual, chunk;
};

class CApiLatentGpu : public ::testing::TestWithParam<LatentCase> {};

TEST_P(CApiLatentGpu, MatchesCppApiAndReference) {
  LKV_REQUIRE_GPU();
  const LatentCase c = GetParam();
  const std::vector<int> final_lens = {23, 4, 48};
  LatentProblem pr(c.bits, c.residual, c.chunk, final_lens);
  ASSERT_FALSE(::testing::Test::HasFailure());
  lkv_device_info info{};
  ASSERT_LKV(lkv_device_query(&info));
  EXPECT_GE(info.compute_capability, 80);
  EXPECT_GT(info.num_sms, 0);
  EXPECT_GT(info.free_bytes, 0);

  // A prompt per sequence, then three single-token steps: the page table must hold them.
  ASSERT_LKV(lkv_latent_cache_check_pages(pr.c1, 3, pr.indptr.data(), pr.indices.data(),
                                          std::vector<int32_t>{20, 1, 45}.data(),
                                          std::vector<int32_t>{3, 3, 3}.data()));
  pr.append_both({20, 1, 45});
  for (int step = 0; step < 3; ++step) pr.append_both({1, 1, 1});
  ASSERT_FALSE(::testing::Test::HasFailure());
  EXPECT_EQ(pr.d_lens1.download(), std::vector<int32_t>(final_lens.begin(), final_lens.end()));
  EXPECT_EQ(pr.d_lens2.download(), std::vector<int32_t>(final_lens.begin(), final_lens.end()));
  const std::vector<uint8_t> arena1 = pr.a1.download();
  EXPECT_TRUE(arena1 == pr.a2.download()) << "C API cache bytes differ from the C++ API's";

  // Decode through both APIs with the same plan: identical outputs.
  std::mt19937 rng(99);
  const int qo = pr.layer.num_qo_heads, hd = pr.layer.head_dim;
  const std::vector<uint16_t> q = random_half(size_t{3} * qo * hd, 1.0f, rng);
  DeviceBuffer<uint16_t> d_q(q);
  const size_t out_elems = size_t{3} * qo * LatentProblem::kRankV;
  for (int sms : {1, info.num_sms, 4096}) {
    SCOPED_TRACE(::testing::Message() << c.name << " num_sms " << sms);
    lkv_decode_plan plan{};
    ASSERT_LKV(lkv_latent_decode_plan(&pr.desc, &pr.layer, 3, 48, sms, &plan));
    DeviceBuffer<uint8_t> ws(std::max<int64_t>(plan.workspace_bytes, 16));
    DeviceBuffer<float> out1(out_elems), out2(out_elems);
    out1.fill_bytes(0xFF);
    out2.fill_bytes(0xFF);
    const lkv_latent_decode_args a = pr.decode_args(d_q, out1.get(), LKV_DTYPE_F32);
    if (plan.workspace_bytes > 0) {
      EXPECT_LKV_STATUS(lkv_latent_decode_run(pr.c1, &pr.layer, &a, &plan, ws.get(),
                                              plan.workspace_bytes - 1, nullptr),
                        LKV_ERR_OUT_OF_MEMORY, "workspace");
    }
    ASSERT_LKV(lkv_latent_decode_run(pr.c1, &pr.layer, &a, &plan, ws.get(), plan.workspace_bytes,
                                     nullptr));
    const Status st = latent_decode_run(pr.cpp_decode(d_q, out2.get()), cpp_plan(plan), ws.get(),
                                        plan.workspace_bytes, nullptr);
    ASSERT_TRUE(st.ok()) << st.to_string();
    LKV_ASSERT_CUDA(cudaDeviceSynchronize());
    const std::vector<float> got = out1.download();
    EXPECT_TRUE(got == out2.download()) << "C API decode differs from the C++ API's";

    // Against the CPU reference on the downloaded cache (host views rebased into `arena1`).
    lkv_latent_view kv{}, vv{};
    ASSERT_LKV(lkv_latent_cache_views(pr.c1, &kv, &vv));
    const auto rebase = [&](void* p) -> void* {
      if (!p) return nullptr;
      const auto off = static_cast<uint8_t*>(p) - static_cast<uint8_t*>(pr.a1.get());
      return const_cast<uint8_t*>(arena1.data()) + off;
    };
    LatentDecodeParams hp = pr.cpp_decode(d_q, nullptr);
    hp.k = pr.to_view(kv, LatentProblem::kRankK);
    hp.v = pr.to_view(vv, LatentProblem::kRankV);
    for (LatentCacheView* v : {&hp.k, &hp.v}) {
      v->codes = rebase(v->codes);
      v->scale_zero = rebase(v->scale_zero);
      v->ring = rebase(v->ring);
    }
    hp.group_heads = pr.group_heads.data();
    hp.q = q.data();
    hp.b_k = pr.b_k.data();
    hp.b_k_i8 = pr.b_i8.values.data();
    hp.b_k_i8_scale = pr.b_i8.scale.data();
    hp.b_k_i8_rowsum = pr.b_i8.rowsum.data();
    hp.inv_freq = pr.inv_freq.data();
    hp.pages.indptr = pr.indptr.data();
    hp.pages.indices = pr.indices.data();
    const std::vector<int32_t> lens(final_lens.begin(), final_lens.end());
    hp.pages.seq_lens = lens.data();
    std::vector<float> host_out(out_elems);
    hp.out = host_out.data();
    const reference::DecodeValues exact = reference::latent_decode_values(hp);
    reference::LatentDecodeOptions emu_opt;
    emu_opt.emulate_kernel = true;
    const reference::DecodeValues emu = reference::latent_decode_values(hp, emu_opt);
    const std::vector<double> got_d(got.begin(), got.end());
    const double e_emu = rel_err(emu.out, exact.out), e_k = rel_err(got_d, exact.out);
    EXPECT_LE(e_k, 2.0 * e_emu + 2e-4) << "emulated-reference error " << e_emu;
  }

  // Value up-projection of an fp16 decode result against B_v · z in double.
  lkv_decode_plan plan{};
  ASSERT_LKV(lkv_latent_decode_plan(&pr.desc, &pr.layer, 3, 48, info.num_sms, &plan));
  DeviceBuffer<uint8_t> ws(std::max<int64_t>(plan.workspace_bytes, 16));
  DeviceBuffer<uint16_t> z(out_elems), o(size_t{3} * qo * hd);
  const lkv_latent_decode_args a = pr.decode_args(d_q, z.get(), LKV_DTYPE_F16);
  ASSERT_LKV(
      lkv_latent_decode_run(pr.c1, &pr.layer, &a, &plan, ws.get(), plan.workspace_bytes, nullptr));
  int64_t vp_bytes = 0;
  ASSERT_LKV(lkv_value_projection_workspace_size(&pr.desc, &pr.layer, &vp_bytes));
  DeviceBuffer<uint8_t> vp_ws(vp_bytes);
  lkv_value_projection_args va{};
  va.batch_size = 3;
  va.z = z.get();
  va.z_stride_batch = int64_t{qo} * LatentProblem::kRankV;
  va.o = o.get();
  va.o_stride_batch = int64_t{qo} * hd;
  ASSERT_LKV(
      lkv_value_projection_run(pr.c1, &pr.layer, &va, pr.cublas, vp_ws.get(), vp_bytes, nullptr));
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  const std::vector<uint16_t> zh = z.download(), oh = o.download();
  std::vector<double> want(oh.size()), got(oh.size());
  const int ratio = qo / pr.layer.num_kv_heads, rv = LatentProblem::kRankV;
  for (int b = 0; b < 3; ++b)
    for (int h = 0; h < qo; ++h) {
      const int kvh = h / ratio;
      const int slot = static_cast<int>(
          std::find(pr.group_heads.begin(), pr.group_heads.end(), kvh) - pr.group_heads.begin());
      for (int d = 0; d < hd; ++d) {
        const size_t row = size_t(slot) * hd + d;  // group g, slot s -> row (g*gs + s)*hd + d
        double acc = 0;
        for (int cidx = 0; cidx < rv; ++cidx)
          acc += double(half_bits_to_float(pr.b_v[row * rv + cidx])) *
                 half_bits_to_float(zh[(size_t(b) * qo + h) * rv + cidx]);
        want[(size_t(b) * qo + h) * hd + d] = acc;
        got[(size_t(b) * qo + h) * hd + d] = half_bits_to_float(oh[(size_t(b) * qo + h) * hd + d]);
      }
    }
  EXPECT_LE(rel_err(got, want), 2e-3);

  // The same projection fused into the decode's split combine (up_project, with the plan above,
  // made with layer.b_v set): head-space output in one call. It projects the fp32 latent result,
  // the two-step path its fp16 copy, so the two agree to fp16 rounding.
  DeviceBuffer<uint16_t> fused(size_t{3} * qo * hd);
  lkv_latent_decode_args af = pr.decode_args(d_q, fused.get(), LKV_DTYPE_F16);
  af.out_stride_batch = int64_t{qo} * hd;
  af.out_stride_head = hd;
  af.up_project = 1;
  ASSERT_LKV(
      lkv_latent_decode_run(pr.c1, &pr.layer, &af, &plan, ws.get(), plan.workspace_bytes, nullptr));
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  const std::vector<uint16_t> fh = fused.download();
  std::vector<double> got_fused(fh.size());
  for (size_t i = 0; i < fh.size(); ++i) got_fused[i] = half_bits_to_float(fh[i]);
  EXPECT_LE(rel_err(got_fused, want), 2e-3);
}

INSTANTIATE_TEST_SUITE_P(Configs, CApiLatentGpu,
                         ::testing::Values(LatentCase{"fp16_pages_only", 16, 0, 1},
                                           LatentCase{"int4_window", 4, 16, 8}),
                         [](const ::testing::TestParamInfo<LatentCase>& info) {
                           return std::string(info.param.name);
                         });

// Engine pattern: capture one decode step (append one token per sequence, then decode) through
// the C API into a CUDA graph and replay it; each replay advances the lengths on the device. The
// same steps run eagerly through the C API on a second arena must give identical bytes.
TEST(CApiGraph, ReplayedDecodeStepEqualsEagerSteps) {
  LKV_REQUIRE_GPU();
  const int kSteps = 12;
  LatentProblem pr(4, 16, 8, {20 + kSteps, 1 + kSteps, 45 + kSteps});
  ASSERT_FALSE(::testing::Test::HasFailure());
  lkv_latent_cache* eager = pr.c2;  // arena 2 driven through the C API as well
  lkv_device_info info{};
  ASSERT_LKV(lkv_device_query(&info));
  lkv_decode_plan plan{};
  ASSERT_LKV(lkv_latent_decode_plan(&pr.desc, &pr.layer, 3, 45 + kSteps, info.num_sms, &plan));
  DeviceBuffer<uint8_t> ws(std::max<int64_t>(plan.workspace_bytes, 16));
  DeviceBuffer<uint8_t> ws2(std::max<int64_t>(plan.workspace_bytes, 16));
  DeviceBuffer<uint8_t> aws2(pr.append_ws.size());
  std::mt19937 rng(5);
  const int qo = pr.layer.num_qo_heads, hd = pr.layer.head_dim;
  DeviceBuffer<uint16_t> d_q(random_half(size_t{3} * qo * hd, 1.0f, rng));
  DeviceBuffer<uint16_t> prompt(random_half(size_t{66} * LatentProblem::kDModel, 1.0f, rng));
  DeviceBuffer<uint16_t> token(random_half(size_t{3} * LatentProblem::kDModel, 1.0f, rng));
  DeviceBuffer<int32_t> prompt_app(std::vector<int32_t>{0, 20, 21, 66});
  DeviceBuffer<int32_t> step_app(std::vector<int32_t>{0, 1, 2, 3});
  const size_t out_elems = size_t{3} * qo * LatentProblem::kRankV;
  DeviceBuffer<float> out1(out_elems), out2(out_elems);

  const auto step = [&](lkv_latent_cache* c, DeviceBuffer<int32_t>& lens,
                        DeviceBuffer<uint8_t>& aws, DeviceBuffer<uint8_t>& dws,
                        DeviceBuffer<float>& out, cudaStream_t s) {
    lkv_latent_append_args a = pr.append_args(step_app, token, 3, lens);
    lkv_status st = lkv_latent_append_run(c, &pr.layer, &a, pr.cublas, aws.get(), aws.size(), s);
    if (st != LKV_OK) return st;
    lkv_latent_decode_args d = pr.decode_args(d_q, out.get(), LKV_DTYPE_F32);
    d.pages = pr.pages(lens);
    return lkv_latent_decode_run(c, &pr.layer, &d, &plan, dws.get(), plan.workspace_bytes, s);
  };
  cudaStream_t stream;
  LKV_ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  // Prompts eagerly on both arenas.
  for (auto [c, lens, aws] : {std::make_tuple(pr.c1, &pr.d_lens1, &pr.append_ws),
                              std::make_tuple(eager, &pr.d_lens2, &aws2)}) {
    lkv_latent_append_args a = pr.append_args(prompt_app, prompt, 66, *lens);
    ASSERT_LKV(lkv_latent_append_run(c, &pr.layer, &a, pr.cublas, aws->get(), aws->size(), stream));
  }
  // Warm-up outside the capture (kernel attributes, cuBLAS's per-stream state): one eager step on
  // each arena, so both have 1 step done before the graph takes over arena 1.
  ASSERT_LKV(step(pr.c1, pr.d_lens1, pr.append_ws, ws, out1, stream));
  ASSERT_LKV(step(eager, pr.d_lens2, aws2, ws2, out2, stream));
  LKV_ASSERT_CUDA(cudaStreamSynchronize(stream));

  cudaGraph_t graph;
  LKV_ASSERT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const lkv_status captured = step(pr.c1, pr.d_lens1, pr.append_ws, ws, out1, stream);
  const std::string capture_msg = lkv_last_error_message();
  LKV_ASSERT_CUDA(cudaStreamEndCapture(stream, &graph));
  ASSERT_EQ(captured, LKV_OK) << capture_msg;
  cudaGraphExec_t exec;
  LKV_ASSERT_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 1; i < kSteps; ++i) {
    LKV_ASSERT_CUDA(cudaGraphLaunch(exec, stream));
    ASSERT_LKV(step(eager, pr.d_lens2, aws2, ws2, out2, stream));
  }
  LKV_ASSERT_CUDA(cudaStreamSynchronize(stream));
  const std::vector<int32_t> want = {20 + kSteps, 1 + kSteps, 45 + kSteps};
  EXPECT_EQ(pr.d_lens1.download(), want);
  EXPECT_EQ(pr.d_lens2.download(), want);
  EXPECT_TRUE(pr.a1.download() == pr.a2.download()) << "graph replays wrote different cache bytes";
  const std::vector<float> got = out1.download();
  EXPECT_TRUE(got == out2.download()) << "graph replay decode differs from eager";
  for (float x : got) ASSERT_TRUE(std::isfinite(x));
  LKV_ASSERT_CUDA(cudaGraphExecDestroy(exec));
  LKV_ASSERT_CUDA(cudaGraphDestroy(graph));
  LKV_ASSERT_CUDA(cudaStreamDestroy(stream));
}

// fp16 paged baseline: append places rows where reference::paged_decode reads them (compared as
// bytes against a host-built arena), and decode matches the reference.
TEST(CApiPagedGpu, AppendAndDecodeMatchReference) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(11);
  lkv_paged_cache_desc desc{};
  desc.num_kv_heads = 4;
  desc.head_dim = 64;
  desc.page_size = 16;
  desc.num_pages = 10;
  const int batch = 3, qo = 8, hd = 64, row = 4 * 64;
  lkv_cache_sizes sizes{};
  ASSERT_LKV(lkv_paged_cache_size(&desc, &sizes));
  DeviceBuffer<uint8_t> arena(sizes.arena_bytes);
  arena.fill_bytes(0x5A);
  lkv_paged_cache* cache = nullptr;
  ASSERT_LKV(lkv_paged_cache_create(&desc, arena.get(), sizes.arena_bytes, &cache));
  lkv_paged_view view{};
  ASSERT_LKV(lkv_paged_cache_view(cache, &view));
  std::vector<uint8_t> host(sizes.arena_bytes, 0x5A);
  const std::vector<int> final_lens = {21, 2, 46};
  std::vector<int32_t> indptr, indices;
  make_pages(final_lens, desc.page_size, desc.num_pages, rng, &indptr, &indices);
  DeviceBuffer<int32_t> d_indptr(indptr), d_indices(indices);
  DeviceBuffer<int32_t> d_lens(std::vector<int32_t>(batch, 0));
  std::vector<int32_t> lens(batch, 0);
  ASSERT_LKV(lkv_paged_cache_check_pages(
      cache, batch, indptr.data(), indices.data(), lens.data(),
      std::vector<int32_t>(final_lens.begin(), final_lens.end()).data()));
  const int64_t k_off = 0;
  const int64_t v_off = static_cast<uint8_t*>(view.v) - static_cast<uint8_t*>(view.k);
  for (const std::vector<int>& counts : {std::vector<int>{20, 1, 45}, std::vector<int>{1, 1, 1}}) {
    std::vector<int32_t> app(1, 0);
    for (int n : counts) app.push_back(app.back() + n);
    const int rows = app.back();
    // Rows with a stride of row + 8 elements, as an engine's fused QKV buffer might have.
    const int64_t stride = row + 8;
    const std::vector<uint16_t> k = random_half(size_t(rows) * stride, 1.0f, rng);
    const std::vector<uint16_t> v = random_half(size_t(rows) * stride, 1.0f, rng);
    DeviceBuffer<uint16_t> dk(k), dv(v);
    DeviceBuffer<int32_t> d_app(app);
    lkv_paged_append_args a{};
    a.batch_size = batch;
    a.num_tokens = rows;
    a.append_indptr = d_app.get();
    a.k = dk.get();
    a.v = dv.get();
    a.k_stride = a.v_stride = stride;
    a.pages = {d_indptr.get(), d_indices.get(), d_lens.get()};
    a.seq_lens_out = d_lens.get();
    ASSERT_LKV(lkv_paged_append_run(cache, &a, nullptr));
    for (int b = 0; b < batch; ++b)
      for (int i = 0; i < counts[b]; ++i) {
        const int pos = lens[b] + i;
        const int64_t page = indices[indptr[b] + pos / desc.page_size];
        for (int h = 0; h < 4; ++h) {
          const int64_t dst = 2 * (page * view.page_stride + h * view.head_stride +
                                   (pos % desc.page_size) * view.token_stride);
          const size_t src = size_t(app[b] + i) * stride + h * hd;
          std::memcpy(host.data() + k_off + dst, k.data() + src, 2 * hd);
          std::memcpy(host.data() + v_off + dst, v.data() + src, 2 * hd);
        }
      }
    for (int b = 0; b < batch; ++b) lens[b] += counts[b];
  }
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(d_lens.download(), std::vector<int32_t>(final_lens.begin(), final_lens.end()));
  EXPECT_TRUE(arena.download() == host) << "paged append placed rows differently";

  lkv_device_info info{};
  ASSERT_LKV(lkv_device_query(&info));
  lkv_decode_plan plan{};
  ASSERT_LKV(lkv_paged_decode_plan(&desc, qo, batch, 46, info.num_sms, &plan));
  DeviceBuffer<uint8_t> ws(std::max<int64_t>(plan.workspace_bytes, 16));
  const std::vector<uint16_t> q = random_half(size_t(batch) * qo * hd, 1.0f, rng);
  DeviceBuffer<uint16_t> d_q(q), d_out(q.size());
  d_out.fill_bytes(0xFF);
  lkv_paged_decode_args d{};
  d.batch_size = batch;
  d.num_qo_heads = qo;
  d.sm_scale = 0.125f;
  d.pages = {d_indptr.get(), d_indices.get(), d_lens.get()};
  d.q = d_q.get();
  d.q_stride_batch = d.out_stride_batch = int64_t{qo} * hd;
  d.q_stride_head = d.out_stride_head = hd;
  d.out = d_out.get();
  ASSERT_LKV(lkv_paged_decode_run(cache, &d, &plan, ws.get(), plan.workspace_bytes, nullptr));
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());

  PagedDecodeParams p;
  p.batch_size = batch;
  p.num_qo_heads = qo;
  p.num_kv_heads = 4;
  p.head_dim = hd;
  p.q = q.data();
  p.q_stride_batch = int64_t{qo} * hd;
  p.q_stride_head = hd;
  p.k_cache = host.data() + k_off;
  p.v_cache = host.data() + v_off;
  p.page_stride = view.page_stride;
  p.head_stride = view.head_stride;
  p.token_stride = view.token_stride;
  p.pages.indptr = indptr.data();
  p.pages.indices = indices.data();
  p.pages.seq_lens = lens.data();
  p.pages.page_size = desc.page_size;
  p.sm_scale = 0.125f;
  std::vector<uint16_t> host_out(q.size());
  p.out = host_out.data();
  p.out_stride_batch = int64_t{qo} * hd;
  p.out_stride_head = hd;
  const reference::DecodeValues exact = reference::paged_decode_values(p);
  std::vector<double> got, rounded;
  for (size_t i = 0; i < exact.out.size(); ++i)
    rounded.push_back(half_bits_to_float(float_to_half_bits(static_cast<float>(exact.out[i]))));
  for (uint16_t h : d_out.download()) got.push_back(half_bits_to_float(h));
  // Same bound as the paged decode kernel test: twice the fp16 output rounding + noise.
  EXPECT_LE(rel_err(got, exact.out), 2.0 * rel_err(rounded, exact.out) + 1e-4);
  lkv_paged_cache_destroy(cache);
}

}  // namespace
}  // namespace latentkv
