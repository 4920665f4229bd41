// Shared pieces of the C API tests: example descriptions and a status/message assertion.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "latentkv/c_api.h"

/// Expects `call` to return `code` with a one-line message (lkv_last_error_message) containing
/// `fragment`.
#define EXPECT_LKV_STATUS(call, code, fragment)                                              \
  do {                                                                                       \
    const lkv_status lkv_got_ = (call);                                                      \
    const std::string lkv_msg_ = lkv_last_error_message();                                   \
    EXPECT_EQ(lkv_got_, (code)) << #call << " -> " << lkv_status_name(lkv_got_) << ": "      \
                                << lkv_msg_;                                                 \
    EXPECT_NE(lkv_msg_.find(fragment), std::string::npos)                                    \
        << "message \"" << lkv_msg_ << "\" lacks \"" << (fragment) << "\"";                  \
    EXPECT_EQ(lkv_msg_.find('\n'), std::string::npos) << "multi-line message: " << lkv_msg_; \
  } while (0)

#define EXPECT_LKV_OK(call)                                                             \
  do {                                                                                  \
    const lkv_status lkv_got_ = (call);                                                 \
    EXPECT_EQ(lkv_got_, LKV_OK) << #call << " -> " << lkv_status_name(lkv_got_) << ": " \
                                << lkv_last_error_message();                            \
  } while (0)

namespace latentkv::testing {

/// 2 groups, ranks 128 / 64, 4-bit latents, pages of 16 tokens, 10 pages, window 32 + chunk 16,
/// 4 batch slots.
inline lkv_latent_cache_desc example_latent_desc() {
  lkv_latent_cache_desc d{};
  d.num_groups = 2;
  d.rank_k = 128;
  d.rank_v = 64;
  d.bits = 4;
  d.quant_group = 0;
  d.page_size = 16;
  d.num_pages = 10;
  d.residual = 32;
  d.chunk = 16;
  d.max_batch = 4;
  return d;
}

/// Shapes that the decode kernel supports with example_latent_desc(): 8 KV heads in groups of 4
/// is too many for 2 groups, so 2 groups of 2 KV heads, head_dim 64, GQA ratio 2.
inline lkv_latent_layer example_layer() {
  lkv_latent_layer l{};
  l.d_model = 256;
  l.num_qo_heads = 8;
  l.num_kv_heads = 4;
  l.head_dim = 64;
  l.group_size = 2;
  l.sm_scale = 0.125f;
  return l;
}

inline lkv_paged_cache_desc example_paged_desc() {
  lkv_paged_cache_desc d{};
  d.num_kv_heads = 4;
  d.head_dim = 64;
  d.page_size = 16;
  d.num_pages = 10;
  return d;
}

}  // namespace latentkv::testing
