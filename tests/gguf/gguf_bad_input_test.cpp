// GgufFile on missing, malformed, truncated and hostile files: every case must be one clear
// Error (code + one-line message naming the file), never a crash or a huge allocation.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <random>

#include "latentkv/gguf/gguf_file.h"
#include "support/expect_error.h"
#include "support/gguf_writer.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::GgufWriter;
using Bytes = std::vector<uint8_t>;

std::string write_bytes(const Bytes& bytes, const std::string& name) {
  const std::string path = testing::temp_dir() + "/" + name;
  GgufWriter::write_file(path, bytes);
  return path;
}

// A small valid file: a few metadata entries and two tensors.
GgufWriter small_writer() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 2);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  w.add_f32_tensor("t0", {2, 8}, std::vector<float>(16, 1.0f));
  w.add_f32_tensor("t1", {8}, std::vector<float>(8, 2.0f));
  return w;
}

// Byte offset just past the fixed header (magic, version, tensor count, kv count).
constexpr size_t kFixedHeader = 4 + 4 + 8 + 8;

template <typename T>
void patch(Bytes* b, size_t at, T v) {
  std::memcpy(b->data() + at, &v, sizeof v);
}

size_t find_bytes(const Bytes& b, const std::string& needle) {
  const auto it = std::search(b.begin(), b.end(), needle.begin(), needle.end());
  return static_cast<size_t>(it - b.begin());
}

TEST(GgufBadInput, MissingFileIsNotFound) {
  const std::string path = testing::temp_dir() + "/does_not_exist.gguf";
  EXPECT_LKV_ERROR(GgufFile{path}, StatusCode::kNotFound, path + ": cannot open");
}

TEST(GgufBadInput, DirectoryIsIoError) {
  EXPECT_LKV_ERROR(GgufFile{testing::temp_dir()}, StatusCode::kIoError, "not a regular file");
}

TEST(GgufBadInput, EmptyFileIsCorrupt) {
  const std::string path = write_bytes({}, "empty.gguf");
  EXPECT_LKV_ERROR(GgufFile{path}, StatusCode::kCorruptData, path + ": not a GGUF file");
}

TEST(GgufBadInput, WrongMagicIsCorrupt) {
  Bytes b = small_writer().bytes();
  b[0] = 'G';
  b[1] = 'G';
  b[2] = 'M';
  b[3] = 'L';
  const std::string path = write_bytes(b, "magic.gguf");
  EXPECT_LKV_ERROR(GgufFile{path}, StatusCode::kCorruptData, path + ": not a GGUF file (magic");
}

TEST(GgufBadInput, Version1IsUnsupported) {
  GgufWriter w = small_writer();
  w.version = 1;
  const std::string path = write_bytes(w.bytes(), "v1.gguf");
  EXPECT_LKV_ERROR(GgufFile{path}, StatusCode::kUnsupported,
                   "GGUF version 1 is not supported (latentkv reads versions 2 and 3)");
}

TEST(GgufBadInput, NewerVersionIsUnsupported) {
  GgufWriter w = small_writer();
  w.version = 4;
  EXPECT_LKV_ERROR(GgufFile{write_bytes(w.bytes(), "v4.gguf")}, StatusCode::kUnsupported,
                   "GGUF version 4 is not supported");
}

TEST(GgufBadInput, BigEndianIsUnsupported) {
  GgufWriter w = small_writer();
  w.version = 0x03000000;
  EXPECT_LKV_ERROR(GgufFile{write_bytes(w.bytes(), "be.gguf")}, StatusCode::kUnsupported,
                   "big-endian");
}

TEST(GgufBadInput, TruncatedHeaderIsCorrupt) {
  const Bytes full = small_writer().bytes();
  // Key (21 bytes), value type, element type, count, strings "a" and "b" (9 bytes each), then
  // the length of "c" but not its byte.
  const size_t in_tokens = find_bytes(full, "tokenizer.ggml.tokens") + 21 + 4 + 4 + 8 + 9 + 9 + 8;
  const std::string path = write_bytes(Bytes(full.begin(), full.begin() + in_tokens), "th.gguf");
  EXPECT_LKV_ERROR(GgufFile{path}, StatusCode::kCorruptData,
                   path + ": truncated header: array string of metadata 'tokenizer.ggml.tokens'");
}

TEST(GgufBadInput, EveryTruncationIsReportedAsCorrupt) {
  // Cutting the file anywhere before the end of the last tensor's data must be detected.
  const Bytes full = small_writer().bytes();  // ends with t1's 32 bytes of data
  for (size_t n = 0; n < full.size(); ++n) {
    const std::string path = write_bytes(Bytes(full.begin(), full.begin() + n), "cut.gguf");
    try {
      GgufFile f(path);
      ADD_FAILURE() << "truncation to " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kCorruptData) << n << ": " << e.what();
    }
  }
}

TEST(GgufBadInput, TruncatedTensorDataIsCorrupt) {
  const Bytes full = small_writer().bytes();
  const std::string path = write_bytes(Bytes(full.begin(), full.end() - 32), "td.gguf");
  EXPECT_LKV_ERROR(GgufFile{path}, StatusCode::kCorruptData,
                   path + ": truncated tensor data: tensor 't1' needs bytes");
}

TEST(GgufBadInput, OffsetOutOfRangeIsCorrupt) {
  Bytes b = small_writer().bytes();
  // The offset of t1 is the last field of its tensor info (just before the data padding).
  const size_t t1_offset = find_bytes(b, std::string("t1")) + 2 + 4 + 8 + 4;
  patch<uint64_t>(&b, t1_offset, uint64_t{1} << 40);
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "off.gguf")}, StatusCode::kCorruptData,
                   "truncated tensor data: tensor 't1'");
  patch<uint64_t>(&b, t1_offset, 8);
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "misaligned.gguf")}, StatusCode::kCorruptData,
                   "tensor 't1' offset 8 is not a multiple of the alignment 32");
  patch<uint64_t>(&b, t1_offset, 32);  // inside t0's 64 bytes
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "overlap.gguf")}, StatusCode::kCorruptData,
                   "tensors 't0' and 't1' overlap");
}

TEST(GgufBadInput, UnknownTensorTypeIsUnsupported) {
  GgufWriter w = small_writer();
  w.add_tensor_raw("weird", 99, {32}, Bytes(64, 0));
  const std::string path = write_bytes(w.bytes(), "type99.gguf");
  EXPECT_LKV_ERROR(GgufFile{path}, StatusCode::kUnsupported,
                   path + ": tensor 'weird' has unknown ggml type 99");
  GgufWriter removed = small_writer();
  removed.add_tensor_raw("q4_2", 4, {32}, Bytes(64, 0));  // id of a type ggml dropped
  EXPECT_LKV_ERROR(GgufFile{write_bytes(removed.bytes(), "type4.gguf")}, StatusCode::kUnsupported,
                   "unknown ggml type 4");
}

TEST(GgufBadInput, AbsurdCountsFailWithoutAllocating) {
  const Bytes good = small_writer().bytes();
  Bytes b = good;
  patch<uint64_t>(&b, 16, uint64_t{1} << 60);  // kv count
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "kvcount.gguf")}, StatusCode::kCorruptData,
                   "metadata count 1152921504606846976 does not fit");
  b = good;
  patch<uint64_t>(&b, 8, uint64_t{1} << 60);  // tensor count
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "tcount.gguf")}, StatusCode::kCorruptData,
                   "tensor count 1152921504606846976 does not fit");
  b = good;
  const size_t arr = find_bytes(b, "tokenizer.ggml.tokens") + 21 + 4 + 4;  // the array length
  patch<uint64_t>(&b, arr, uint64_t{1} << 62);
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "arrlen.gguf")}, StatusCode::kCorruptData,
                   "array 'tokenizer.ggml.tokens' claims 4611686018427387904 string elements");
  b = good;
  patch<uint64_t>(&b, kFixedHeader, uint64_t{1} << 62);  // length of the first key
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "keylen.gguf")}, StatusCode::kCorruptData,
                   "truncated header: key of metadata entry #0");
}

TEST(GgufBadInput, HugeTensorDimsAreCorrupt) {
  GgufWriter w;
  w.add_tensor("big", GgmlType::kF32, {int64_t{1} << 40, int64_t{1} << 30}, Bytes(32, 0));
  EXPECT_LKV_ERROR(GgufFile{write_bytes(w.bytes(), "bigdims.gguf")}, StatusCode::kCorruptData,
                   "impossible element count");
  GgufWriter w2;
  w2.add_tensor("big", GgmlType::kF32, {int64_t{1} << 40}, Bytes(32, 0));
  EXPECT_LKV_ERROR(GgufFile{write_bytes(w2.bytes(), "bigtensor.gguf")}, StatusCode::kCorruptData,
                   "is larger than the whole file");
}

TEST(GgufBadInput, MalformedTensorInfosAreCorrupt) {
  GgufWriter dims;
  dims.add_tensor("five", GgmlType::kF32, {1, 1, 1, 1, 1}, Bytes(4, 0));
  EXPECT_LKV_ERROR(GgufFile{write_bytes(dims.bytes(), "dims5.gguf")}, StatusCode::kCorruptData,
                   "tensor 'five' has 5 dimensions");
  GgufWriter block;
  block.add_tensor("odd", GgmlType::kQ4_0, {48}, Bytes(36, 0));
  EXPECT_LKV_ERROR(GgufFile{write_bytes(block.bytes(), "block.gguf")}, StatusCode::kCorruptData,
                   "tensor 'odd' row length 48 is not a multiple of the q4_0 block size 32");
  GgufWriter dup;
  dup.add_f32_tensor("same", {1}, {1});
  dup.add_f32_tensor("same", {1}, {2});
  EXPECT_LKV_ERROR(GgufFile{write_bytes(dup.bytes(), "duptensor.gguf")}, StatusCode::kCorruptData,
                   "duplicate tensor name 'same'");
}

TEST(GgufBadInput, MalformedMetadataIsCorrupt) {
  GgufWriter dup;
  dup.add_u32("k", 1);
  dup.add_u32("k", 2);
  EXPECT_LKV_ERROR(GgufFile{write_bytes(dup.bytes(), "dupkey.gguf")}, StatusCode::kCorruptData,
                   "duplicate metadata key 'k'");
  GgufWriter align;
  align.add_u32("general.alignment", 24);
  EXPECT_LKV_ERROR(GgufFile{write_bytes(align.bytes(), "align.gguf")}, StatusCode::kCorruptData,
                   "general.alignment must be a power of two, got uint32 24");
  Bytes b = small_writer().bytes();
  const size_t type_at = find_bytes(b, "llama.block_count") + 17;
  patch<uint32_t>(&b, type_at, 13);
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "vtype.gguf")}, StatusCode::kCorruptData,
                   "metadata 'llama.block_count' has unknown value type 13");
}

TEST(GgufBadInput, DeeplyNestedArraysAreCorrupt) {
  // 100 levels of array-of-array: must be refused, not recursed into.
  Bytes b = {'G', 'G', 'U', 'F'};
  auto put = [&](auto v) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
  };
  put(uint32_t{3});
  put(uint64_t{0});
  put(uint64_t{1});
  put(uint64_t{4});
  b.insert(b.end(), {'d', 'e', 'e', 'p'});
  put(uint32_t{9});
  for (int i = 0; i < 100; ++i) {
    put(uint32_t{9});
    put(uint64_t{1});
  }
  EXPECT_LKV_ERROR(GgufFile{write_bytes(b, "deep.gguf")}, StatusCode::kCorruptData,
                   "metadata 'deep' nests arrays deeper than 8");
}

TEST(GgufBadInput, RandomCorruptionNeverCrashes) {
  // Flips random header bytes: each variant must either parse or raise latentkv::Error.
  const Bytes good = small_writer().bytes();
  const size_t header = find_bytes(good, "t1") + 2 + 4 + 8 + 4 + 8;
  std::mt19937 rng(1234);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    Bytes b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % header] = static_cast<uint8_t>(rng());
    try {
      const GgufFile f(write_bytes(b, "fuzz.gguf"));
      for (const GgufTensorInfo& t : f.tensors()) {
        EXPECT_LE(f.data_offset() + t.offset + t.n_bytes, f.file_size());
      }
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(e.code(), StatusCode::kInternal) << e.what();
    }
  }
  EXPECT_GT(errors, 100);  // most random corruptions are detected
}

}  // namespace
}  // namespace latentkv
