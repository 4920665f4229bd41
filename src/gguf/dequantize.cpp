#include "latentkv/gguf/dequantize.h"

#include <algorithm>
#include <cstring>

#include "gguf/dequant_blocks.h"

namespace latentkv {
namespace {

using BlockFn = void (*)(const uint8_t*, float*, int64_t);

void copy_f32(const uint8_t* x, float* y, int64_t n) { std::memcpy(y, x, n * sizeof(float)); }

void convert_f16(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, x + 2 * i, sizeof h);
    y[i] = fp16_to_fp32(h);
  }
}

void convert_bf16(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, x + 2 * i, sizeof h);
    y[i] = bf16_to_fp32(h);
  }
}

// The block decoder of a type (block_size 1 types decode element by element), or nullptr.
BlockFn block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return copy_f32;
    case GgmlType::kF16:
      return convert_f16;
    case GgmlType::kBF16:
      return convert_bf16;
    case GgmlType::kQ4_0:
      return dequant::q4_0;
    case GgmlType::kQ4_1:
      return dequant::q4_1;
    case GgmlType::kQ5_0:
      return dequant::q5_0;
    case GgmlType::kQ5_1:
      return dequant::q5_1;
    case GgmlType::kQ8_0:
      return dequant::q8_0;
    case GgmlType::kQ2_K:
      return dequant::q2_k;
    case GgmlType::kQ3_K:
      return dequant::q3_k;
    case GgmlType::kQ4_K:
      return dequant::q4_k;
    case GgmlType::kQ5_K:
      return dequant::q5_k;
    case GgmlType::kQ6_K:
      return dequant::q6_k;
    case GgmlType::kQ8_K:
      return dequant::q8_k;
    default:
      return nullptr;
  }
}

BlockFn checked_block_fn(GgmlType type) {
  const BlockFn fn = block_fn(type);
  if (fn == nullptr) {
    LKV_THROW(StatusCode::kUnsupported, "dequantization of ggml type ", ggml_type_name(type),
              " is not supported");
  }
  return fn;
}

// Below this many elements the OpenMP fork/join costs more than it saves.
constexpr int64_t kParallelElements = int64_t{1} << 16;
// Work unit of the parallel loop (elements): large enough to amortize scheduling, small enough
// to balance two cores over a model's tensors.
constexpr int64_t kChunkElements = int64_t{1} << 16;

void check_row_map(const DequantizeJob& job) {
  if (job.dst_row == nullptr) return;
  const std::vector<int64_t>& map = *job.dst_row;
  LKV_CHECK_ARG(static_cast<int64_t>(map.size()) == job.n_rows, "row map has ", map.size(),
                " entries for ", job.n_rows, " rows");
  std::vector<bool> seen(job.n_rows, false);
  for (int64_t r : map) {
    LKV_CHECK_ARG(r >= 0 && r < job.n_rows && !seen[r], "row map is not a permutation of [0, ",
                  job.n_rows, ")");
    seen[r] = true;
  }
}

}  // namespace

bool ggml_can_dequantize(GgmlType type) { return block_fn(type) != nullptr; }

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const BlockFn fn = checked_block_fn(type);
  ggml_row_bytes(type, n);  // validates n against the block size
  fn(static_cast<const uint8_t*>(src), dst, n / ggml_type_info(type).block_size);
}

void dequantize_rows(GgmlType type, const void* src, int64_t n_rows, int64_t n_cols, float* dst,
                     const std::vector<int64_t>* dst_row) {
  dequantize_batch({DequantizeJob{type, src, n_rows, n_cols, dst, dst_row}});
}

void dequantize_batch(const std::vector<DequantizeJob>& jobs) {
  // Validate everything first: nothing may throw inside the parallel region.
  struct Chunk {
    const DequantizeJob* job;
    BlockFn fn;
    uint64_t row_bytes;
    int64_t blocks_per_row, row_begin, row_end;
  };
  std::vector<Chunk> chunks;
  int64_t total = 0;
  for (const DequantizeJob& job : jobs) {
    const BlockFn fn = checked_block_fn(job.type);
    LKV_CHECK_ARG(job.n_rows >= 0, "negative row count ", job.n_rows);
    const uint64_t row_bytes = ggml_row_bytes(job.type, job.n_cols);
    check_row_map(job);
    const int64_t blocks_per_row = job.n_cols / ggml_type_info(job.type).block_size;
    const int64_t rows_per_chunk =
        std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, job.n_cols));
    for (int64_t r = 0; r < job.n_rows; r += rows_per_chunk) {
      chunks.push_back(
          {&job, fn, row_bytes, blocks_per_row, r, std::min(job.n_rows, r + rows_per_chunk)});
    }
    total += job.n_rows * job.n_cols;
  }
  const int64_t n_chunks = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(dynamic) if (total >= kParallelElements)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const Chunk& ch = chunks[c];
    const DequantizeJob& job = *ch.job;
    const uint8_t* in = static_cast<const uint8_t*>(job.src);
    for (int64_t r = ch.row_begin; r < ch.row_end; ++r) {
      const int64_t out_row = job.dst_row != nullptr ? (*job.dst_row)[r] : r;
      ch.fn(in + r * ch.row_bytes, job.dst + out_row * job.n_cols, ch.blocks_per_row);
    }
  }
}

std::vector<float> dequantize_tensor(const GgufFile& file, const GgufTensorInfo& info) {
  if (!ggml_can_dequantize(info.type)) {
    LKV_THROW(StatusCode::kUnsupported, file.path(), ": tensor '", info.name, "' has type ",
              ggml_type_name(info.type), ", which latentkv cannot dequantize");
  }
  std::vector<float> out(static_cast<size_t>(info.n_elements));
  dequantize_rows(info.type, file.tensor_data(info), info.n_rows(), info.n_cols(), out.data());
  return out;
}

}  // namespace latentkv
