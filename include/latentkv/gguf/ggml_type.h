// ggml tensor element types as they appear in GGUF files, and their block geometry.
//
// A ggml tensor row of n elements is stored as n / block_size blocks of type_size bytes each
// (block_size is 1 for plain F32/F16/BF16/integer types). The numeric ids are ggml's and are
// part of the file format.
#pragma once

#include <cstdint>
#include <string>

namespace latentkv {

/// ggml element/block type ids (ggml.h `enum ggml_type`). Ids absent here are unknown.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  kNVFP4 = 40,
  kQ1_0 = 41,
};

/// Block geometry of a ggml type.
struct GgmlTypeInfo {
  const char* name;  ///< ggml's name ("q4_K", "f16", ...)
  int block_size;    ///< elements per block
  int type_size;     ///< bytes per block
};

/// True when `id` is a ggml type this build knows the block geometry of.
bool ggml_type_known(uint32_t id);
/// Geometry of a known type; throws Error(kUnsupported) for an unknown id.
const GgmlTypeInfo& ggml_type_info(GgmlType type);
/// ggml's name of the type ("q4_1"), or "type<id>" when unknown.
std::string ggml_type_name(GgmlType type);
/// Bytes taken by `n` elements of `type`. Throws Error(kInvalidArgument) when n is negative or not
/// a multiple of the block size.
uint64_t ggml_row_bytes(GgmlType type, int64_t n);

}  // namespace latentkv
