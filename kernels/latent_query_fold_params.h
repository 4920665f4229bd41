// Parameters of the query-folding kernel (latent_query_fold.cuh); plain C++ so that host launch
// code includes them without the kernel.
#pragma once

#include <cstdint>

namespace latentkv::kernels {

struct QueryFoldParams {
  int num_qo_heads, group_size, head_dim, rank;
  const int32_t* group_heads;  // [num_kv_heads]; query head = KV head (ratio 1)
  const void* q;
  int q_bf16;
  int64_t q_sb, q_sh;
  float q_scale;
  const uint16_t* b_k;  // [num_groups][group_size*head_dim][rank]
  uint16_t* w16;        // [batch][num_qo_heads][head_dim][rank]
  int8_t* w8;           // same shape, nullptr when not needed
  float* w8_zsum;       // [batch][num_qo_heads][head_dim]
  float* w8_beta;       // [batch][num_qo_heads][head_dim / 16]
  int w8_e4m3;          // w8 in e4m3 (the warpgroup kernel) instead of int8 (mma.sync kernel)
};

constexpr int kQueryFoldThreads = 128;

}  // namespace latentkv::kernels
