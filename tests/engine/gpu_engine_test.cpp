// GPU engine checks that need no GPU: memory sizing and the error without a usable GPU.
#include "latentkv/engine/gpu_engine.h"

#include <gtest/gtest.h>

#include "model/tiny_llama.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

TEST(GpuEngineTest, Fp16CacheBytesFollowTheLayout) {
  testing::TinyLlamaSpec s;
  s.n_layers = 3;
  s.num_kv_heads = 2;
  s.num_qo_heads = 4;
  s.head_dim = 64;
  s.context_length = 4096;
  const LlamaConfig c = testing::tiny_config(s);
  GpuEngineOptions o;
  o.max_batch = 5;
  o.max_seq_len = 1000;
  o.page_size = 16;
  const GpuEngineMemory m = GpuEngine::memory_needed(c, nullptr, o);
  // 63 pages per sequence (1000 / 16 rounded up), K and V, fp16.
  EXPECT_EQ(m.kv_cache, int64_t{3} * 2 * (5 * 63) * 16 * (2 * 64) * 2);
  EXPECT_EQ(m.kv_bytes_per_token, int64_t{4} * 3 * 2 * 64);
  EXPECT_GT(m.scratch, 0);
  o.max_seq_len = 5000;  // beyond the model's context
  EXPECT_THROW(GpuEngine::memory_needed(c, nullptr, o), Error);
  o.max_seq_len = 0;  // = context length
  EXPECT_EQ(GpuEngine::memory_needed(c, nullptr, o).kv_cache,
            int64_t{3} * 2 * (5 * 256) * 16 * (2 * 64) * 2);
}

TEST(GpuEngineTest, WithoutAGpuTheErrorSaysSo) {
  if (gpu_available()) GTEST_SKIP() << "a GPU is present";
  const LlamaWeights w = testing::make_tiny_llama(testing::TinyLlamaSpec{});
  try {
    GpuModelWeights::upload(w);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnsupported);
    const std::string msg = e.what();
    EXPECT_TRUE(msg.find("no CUDA GPU") != std::string::npos ||
                msg.find("no CUDA support") != std::string::npos)
        << msg;
  }
}

TEST(GpuEngineTest, WeightsThatDoNotMatchTheirConfigAreRejected) {
#if !defined(LATENTKV_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#endif
  LlamaWeights w = testing::make_tiny_llama(testing::TinyLlamaSpec{});
  w.layers[1].w_up.conservativeResize(w.layers[1].w_up.rows() - 1, Eigen::NoChange);
  try {
    GpuModelWeights::upload(w);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("W_up of layer 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace latentkv
