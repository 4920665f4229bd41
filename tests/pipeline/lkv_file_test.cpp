// The .lkv compressed model file: exact round trip, and one clear error for every way a file can
// be wrong (missing, not .lkv, other version, truncated, corrupted, trailing bytes, other model).
#include "latentkv/pipeline/lkv_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "pipeline/pipeline_test_util.h"
#include "support/expect_error.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

class LkvFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tiny_ = new testing::TinyPipeline;
    // Quantized and folded: every optional part of the format is present.
    CompressOptions o = testing::TinyPipeline::options("latentkv", 0.4, 4);
    o.fold = FoldPolicy::kAlways;
    model_ = new CompressedModel(compress_model(tiny_->inputs(), o));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tiny_;
  }
  std::string saved(const std::string& name) const {
    const std::string path = testing::temp_dir() + "/" + name;
    save_compressed_model(*model_, path);
    return path;
  }
  static testing::TinyPipeline* tiny_;
  static CompressedModel* model_;
};
testing::TinyPipeline* LkvFile::tiny_ = nullptr;
CompressedModel* LkvFile::model_ = nullptr;

void expect_same_factors(const ProjectionFactors& a, const ProjectionFactors& b) {
  EXPECT_EQ(a.d_model, b.d_model);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.group_size, b.group_size);
  EXPECT_EQ(a.rotation, b.rotation);
  EXPECT_EQ(a.ranks, b.ranks);
  EXPECT_EQ(a.group_heads, b.group_heads);
  EXPECT_EQ(a.a, b.a);
  EXPECT_EQ(a.b, b.b);
  EXPECT_EQ(a.bias, b.bias);
}

TEST_F(LkvFile, RoundTripIsExact) {
  const CompressedModel back = load_compressed_model(saved("round.lkv"));
  const CompressedModel& m = *model_;
  EXPECT_EQ(back.base.sha256, m.base.sha256);
  EXPECT_EQ(back.base.summary(), m.base.summary());
  EXPECT_EQ(back.recipe, m.recipe);
  EXPECT_EQ(back.key_quant.bits, 4);
  EXPECT_EQ(back.value_quant.residual, m.value_quant.residual);
  ASSERT_EQ(back.layers.size(), m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    expect_same_factors(back.layers[l].factors.key, m.layers[l].factors.key);
    expect_same_factors(back.layers[l].factors.value, m.layers[l].factors.value);
    ASSERT_TRUE(back.layers[l].factors.folded());
    EXPECT_EQ(back.layers[l].factors.folded_output.w, m.layers[l].factors.folded_output.w);
    EXPECT_EQ(back.layers[l].factors.folded_output.head_offsets,
              m.layers[l].factors.folded_output.head_offsets);
    EXPECT_EQ(back.layers[l].key_error, m.layers[l].key_error);
    EXPECT_EQ(back.layers[l].value_error, m.layers[l].value_error);
  }
  EXPECT_EQ(back.kv_bytes_per_token(), m.kv_bytes_per_token());
}

TEST_F(LkvFile, MissingAndForeignFiles) {
  EXPECT_LKV_ERROR(load_compressed_model(testing::temp_dir() + "/none.lkv"), StatusCode::kNotFound,
                   "does not exist");
  const std::string other = testing::temp_dir() + "/other.lkv";
  write_bytes(other, "GGUF\3\0\0\0 certainly not a compressed model");
  EXPECT_LKV_ERROR(load_compressed_model(other), StatusCode::kCorruptData,
                   "not a latentkv compressed model");
  write_bytes(other, "");
  EXPECT_LKV_ERROR(load_compressed_model(other), StatusCode::kCorruptData,
                   "not a latentkv compressed model");
}

TEST_F(LkvFile, VersionMismatchIsUnsupported) {
  const std::string path = saved("version.lkv");
  std::string bytes = read_bytes(path);
  bytes[8] = static_cast<char>(kLkvFormatVersion + 1);  // u32 version right after the magic
  write_bytes(path, bytes);
  EXPECT_LKV_ERROR(load_compressed_model(path), StatusCode::kUnsupported, "format version 2");
}

TEST_F(LkvFile, TruncatedFile) {
  const std::string path = saved("truncated.lkv");
  const std::string bytes = read_bytes(path);
  for (size_t keep : {size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    write_bytes(path, bytes.substr(0, keep));
    EXPECT_LKV_ERROR(load_compressed_model(path), StatusCode::kCorruptData, "truncated");
  }
}

TEST_F(LkvFile, TrailingBytes) {
  const std::string path = saved("trailing.lkv");
  write_bytes(path, read_bytes(path) + "x");
  EXPECT_LKV_ERROR(load_compressed_model(path), StatusCode::kCorruptData, "trailing bytes");
}

TEST_F(LkvFile, AnyFlippedByteFailsTheChecksum) {
  const std::string path = saved("corrupt.lkv");
  const std::string bytes = read_bytes(path);
  // In the base sha, the factors, and the stored checksum itself.
  for (size_t pos : {size_t{24}, bytes.size() / 2, bytes.size() - 1}) {
    std::string bad = bytes;
    bad[pos] ^= 0x10;
    write_bytes(path, bad);
    EXPECT_LKV_ERROR(load_compressed_model(path), StatusCode::kCorruptData, "checksum mismatch");
  }
}

TEST_F(LkvFile, DifferentBaseModelIsRejected) {
  const std::string path = saved("base.lkv");
  const LlamaConfig& config = tiny_->weights.config;
  EXPECT_NO_THROW(load_compressed_model_for(path, "tiny", config));
  EXPECT_LKV_ERROR(load_compressed_model_for(path, "0123abcd", config),
                   StatusCode::kInvalidArgument, "was compressed from a different model");
  LlamaConfig other = config;
  other.n_layers = 3;
  EXPECT_LKV_ERROR(load_compressed_model_for(path, "tiny", other), StatusCode::kInvalidArgument,
                   "differs from the GGUF's");
}

TEST_F(LkvFile, InconsistentModelIsNotWritten) {
  CompressedModel bad = *model_;
  bad.layers.pop_back();
  EXPECT_LKV_ERROR(save_compressed_model(bad, testing::temp_dir() + "/bad.lkv"),
                   StatusCode::kInvalidArgument, "layers");
  bad = *model_;
  bad.layers[0].factors.key.a.pop_back();
  EXPECT_LKV_ERROR(save_compressed_model(bad, testing::temp_dir() + "/bad.lkv"),
                   StatusCode::kInvalidArgument, "layer 0 key");
}

}  // namespace
}  // namespace latentkv
