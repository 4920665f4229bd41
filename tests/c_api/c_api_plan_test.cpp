// Host tests of the C API's plans, workspace sizes, run-time argument checks, the no-GPU path,
// the thread-local error message and exception conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "c_api/c_api_fixture.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/attention/paged_decode.h"
#include "latentkv/c_api.h"
#include "latentkv/rope.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::example_latent_desc;
using testing::example_layer;
using testing::example_paged_desc;

/// The C++ decode params of the example description and layer, with host buffers standing in for
/// device memory (plans read no memory).
struct CppDecode {
  std::vector<uint8_t> buf = std::vector<uint8_t>(4096);
  LatentDecodeParams p;
  /// The C++ params of example_latent_desc() / example_layer(), with its window (residual,
  /// chunk) unless given.
  explicit CppDecode(int batch, int residual = 32, int chunk = 16) {
    void* any = buf.data() + (256 - reinterpret_cast<uintptr_t>(buf.data()) % 256);
    QuantConfig q;
    q.bits = 4;
    LatentWindowPolicy w;
    w.residual = residual;
    w.chunk = chunk;
    p.k = make_latent_cache_layout(2, 128, q, 16, 10, w, 4).view;
    p.v = make_latent_cache_layout(2, 64, q, 16, 10, w, 4).view;
    for (LatentCacheView* v : {&p.k, &p.v}) v->codes = v->scale_zero = v->ring = any;
    p.window = w;
    p.batch_size = batch;
    p.num_qo_heads = 8;
    p.num_kv_heads = 4;
    p.head_dim = 64;
    p.group_size = 2;
    p.sm_scale = 0.125f;
    const auto* i32 = static_cast<const int32_t*>(any);
    p.group_heads = p.b_k_i8_rowsum = p.pages.indptr = p.pages.indices = p.pages.seq_lens = i32;
    p.pages.page_size = 16;
    p.b_k = static_cast<const uint16_t*>(any);
    p.b_k_i8 = static_cast<const int8_t*>(any);
    p.b_k_i8_scale = static_cast<const float*>(any);
    p.inv_freq = static_cast<const double*>(any);
    p.q = p.out = any;
  }
};

TEST(CApiPlan, LatentDecodePlanEqualsTheCppPlan) {
  const lkv_latent_cache_desc d = example_latent_desc();
  const lkv_latent_layer layer = example_layer();
  for (int sms : {1, 132, 4096}) {
    for (int batch : {1, 4}) {
      SCOPED_TRACE(::testing::Message() << "sms " << sms << " batch " << batch);
      lkv_decode_plan c{};
      EXPECT_LKV_OK(lkv_latent_decode_plan(&d, &layer, batch, 160, sms, &c));
      CppDecode cpp(batch);
      DecodePlan ref;
      ASSERT_TRUE(latent_decode_plan(cpp.p, 160, sms, &ref).ok());
      EXPECT_EQ(c.batch_size, batch);
      EXPECT_EQ(c.num_qo_heads, 8);
      EXPECT_EQ(c.value_dim, 64);
      EXPECT_EQ(c.max_seq_len, ref.max_seq_len);
      EXPECT_EQ(c.num_splits, ref.num_splits);
      EXPECT_EQ(c.tokens_per_split, ref.tokens_per_split);
      EXPECT_EQ(c.heads_per_cta, ref.heads_per_cta);
      EXPECT_EQ(c.extra_splits, ref.extra_splits);
      EXPECT_EQ(c.workspace_bytes, ref.workspace_bytes);
    }
  }
}

// A layer with value up-projections plans for fused runs (up_project): the C++ plan with b_v.
// With one split (no residual window, one SM) that plan's workspace also holds the split's fp32
// result for the combine-up, which a plan without b_v has no room for.
TEST(CApiPlan, LatentDecodePlanWithBvEqualsTheFusedCppPlan) {
  lkv_latent_cache_desc d = example_latent_desc();
  d.residual = 0;
  d.chunk = 1;
  lkv_latent_layer layer = example_layer();
  layer.b_v = reinterpret_cast<const uint16_t*>(uintptr_t{4096});  // plans read no memory
  lkv_decode_plan fused{}, plain{};
  EXPECT_LKV_OK(lkv_latent_decode_plan(&d, &layer, 2, 160, 1, &fused));
  layer.b_v = nullptr;
  EXPECT_LKV_OK(lkv_latent_decode_plan(&d, &layer, 2, 160, 1, &plain));
  CppDecode cpp(2, 0, 1);
  DecodePlan without;
  ASSERT_TRUE(latent_decode_plan(cpp.p, 160, 1, &without).ok());
  cpp.p.b_v = static_cast<const uint16_t*>(cpp.p.b_k);
  DecodePlan with;
  ASSERT_TRUE(latent_decode_plan(cpp.p, 160, 1, &with).ok());
  ASSERT_EQ(with.num_splits + with.extra_splits, 1);
  EXPECT_GT(with.workspace_bytes, without.workspace_bytes);
  EXPECT_EQ(fused.num_splits, with.num_splits);
  EXPECT_EQ(fused.tokens_per_split, with.tokens_per_split);
  EXPECT_EQ(fused.extra_splits, with.extra_splits);
  EXPECT_EQ(fused.workspace_bytes, with.workspace_bytes);
  EXPECT_EQ(plain.workspace_bytes, without.workspace_bytes);
}

#if defined(LATENTKV_WITH_CUDA)
// A run with b_v on a plan made without it (one split: no room for the split's fp32 result) is
// rejected before anything is launched, so this runs without a GPU too.
TEST(CppDecodeRun, RejectsAPlanMadeWithoutBv) {
  CppDecode cpp(2, 0, 1);
  DecodePlan plan;
  ASSERT_TRUE(latent_decode_plan(cpp.p, 160, 1, &plan).ok());
  ASSERT_EQ(plan.num_splits + plan.extra_splits, 1);
  std::vector<uint8_t> workspace(static_cast<size_t>(plan.workspace_bytes) + 1);
  cpp.p.b_v = static_cast<const uint16_t*>(cpp.p.b_k);
  const Status st =
      latent_decode_run(cpp.p, plan, workspace.data(), plan.workspace_bytes, GpuStream{});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("does not cover these parameters"), std::string::npos)
      << st.message();
}
#endif

TEST(CApiPlan, LatentDecodePlanRejectsWhatTheKernelCannotRun) {
  lkv_latent_cache_desc d = example_latent_desc();
  lkv_latent_layer layer = example_layer();
  lkv_decode_plan plan{};
  // 10 pages of 16 tokens + a window of up to 47 fp16 tokens: 207 tokens fit, 208 need 11 pages.
  EXPECT_LKV_OK(lkv_latent_decode_plan(&d, &layer, 1, 207, 132, &plan));
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 1, 208, 132, &plan),
                    LKV_ERR_INVALID_ARGUMENT,
                    "a sequence of 208 tokens needs 11 pages of 16 tokens; the cache has 10");
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 5, 100, 132, &plan),
                    LKV_ERR_INVALID_ARGUMENT, "batch_size 5 outside [1, max_batch = 4]");
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 1, 100, 0, &plan), LKV_ERR_INVALID_ARGUMENT,
                    "num_sms");
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 1, 0, 132, &plan), LKV_ERR_INVALID_ARGUMENT,
                    "max_seq_len 0");
  layer.head_dim = 96;
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 1, 100, 132, &plan), LKV_ERR_UNSUPPORTED,
                    "head_dim 96");
  layer = example_layer();
  d.bits = 8;  // stored by append, not read by the decode kernel
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 1, 100, 132, &plan), LKV_ERR_UNSUPPORTED,
                    "bits 8");
  d = example_latent_desc();
  d.quant_group = 32;
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 1, 100, 132, &plan), LKV_ERR_UNSUPPORTED,
                    "quant_group 32");
  d = example_latent_desc();
  d.rank_k = 24;
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, &layer, 1, 100, 132, &plan),
                    LKV_ERR_INVALID_ARGUMENT, "rank 24");
  EXPECT_LKV_STATUS(lkv_latent_decode_plan(&d, nullptr, 1, 100, 132, &plan),
                    LKV_ERR_INVALID_ARGUMENT, "layer is null");
}

TEST(CApiPlan, PagedDecodePlanEqualsTheCppPlan) {
  const lkv_paged_cache_desc d = example_paged_desc();
  lkv_decode_plan c{};
  EXPECT_LKV_OK(lkv_paged_decode_plan(&d, 8, 3, 160, 132, &c));
  std::vector<uint8_t> buf(64);
  PagedDecodeParams p;
  p.batch_size = 3;
  p.num_qo_heads = 8;
  p.num_kv_heads = 4;
  p.head_dim = 64;
  p.q = p.k_cache = p.v_cache = p.out = buf.data();
  p.q_stride_head = 64;
  p.q_stride_batch = 8 * 64;
  p.page_stride = 4 * 16 * 64;
  p.head_stride = 16 * 64;
  p.token_stride = 64;
  const auto* i32 = reinterpret_cast<const int32_t*>(buf.data());
  p.pages.indptr = p.pages.indices = p.pages.seq_lens = i32;
  p.pages.page_size = 16;
  p.sm_scale = 1.0f;
  DecodePlan ref;
  ASSERT_TRUE(paged_decode_plan(p, 160, 132, &ref).ok());
  EXPECT_EQ(c.num_splits, ref.num_splits);
  EXPECT_EQ(c.tokens_per_split, ref.tokens_per_split);
  EXPECT_EQ(c.workspace_bytes, ref.workspace_bytes);
  EXPECT_EQ(c.value_dim, 64);
  EXPECT_LKV_STATUS(lkv_paged_decode_plan(&d, 8, 3, 161, 132, &c), LKV_ERR_INVALID_ARGUMENT,
                    "a sequence of 161 tokens needs 11 pages");
  EXPECT_LKV_STATUS(lkv_paged_decode_plan(&d, 6, 3, 100, 132, &c), LKV_ERR_INVALID_ARGUMENT,
                    "num_qo_heads 6 is not a multiple of num_kv_heads 4");
}

TEST(CApiPlan, WorkspaceSizesEqualTheCppSizes) {
  const lkv_latent_cache_desc d = example_latent_desc();
  int64_t bytes = -1;
  EXPECT_LKV_OK(lkv_latent_append_workspace_size(&d, 1000, &bytes));
  LatentAppendParams ap;
  ap.num_groups = 2;
  ap.k.rank = 128;
  ap.v.rank = 64;
  EXPECT_EQ(bytes, latent_append_workspace_bytes(ap, 1000));
  EXPECT_EQ(bytes, 1000 * 2 * (128 + 64) * 4);  // fp32 latents, already a multiple of 256
  EXPECT_LKV_STATUS(lkv_latent_append_workspace_size(&d, -1, &bytes), LKV_ERR_INVALID_ARGUMENT,
                    "max_tokens -1");
  const lkv_latent_layer layer = example_layer();
  EXPECT_LKV_OK(lkv_value_projection_workspace_size(&d, &layer, &bytes));
  EXPECT_EQ(bytes, 256);  // three pointer arrays of 8 heads
}

/// A latent cache over a host buffer and arguments with host pointers: enough for every check
/// that happens before a kernel would be launched.
class CApiRun : public ::testing::Test {
 protected:
  void SetUp() override {
    lkv_cache_sizes s{};
    ASSERT_EQ(lkv_latent_cache_size(&desc_, &s), LKV_OK);
    arena_.resize(s.arena_bytes + 256);
    void* base = arena_.data() + (256 - reinterpret_cast<uintptr_t>(arena_.data()) % 256);
    ASSERT_EQ(lkv_latent_cache_create(&desc_, base, s.arena_bytes, &cache_), LKV_OK);
    ASSERT_EQ(lkv_latent_decode_plan(&desc_, &layer_, 2, 100, 132, &plan_), LKV_OK);
    layer_.group_heads = layer_.b_k_i8_rowsum = ints_.data();
    layer_.a_cat = layer_.b_k = layer_.b_v = layer_.w_o_folded = halves_.data();
    layer_.b_k_i8 = reinterpret_cast<const int8_t*>(halves_.data());
    layer_.b_k_i8_scale = floats_.data();
    layer_.inv_freq = doubles_.data();
    pages_ = {ints_.data(), ints_.data(), ints_.data()};
    decode_.batch_size = 2;
    decode_.pages = pages_;
    decode_.q = halves_.data();
    decode_.q_dtype = LKV_DTYPE_F16;
    decode_.q_stride_batch = 8 * 64;
    decode_.q_stride_head = 64;
    decode_.out = floats_.data();
    decode_.out_dtype = LKV_DTYPE_F32;
    decode_.out_stride_batch = 8 * 64;
    decode_.out_stride_head = 64;
    append_.batch_size = 2;
    append_.num_tokens = 3;
    append_.append_indptr = ints_.data();
    append_.x = halves_.data();
    append_.x_stride = 256;
    append_.pages = pages_;
    append_.seq_lens_out = ints_.data();
  }
  void TearDown() override { lkv_latent_cache_destroy(cache_); }

  lkv_latent_cache_desc desc_ = example_latent_desc();
  lkv_latent_layer layer_ = example_layer();
  lkv_latent_cache* cache_ = nullptr;
  lkv_decode_plan plan_{};
  std::vector<uint8_t> arena_;
  alignas(16) std::vector<int32_t> ints_ = std::vector<int32_t>(64, 0);
  alignas(16) std::vector<uint16_t> halves_ = std::vector<uint16_t>(64, 0);
  std::vector<float> floats_ = std::vector<float>(64, 0.0f);
  std::vector<double> doubles_ = std::vector<double>(64, 0.0);
  lkv_page_table pages_{};
  lkv_latent_decode_args decode_{};
  lkv_latent_append_args append_{};
};

TEST_F(CApiRun, ArgumentErrorsComeBeforeTheGpuCheck) {
  lkv_latent_decode_args a = decode_;
  a.q = nullptr;
  EXPECT_LKV_STATUS(lkv_latent_decode_run(cache_, &layer_, &a, &plan_, nullptr, 0, nullptr),
                    LKV_ERR_INVALID_ARGUMENT,
                    "lkv_latent_decode_run: latent_decode: a required pointer is null");
  a = decode_;
  a.batch_size = 3;
  EXPECT_LKV_STATUS(lkv_latent_decode_run(cache_, &layer_, &a, &plan_, nullptr, 0, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "batch_size 3 outside [1, 2] of the plan");
  a = decode_;
  a.q_dtype = 7;
  EXPECT_LKV_STATUS(lkv_latent_decode_run(cache_, &layer_, &a, &plan_, nullptr, 0, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "q_dtype 7 is not an lkv_dtype");
  lkv_latent_layer other = layer_;
  other.num_qo_heads = 16;
  EXPECT_LKV_STATUS(lkv_latent_decode_run(cache_, &other, &decode_, &plan_, nullptr, 0, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "the plan was made for num_qo_heads 8");
  EXPECT_LKV_STATUS(lkv_latent_decode_run(cache_, &layer_, nullptr, &plan_, nullptr, 0, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "args is null");
  a = decode_;
  a.up_project = 1;
  other = layer_;
  other.b_v = nullptr;
  EXPECT_LKV_STATUS(lkv_latent_decode_run(cache_, &other, &a, &plan_, nullptr, 0, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "up_project needs layer->b_v");
  lkv_latent_append_args b = append_;
  b.x = nullptr;
  EXPECT_LKV_STATUS(lkv_latent_append_run(cache_, &layer_, &b, nullptr, nullptr, 0, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "x / a_cat null");
  b = append_;
  b.batch_size = 5;
  EXPECT_LKV_STATUS(lkv_latent_append_store_run(cache_, &b, floats_.data(), 384, nullptr),
                    LKV_ERR_INVALID_ARGUMENT, "batch_size 5 outside [1, max_batch = 4]");
}

TEST_F(CApiRun, RunsWithoutAGpuReturnNoGpu) {
  if (testing::gpu_available()) GTEST_SKIP() << "a GPU is present: the no-GPU path is not taken";
  const char* reason = "";
#if defined(LATENTKV_WITH_CUDA)
  reason = "no CUDA device is available";
#else
  reason = "built without CUDA";
#endif
  EXPECT_LKV_STATUS(lkv_latent_decode_run(cache_, &layer_, &decode_, &plan_, nullptr, 0, nullptr),
                    LKV_ERR_NO_GPU, std::string("lkv_latent_decode_run: ") + reason);
  EXPECT_LKV_STATUS(lkv_latent_append_run(cache_, &layer_, &append_, nullptr, nullptr, 0, nullptr),
                    LKV_ERR_NO_GPU, reason);
  EXPECT_LKV_STATUS(lkv_latent_append_store_run(cache_, &append_, floats_.data(), 384, nullptr),
                    LKV_ERR_NO_GPU, reason);
  lkv_value_projection_args v{};
  v.batch_size = 2;
  v.z = v.o = halves_.data() + 8;
  v.z_stride_batch = 8 * 64;
  v.o_stride_batch = 8 * 64;
  EXPECT_LKV_STATUS(
      lkv_value_projection_run(cache_, &layer_, &v, nullptr, ints_.data(), 256, nullptr),
      LKV_ERR_NO_GPU, reason);
  v.o_stride_batch = 256;
  EXPECT_LKV_STATUS(lkv_folded_output_run(cache_, &layer_, &v, nullptr, nullptr), LKV_ERR_NO_GPU,
                    reason);
  lkv_device_info info{};
  EXPECT_LKV_STATUS(lkv_device_query(&info), LKV_ERR_NO_GPU,
                    std::string("lkv_device_query: ") + reason);

  const lkv_paged_cache_desc pd = example_paged_desc();
  std::vector<uint8_t> parena(2 * 10 * 8192 + 256);
  void* base = parena.data() + (256 - reinterpret_cast<uintptr_t>(parena.data()) % 256);
  lkv_paged_cache* paged = nullptr;
  ASSERT_EQ(lkv_paged_cache_create(&pd, base, 2 * 10 * 8192, &paged), LKV_OK);
  lkv_paged_append_args pa{};
  pa.batch_size = 1;
  pa.num_tokens = 0;
  pa.append_indptr = ints_.data();
  pa.pages = pages_;
  pa.seq_lens_out = ints_.data();
  EXPECT_LKV_STATUS(lkv_paged_append_run(paged, &pa, nullptr), LKV_ERR_NO_GPU, reason);
  lkv_decode_plan pplan{};
  ASSERT_EQ(lkv_paged_decode_plan(&pd, 8, 1, 100, 132, &pplan), LKV_OK);
  lkv_paged_decode_args pdec{};
  pdec.batch_size = 1;
  pdec.num_qo_heads = 8;
  pdec.sm_scale = 0.125f;
  pdec.pages = pages_;
  pdec.q = pdec.out = halves_.data();
  pdec.q_stride_batch = pdec.out_stride_batch = 8 * 64;
  pdec.q_stride_head = pdec.out_stride_head = 64;
  EXPECT_LKV_STATUS(lkv_paged_decode_run(paged, &pdec, &pplan, nullptr, 0, nullptr), LKV_ERR_NO_GPU,
                    reason);
  lkv_paged_cache_destroy(paged);
}

TEST(CApiErrors, MessagesArePerThreadAndClearedBySuccess) {
  lkv_cache_sizes s{};
  ASSERT_EQ(lkv_latent_cache_size(nullptr, &s), LKV_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(lkv_last_error_message()), "lkv_latent_cache_size: desc is null");
  std::string other_before, other_after;
  std::thread t([&] {
    other_before = lkv_last_error_message();
    lkv_paged_cache_desc d = example_paged_desc();
    d.head_dim = 3;
    (void)lkv_paged_cache_size(&d, &s);
    other_after = lkv_last_error_message();
  });
  t.join();
  EXPECT_EQ(other_before, "");
  EXPECT_NE(other_after.find("lkv_paged_cache_size: head_dim 3"), std::string::npos);
  EXPECT_EQ(std::string(lkv_last_error_message()), "lkv_latent_cache_size: desc is null");
  const lkv_latent_cache_desc d = example_latent_desc();
  EXPECT_EQ(lkv_latent_cache_size(&d, &s), LKV_OK);
  EXPECT_STREQ(lkv_last_error_message(), "");
}

TEST(CApiErrors, StatusNamesAreDistinct) {
  std::vector<std::string> names;
  for (int c = LKV_OK; c <= LKV_ERR_NO_GPU; ++c)
    names.push_back(lkv_status_name(static_cast<lkv_status>(c)));
  EXPECT_EQ(names.front(), "ok");
  EXPECT_EQ(names.back(), "no_gpu");
  EXPECT_EQ(names[LKV_ERR_OUT_OF_MEMORY], "out_of_memory");
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = i + 1; j < names.size(); ++j) EXPECT_NE(names[i], names[j]);
  EXPECT_STREQ(lkv_status_name(static_cast<lkv_status>(99)), "unknown");
  EXPECT_STREQ(lkv_version(), "0.1.0");
}

// make_key_factors_i8 throws latentkv::Error on bad values: the C entry point must convert it.
TEST(CApiHelpers, KeyFactorsMatchTheCppHelperAndConvertErrors) {
  const int groups = 2, gs = 1, hd = 4, rank = 16;
  std::vector<float> b(groups * gs * hd * rank);
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::sin(0.37f * static_cast<float>(i));
  std::vector<int8_t> values(b.size());
  std::vector<float> scale(groups * gs * hd);
  std::vector<int32_t> rowsum(scale.size());
  EXPECT_LKV_OK(lkv_make_key_factors_i8(b.data(), groups, gs, hd, rank, values.data(), scale.data(),
                                        rowsum.data()));
  const LatentKeyFactorsI8 ref = make_key_factors_i8(b, groups, gs, hd, rank);
  EXPECT_EQ(values, ref.values);
  EXPECT_EQ(scale, ref.scale);
  EXPECT_EQ(rowsum, ref.rowsum);
  b[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_LKV_STATUS(lkv_make_key_factors_i8(b.data(), groups, gs, hd, rank, values.data(),
                                            scale.data(), rowsum.data()),
                    LKV_ERR_INVALID_ARGUMENT, "non-finite factor value");
  EXPECT_LKV_STATUS(lkv_make_key_factors_i8(b.data(), 0, gs, hd, rank, values.data(), scale.data(),
                                            rowsum.data()),
                    LKV_ERR_INVALID_ARGUMENT, "sizes must be positive");
}

TEST(CApiHelpers, RopeInverseFrequenciesMatchTheCppConvention) {
  std::vector<double> inv(32);
  const std::vector<float> factors(32, 2.0f);
  EXPECT_LKV_OK(lkv_rope_inv_freq(100000.0, 1.0, factors.data(), 64, inv.data()));
  RopeConfig rope;
  rope.theta = 100000.0;
  rope.freq_factors = factors;
  EXPECT_EQ(inv, rope_inv_freq(rope, 64));
  EXPECT_LKV_STATUS(lkv_rope_inv_freq(10000.0, 1.0, nullptr, 63, inv.data()),
                    LKV_ERR_INVALID_ARGUMENT, "head_dim 63");
  EXPECT_LKV_STATUS(lkv_rope_inv_freq(-1.0, 1.0, nullptr, 64, inv.data()), LKV_ERR_INVALID_ARGUMENT,
                    "theta");
}

}  // namespace
}  // namespace latentkv
