// GgufFile on small files written by the tests: header, every metadata type, typed getters,
// tensor infos and bytes, alignment; plus the real default model.
#include "latentkv/gguf/gguf_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "latentkv/hash.h"
#include "support/expect_error.h"
#include "support/gguf_writer.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::GgufWriter;
using VT = GgufValueType;

std::string write_temp(const GgufWriter& w, const std::string& name) {
  const std::string path = testing::temp_dir() + "/" + name;
  w.write(path);
  return path;
}

GgufWriter all_types_writer() {
  GgufWriter w;
  w.add_scalar<uint8_t>("u8", VT::kUint8, 200);
  w.add_scalar<int8_t>("i8", VT::kInt8, -100);
  w.add_scalar<uint16_t>("u16", VT::kUint16, 60000);
  w.add_scalar<int16_t>("i16", VT::kInt16, -30000);
  w.add_u32("u32", 4000000000u);
  w.add_i32("i32", -2000000000);
  w.add_f32("f32", 0.15625f);
  w.add_bool("bool", true);
  w.add_string("str", "llama");
  w.add_scalar<uint64_t>("u64", VT::kUint64, 18000000000000000000ull);
  w.add_scalar<int64_t>("i64", VT::kInt64, -9000000000000000000ll);
  w.add_scalar<double>("f64", VT::kFloat64, 1e-300);
  w.add_array<int32_t>("arr.i32", VT::kInt32, {1, -2, 3});
  w.add_array<float>("arr.f32", VT::kFloat32, {0.5f, -1.5f});
  w.add_array<uint8_t>("arr.bool", VT::kBool, {1, 0, 1});
  w.add_string_array("arr.str", {"a", "", "héllo", std::string("nul\0in", 6)});
  w.add_nested_string_array("arr.nested", {{"x", "y"}, {}, {"z"}});
  return w;
}

TEST(GgufFile, ReadsEveryScalarType) {
  const GgufFile f(write_temp(all_types_writer(), "all_types.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get<uint8_t>("u8"), 200);
  EXPECT_EQ(f.get<int8_t>("i8"), -100);
  EXPECT_EQ(f.get<uint16_t>("u16"), 60000);
  EXPECT_EQ(f.get<int16_t>("i16"), -30000);
  EXPECT_EQ(f.get<uint32_t>("u32"), 4000000000u);
  EXPECT_EQ(f.get<int32_t>("i32"), -2000000000);
  EXPECT_EQ(f.get<float>("f32"), 0.15625f);
  EXPECT_TRUE(f.get<bool>("bool"));
  EXPECT_EQ(f.get<std::string>("str"), "llama");
  EXPECT_EQ(f.get<std::string_view>("str"), "llama");
  EXPECT_EQ(f.get<uint64_t>("u64"), 18000000000000000000ull);
  EXPECT_EQ(f.get<int64_t>("i64"), -9000000000000000000ll);
  EXPECT_EQ(f.get<double>("f64"), 1e-300);
  EXPECT_EQ(f.value("u32").type(), VT::kUint32);
  EXPECT_EQ(f.value("u32").describe(), "uint32 4000000000");
  EXPECT_EQ(f.value("i8").describe(), "int8 -100");
  EXPECT_EQ(f.value("str").describe(), "string \"llama\"");
}

TEST(GgufFile, ReadsArraysIncludingStringsAndNested) {
  const GgufFile f(write_temp(all_types_writer(), "arrays.gguf"));
  EXPECT_EQ(f.get_array<int32_t>("arr.i32"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(f.get_array<int64_t>("arr.i32"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f.get_array<float>("arr.f32"), (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(f.get_array<bool>("arr.bool"), (std::vector<bool>{true, false, true}));
  const auto& strs = f.get_string_array("arr.str");
  ASSERT_EQ(strs.size(), 4u);
  EXPECT_EQ(strs[0], "a");
  EXPECT_EQ(strs[1], "");
  EXPECT_EQ(strs[2], "héllo");
  EXPECT_EQ(strs[3], std::string_view("nul\0in", 6));
  EXPECT_EQ(f.get_array<std::string>("arr.str")[2], "héllo");
  EXPECT_EQ(f.value("arr.str").describe(), "array[4] of string");

  const GgufValue& nested = f.value("arr.nested");
  ASSERT_TRUE(nested.is_array());
  EXPECT_EQ(nested.array_type(), VT::kArray);
  ASSERT_EQ(nested.array_size(), 3u);
  EXPECT_EQ(nested.array_element(0).strings(), (std::vector<std::string_view>{"x", "y"}));
  EXPECT_EQ(nested.array_element(1).array_size(), 0u);
  EXPECT_EQ(nested.array_element(2).as_array<std::string>(), (std::vector<std::string>{"z"}));
  EXPECT_EQ(f.value("arr.i32").array_element(1).as<int>(), -2);
  EXPECT_LKV_ERROR(f.value("arr.i32").array_element(3), StatusCode::kInvalidArgument,
                   "out of range");
}

TEST(GgufFile, IteratesMetadataInFileOrder) {
  const GgufFile f(write_temp(all_types_writer(), "order.gguf"));
  const std::vector<std::string_view> want = {
      "u8",  "i8",  "u16", "i16",     "u32",     "i32",      "f32",     "bool",      "str",
      "u64", "i64", "f64", "arr.i32", "arr.f32", "arr.bool", "arr.str", "arr.nested"};
  ASSERT_EQ(f.metadata().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(f.metadata()[i].key, want[i]);
  EXPECT_TRUE(f.has("f64"));
  EXPECT_FALSE(f.has("nope"));
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST(GgufFile, ConvertsOnlyWhenTheValueFits) {
  const GgufFile f(write_temp(all_types_writer(), "convert.gguf"));
  EXPECT_EQ(f.get<int64_t>("u32"), 4000000000ll);  // widening across signedness is fine
  EXPECT_EQ(f.get<double>("i32"), -2000000000.0);  // exactly representable
  EXPECT_EQ(f.get<float>("f64"), 0.0f);            // float64 rounds to float
  EXPECT_LKV_ERROR(f.get<int32_t>("u32"), StatusCode::kCorruptData,
                   "metadata 'u32' is uint32 4000000000, expected int32");
  EXPECT_LKV_ERROR(f.get<uint32_t>("i32"), StatusCode::kCorruptData, "expected uint32");
  EXPECT_LKV_ERROR(f.get<uint8_t>("i8"), StatusCode::kCorruptData, "expected uint8");
  EXPECT_LKV_ERROR(f.get<float>("u64"), StatusCode::kCorruptData, "expected float32");
  EXPECT_LKV_ERROR(f.get<int>("str"), StatusCode::kCorruptData,
                   "metadata 'str' is string \"llama\", expected int32");
  EXPECT_LKV_ERROR(f.get<bool>("u8"), StatusCode::kCorruptData, "expected bool");
  EXPECT_LKV_ERROR(f.get<std::string>("u8"), StatusCode::kCorruptData, "expected string");
  EXPECT_LKV_ERROR(f.get<int>("arr.i32"), StatusCode::kCorruptData, "array[3] of int32");
  EXPECT_LKV_ERROR(f.get_array<uint32_t>("arr.i32"), StatusCode::kCorruptData,
                   "expected array of uint32");
  EXPECT_LKV_ERROR(f.get_string_array("arr.i32"), StatusCode::kCorruptData,
                   "expected array of string");
  EXPECT_LKV_ERROR(f.get_array<int>("arr.str"), StatusCode::kCorruptData, "array of int32");
}

TEST(GgufFile, MissingKeyIsNotFoundNamingKeyAndFile) {
  const std::string path = write_temp(all_types_writer(), "missing_key.gguf");
  const GgufFile f(path);
  EXPECT_LKV_ERROR(f.get<int>("llama.block_count"), StatusCode::kNotFound,
                   path + ": missing required metadata 'llama.block_count'");
  EXPECT_LKV_ERROR(f.get_string_array("tokenizer.ggml.tokens"), StatusCode::kNotFound,
                   "missing required metadata 'tokenizer.ggml.tokens'");
  EXPECT_EQ(f.get_or<int>("absent", 7), 7);
  EXPECT_EQ(f.get_or<std::string>("absent", "dflt"), "dflt");
  EXPECT_EQ(f.get_or<int>("i16", 7), -30000);
  EXPECT_LKV_ERROR(f.get_or<int>("str", 7), StatusCode::kCorruptData, "expected int32");
}

TEST(GgufFile, ReadsTensorInfosAndBytes) {
  GgufWriter w;
  w.add_string("general.architecture", "test");
  w.add_f32_tensor("mat", {3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  w.add_f32_tensor("vec", {5}, {1, 2, 3, 4, 5});
  std::vector<uint8_t> q(2 * 34, 0x11);  // two q8_0 blocks: a [2, 32] matrix
  w.add_tensor("q", GgmlType::kQ8_0, {32, 2}, q);
  const GgufFile f(write_temp(w, "tensors.gguf"));

  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  const GgufTensorInfo& mat = f.tensor("mat");
  EXPECT_EQ(mat.type, GgmlType::kF32);
  EXPECT_EQ(mat.ne, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(mat.shape(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(mat.n_rows(), 3);
  EXPECT_EQ(mat.n_cols(), 4);
  EXPECT_EQ(mat.n_elements, 12);
  EXPECT_EQ(mat.n_bytes, 48u);
  EXPECT_EQ(mat.offset, 0u);
  EXPECT_EQ(mat.describe(), "[3, 4] f32");
  float v[12];
  std::memcpy(v, f.tensor_data(mat), sizeof v);
  EXPECT_EQ(v[7], 7.0f);

  const GgufTensorInfo& vec = f.tensor("vec");
  EXPECT_EQ(vec.offset, 64u);  // 48 bytes padded to 32
  EXPECT_EQ(vec.n_dims(), 1);
  const GgufTensorInfo& qt = f.tensor("q");
  EXPECT_EQ(qt.n_bytes, 68u);
  EXPECT_EQ(qt.describe(), "[2, 32] q8_0");
  EXPECT_EQ(f.tensor_data(qt)[67], 0x11);
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  EXPECT_LKV_ERROR(f.tensor("nope"), StatusCode::kNotFound, "missing tensor 'nope'");
}

TEST(GgufFile, HonoursGeneralAlignment) {
  GgufWriter w;
  w.alignment = 64;
  w.add_u32("general.alignment", 64);
  w.add_f32_tensor("a", {3}, {1, 2, 3});
  w.add_f32_tensor("b", {2}, {4, 5});
  const GgufFile f(write_temp(w, "align64.gguf"));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensor("b").offset, 64u);
  float b0;
  std::memcpy(&b0, f.tensor_data(f.tensor("b")), sizeof b0);
  EXPECT_EQ(b0, 4.0f);
}

TEST(GgufFile, ReadsVersion2) {
  GgufWriter w = all_types_writer();
  w.version = 2;
  const GgufFile f(write_temp(w, "v2.gguf"));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.get<std::string>("str"), "llama");
}

TEST(GgufFile, ViewsSurviveMoves) {
  const std::string path = write_temp(all_types_writer(), "move.gguf");
  GgufFile a(path);
  const std::string_view s = a.get_string_array("arr.str")[2];
  GgufFile b(std::move(a));
  GgufFile c = std::move(b);
  EXPECT_EQ(s, "héllo");
  EXPECT_EQ(c.get<std::string_view>("str"), "llama");
}

TEST(GgufFile, OpenReturnsStatusInsteadOfThrowing) {
  Result<GgufFile> ok = GgufFile::open(write_temp(all_types_writer(), "open.gguf"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().get<int>("i16"), -30000);
  Result<GgufFile> bad = GgufFile::open(testing::temp_dir() + "/no_such_file.gguf");
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
}

TEST(GgufFile, Sha256MatchesTheFileBytes) {
  const std::string path = write_temp(all_types_writer(), "hash.gguf");
  const GgufFile f(path);
  EXPECT_EQ(f.sha256(), sha256_file(path));
  EXPECT_EQ(f.sha256(), sha256_hex(f.file_bytes(), f.file_size()));
}

TEST(GgufFile, ReadsTheDefaultModel) {
  LKV_REQUIRE_MODEL();
  const GgufFile f(testing::default_model_path());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.metadata().size(), 33u);
  EXPECT_EQ(f.get<std::string>("general.architecture"), "llama");
  EXPECT_EQ(f.get<int>("llama.block_count"), 30);
  EXPECT_EQ(f.get<float>("llama.rope.freq_base"), 100000.0f);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.merges").size(), 48900u);
  EXPECT_EQ(f.get_array<int32_t>("tokenizer.ggml.token_type").size(), 49152u);
  const GgufTensorInfo& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(emb.type, GgmlType::kQ8_0);
  EXPECT_EQ(emb.shape(), (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(f.tensor("blk.0.attn_k.weight").type, GgmlType::kQ4_1);
  EXPECT_EQ(f.tensor("blk.0.attn_k.weight").shape(), (std::vector<int64_t>{192, 576}));
}

TEST(GgufFile, DefaultModelIdentityIsItsSha256) {
  LKV_REQUIRE_MODEL();
  const GgufFile f(testing::default_model_path());
  // The hash scripts/setup.sh verifies after download.
  EXPECT_EQ(f.sha256(), "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53");
}

}  // namespace
}  // namespace latentkv
