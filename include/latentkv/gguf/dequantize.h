// Dequantization of ggml tensor data (GGUF tensor bytes) to float32.
//
// Supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, q8_K.
// Results follow ggml's reference dequantizers (ggml-quants.c) element for element; the
// arithmetic is float32 like ggml's, so values agree to the last bit up to fused multiply-add
// contraction (at most one rounding, only in the formats with a min/offset term).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "latentkv/gguf/ggml_type.h"
#include "latentkv/gguf/gguf_file.h"

namespace latentkv {

/// IEEE binary16 → float32 (exact; handles subnormals, inf and NaN).
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  } else {
    const float sub = static_cast<float>(mant) * 5.9604644775390625e-08f;  // mant · 2^-24, exact
    std::memcpy(&bits, &sub, sizeof bits);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// bfloat16 → float32 (exact: the upper half of a float32).
inline float bf16_to_fp32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// True when dequantize_row() handles `type`.
bool ggml_can_dequantize(GgmlType type);

/// Dequantizes `n` consecutive elements (a multiple of the type's block size) from `src` (ggml
/// blocks, any byte alignment) into dst[0, n). Throws Error(kUnsupported) for a type without a
/// dequantizer and kInvalidArgument for a bad n.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

/// Dequantizes a matrix stored as `n_rows` ggml rows of `n_cols` elements each (rows back to
/// back, ggml_row_bytes(type, n_cols) bytes per row) into a row-major float matrix
/// dst[n_rows × n_cols]. Source row r is written to destination row dst_row[r] when `dst_row` is
/// given (a permutation of [0, n_rows); it is how the loader undoes llama.cpp's Q/K row order),
/// else to row r. Runs rows in parallel with OpenMP when the matrix is large. Throws like
/// dequantize_row, and kInvalidArgument when dst_row is not a permutation.
void dequantize_rows(GgmlType type, const void* src, int64_t n_rows, int64_t n_cols, float* dst,
                     const std::vector<int64_t>* dst_row = nullptr);

/// One matrix for dequantize_batch (the arguments of dequantize_rows).
struct DequantizeJob {
  GgmlType type = GgmlType::kF32;
  const void* src = nullptr;
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  float* dst = nullptr;
  const std::vector<int64_t>* dst_row = nullptr;  ///< optional row permutation, as above
};

/// Runs many dequantize_rows jobs in a single OpenMP parallel region, split into row chunks of
/// similar size. Loading a model is hundreds of mostly small tensors; one region for all of them
/// avoids a fork/join per tensor, which is costly when the cores are shared. Every job is
/// validated (throwing like dequantize_rows) before any is run.
void dequantize_batch(const std::vector<DequantizeJob>& jobs);

/// The whole tensor as floats, in GGUF element order (row-major over info.shape()).
std::vector<float> dequantize_tensor(const GgufFile& file, const GgufTensorInfo& info);

}  // namespace latentkv
