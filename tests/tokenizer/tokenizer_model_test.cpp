// The tokenizer of the default model (SmolLM2-135M-Instruct) against known ids. Expected ids come
// from HF `tokenizers` 0.23.3 running SmolLM2's tokenizer.json pipeline (Digits + ByteLevel BPE)
// over the GGUF's vocabulary and merges, as built by scripts/check_tokenizer.py.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "latentkv/gguf/gguf_file.h"
#include "latentkv/status.h"
#include "latentkv/tokenizer/tokenizer.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

const Tokenizer& smollm2() {
  static const Tokenizer t =
      Tokenizer::from_gguf(GgufFile(latentkv::testing::default_model_path()));
  return t;
}

TEST(TokenizerModelTest, Metadata) {
  LKV_REQUIRE_MODEL();
  const Tokenizer& t = smollm2();
  EXPECT_EQ(t.n_vocab(), 49152);
  EXPECT_EQ(t.pre_tokenizer(), PreTokenizerKind::kSmollm);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.unk_id(), 0);
  EXPECT_EQ(t.pad_id(), 2);
  EXPECT_FALSE(t.add_bos_by_default());
  EXPECT_EQ(t.find_token("<|im_start|>"), 1);
  EXPECT_EQ(t.token_type(1), TokenType::kControl);
  EXPECT_EQ(t.token_type(16), TokenType::kControl);  // <empty_output>, the last control token
  EXPECT_EQ(t.token_type(17), TokenType::kNormal);
  EXPECT_EQ(t.token_bytes(260), " the");
}

TEST(TokenizerModelTest, KnownSentences) {
  LKV_REQUIRE_MODEL();
  struct Case {
    std::string text;
    std::vector<int32_t> ids;
  };
  const Case cases[] = {
      {"Hello, world! The year 2024 had 366 days.",
       {19556, 28, 905, 17, 378, 713, 216, 34, 32, 34, 36, 761, 216, 35, 38, 38, 2009, 30}},
      {"I'm here; you're there \u2014 na\u00efve caf\u00e9, \u6771\u4eac \U0001f389.",
       {57, 5248,  1535, 43,  346,   2316, 665,   1841, 15486, 46494, 37366,
        28, 17097, 247,  126, 16736, 122,  15107, 232,  227,   30}},
      {"  Leading spaces\n\n\tand tabs\r\nend  ",
       {216, 36970, 5600, 1116, 197, 397, 29416, 201, 198, 486, 256}},
      // U+00BD is a number: isolated by the Digits split, as in SmolLM2's tokenizer.json.
      {"x \u00bd and a  1", {104, 216, 16738, 284, 253, 256, 33}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(smollm2().encode(c.text), c.ids) << c.text;
    EXPECT_EQ(smollm2().decode(c.ids), c.text);
  }
}

TEST(TokenizerModelTest, ChatMarkupWithParseSpecial) {
  LKV_REQUIRE_MODEL();
  const std::string chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
  EncodeOptions opt;
  opt.parse_special = true;
  const std::vector<int32_t> want = {1,  4093, 198, 1780, 314, 216, 34,   27,
                                     34, 47,   2,   198,  1,   520, 9531, 198};
  EXPECT_EQ(smollm2().encode(chat, opt), want);
  EXPECT_EQ(smollm2().decode(want), chat);
  const std::vector<int32_t> plain = smollm2().encode(chat);
  EXPECT_GT(plain.size(), want.size());
  for (int32_t id : plain) EXPECT_NE(smollm2().token_type(id), TokenType::kControl);
  opt.add_bos = true;
  EXPECT_EQ(smollm2().encode("Hi", opt), (std::vector<int32_t>{1, 26843}));
}

TEST(TokenizerModelTest, BytesWithoutATokenAreRejected) {
  LKV_REQUIRE_MODEL();
  try {
    (void)smollm2().encode("ok\x04");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "text has byte 0x04 at offset 2, for which the vocabulary has no token");
  }
}

uint64_t fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int k = 0; k < 4; ++k) {
      h ^= (u >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

// Whole WikiText-2 files: token count and FNV-1a hash of the ids (little-endian int32) as the
// reference produced them (scripts/check_tokenizer.py compares every id).
TEST(TokenizerModelTest, WikiText2MatchesReference) {
  LKV_REQUIRE_MODEL();
  LKV_REQUIRE_DATA();
  struct File {
    const char* name;
    size_t tokens;
    uint64_t hash;
  };
  for (const File& f : {File{"test.txt", 312144, 0x90781a3639f7d41eull},
                        File{"valid.txt", 273868, 0xa933574ad3c6ac13ull}}) {
    std::ifstream in(latentkv::testing::wikitext_dir() + "/" + f.name, std::ios::binary);
    ASSERT_TRUE(in) << f.name;
    std::stringstream buf;
    buf << in.rdbuf();
    const std::vector<int32_t> ids = smollm2().encode(buf.str());
    EXPECT_EQ(ids.size(), f.tokens) << f.name;
    EXPECT_EQ(fnv1a(ids), f.hash) << f.name;
  }
}

}  // namespace
}  // namespace latentkv
