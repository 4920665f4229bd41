#include "latentkv/gguf/ggml_type.h"

#include "latentkv/status.h"

namespace latentkv {
namespace {

constexpr int kQK_K = 256;  // elements per k-quant super-block

struct Entry {
  uint32_t id;
  GgmlTypeInfo info;
};

// Block geometry of every type ggml defines (ids 4, 5, 31-33 and 36-38 were removed from ggml).
// Sizes follow the block structs in ggml-common.h.
constexpr Entry kTypes[] = {
    {0, {"f32", 1, 4}},
    {1, {"f16", 1, 2}},
    {2, {"q4_0", 32, 2 + 16}},
    {3, {"q4_1", 32, 2 + 2 + 16}},
    {6, {"q5_0", 32, 2 + 4 + 16}},
    {7, {"q5_1", 32, 2 + 2 + 4 + 16}},
    {8, {"q8_0", 32, 2 + 32}},
    {9, {"q8_1", 32, 4 + 4 + 32}},
    {10, {"q2_K", kQK_K, 2 + 2 + kQK_K / 16 + kQK_K / 4}},
    {11, {"q3_K", kQK_K, 2 + kQK_K / 4 + kQK_K / 8 + 12}},
    {12, {"q4_K", kQK_K, 2 + 2 + 12 + kQK_K / 2}},
    {13, {"q5_K", kQK_K, 2 + 2 + 12 + kQK_K / 8 + kQK_K / 2}},
    {14, {"q6_K", kQK_K, 2 + kQK_K / 2 + kQK_K / 4 + kQK_K / 16}},
    {15, {"q8_K", kQK_K, 4 + kQK_K + kQK_K / 8}},
    {16, {"iq2_xxs", kQK_K, 2 + kQK_K / 4}},
    {17, {"iq2_xs", kQK_K, 2 + kQK_K / 4 + kQK_K / 32}},
    {18, {"iq3_xxs", kQK_K, 2 + kQK_K / 4 + kQK_K / 8}},
    {19, {"iq1_s", kQK_K, 2 + kQK_K / 8 + kQK_K / 16}},
    {20, {"iq4_nl", 32, 2 + 16}},
    {21, {"iq3_s", kQK_K, 2 + kQK_K / 4 + kQK_K / 8 + kQK_K / 32 + 4}},
    {22, {"iq2_s", kQK_K, 2 + kQK_K / 4 + kQK_K / 16}},
    {23, {"iq4_xs", kQK_K, 2 + 2 + kQK_K / 2 + kQK_K / 64}},
    {24, {"i8", 1, 1}},
    {25, {"i16", 1, 2}},
    {26, {"i32", 1, 4}},
    {27, {"i64", 1, 8}},
    {28, {"f64", 1, 8}},
    {29, {"iq1_m", kQK_K, kQK_K / 8 + kQK_K / 16 + kQK_K / 32}},
    {30, {"bf16", 1, 2}},
    {34, {"tq1_0", kQK_K, 2 + 4 * 13}},
    {35, {"tq2_0", kQK_K, 2 + 64}},
    {39, {"mxfp4", 32, 1 + 16}},
    {40, {"nvfp4", 64, 4 + 32}},
    {41, {"q1_0", 128, 2 + 16}},
};

const Entry* lookup(uint32_t id) {
  for (const Entry& e : kTypes) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

}  // namespace

bool ggml_type_known(uint32_t id) { return lookup(id) != nullptr; }

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
  const Entry* e = lookup(static_cast<uint32_t>(type));
  if (e == nullptr) {
    LKV_THROW(StatusCode::kUnsupported, "unknown ggml type id ", static_cast<uint32_t>(type));
  }
  return e->info;
}

std::string ggml_type_name(GgmlType type) {
  const Entry* e = lookup(static_cast<uint32_t>(type));
  return e ? std::string(e->info.name) : str_cat("type", static_cast<uint32_t>(type));
}

uint64_t ggml_row_bytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo& info = ggml_type_info(type);
  LKV_CHECK_ARG(n >= 0 && n % info.block_size == 0, n, " elements of ", info.name,
                " are not a whole number of ", info.block_size, "-element blocks");
  return static_cast<uint64_t>(n / info.block_size) * static_cast<uint64_t>(info.type_size);
}

}  // namespace latentkv
