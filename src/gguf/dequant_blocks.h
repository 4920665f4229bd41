// Per-format block dequantizers (internal). Each takes `nb` consecutive ggml blocks starting at
// `x` (any byte alignment) and writes nb × block_size floats to `y`. Byte offsets within a block
// follow the block structs of ggml-common.h; half-precision scales are IEEE binary16.
#pragma once

#include <cstdint>

namespace latentkv::dequant {

// 32-element blocks
void q4_0(const uint8_t* x, float* y, int64_t nb);  // 18 B: d, qs[16]
void q4_1(const uint8_t* x, float* y, int64_t nb);  // 20 B: d, m, qs[16]
void q5_0(const uint8_t* x, float* y, int64_t nb);  // 22 B: d, qh[4], qs[16]
void q5_1(const uint8_t* x, float* y, int64_t nb);  // 24 B: d, m, qh[4], qs[16]
void q8_0(const uint8_t* x, float* y, int64_t nb);  // 34 B: d, qs[32] (int8)

// 256-element super-blocks (k-quants)
void q2_k(const uint8_t* x, float* y, int64_t nb);  // 84 B: scales[16], qs[64], d, dmin
void q3_k(const uint8_t* x, float* y, int64_t nb);  // 110 B: hmask[32], qs[64], scales[12], d
void q4_k(const uint8_t* x, float* y, int64_t nb);  // 144 B: d, dmin, scales[12], qs[128]
void q5_k(const uint8_t* x, float* y, int64_t nb);  // 176 B: d, dmin, scales[12], qh[32], qs[128]
void q6_k(const uint8_t* x, float* y, int64_t nb);  // 210 B: ql[128], qh[64], scales[16], d
void q8_k(const uint8_t* x, float* y, int64_t nb);  // 292 B: d (f32), qs[256], bsums[16]

}  // namespace latentkv::dequant
