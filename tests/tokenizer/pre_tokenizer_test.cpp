// Pre-tokenizer split tests. The expected pieces of the table were produced by HF `tokenizers`
// 0.23.3 (ByteLevel(add_prefix_space=false, use_regex=true).pre_tokenize_str for "gpt2", and
// Sequence[Digits(individual_digits=true), that ByteLevel] for "smollm"), mapped back from the
// byte-level alphabet to raw text.
#include "latentkv/tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "latentkv/status.h"
#include "latentkv/tokenizer/unicode.h"

namespace latentkv {
namespace {

struct SplitCase {
  std::string text;
  std::vector<std::string> gpt2;
  std::vector<std::string> smollm;
};

const std::vector<SplitCase>& cases() {
  static const std::vector<SplitCase> kCases = {
      {"Hello world", {"Hello", " world"}, {"Hello", " world"}},
      {"I'm you're we've they'll he'd it's don't",
       {"I", "'m", " you", "'re", " we", "'ve", " they", "'ll", " he", "'d", " it", "'s", " don",
        "'t"},
       {"I", "'m", " you", "'re", " we", "'ve", " they", "'ll", " he", "'d", " it", "'s", " don",
        "'t"}},
      {"I'M YOU'RE", {"I", "'", "M", " YOU", "'", "RE"}, {"I", "'", "M", " YOU", "'", "RE"}},
      {"''s '", {"''", "s", " '"}, {"''", "s", " '"}},
      {"x's", {"x", "'s"}, {"x", "'s"}},
      {"a  b", {"a", " ", " b"}, {"a", " ", " b"}},
      {"a   b", {"a", "  ", " b"}, {"a", "  ", " b"}},
      {"a\n\nb", {"a", "\n", "\n", "b"}, {"a", "\n", "\n", "b"}},
      {"a \n b", {"a", " \n", " b"}, {"a", " \n", " b"}},
      {"hello   ", {"hello", "   "}, {"hello", "   "}},
      {"   leading", {"  ", " leading"}, {"  ", " leading"}},
      {"\t\tx", {"\t", "\t", "x"}, {"\t", "\t", "x"}},
      {"a\r\nb\r\n", {"a", "\r", "\n", "b", "\r\n"}, {"a", "\r", "\n", "b", "\r\n"}},
      {"a \r\n\r\n  b", {"a", " \r\n\r\n ", " b"}, {"a", " \r\n\r\n ", " b"}},
      {"x 12 y", {"x", " 12", " y"}, {"x", " ", "1", "2", " y"}},
      {"3.14159", {"3", ".", "14159"}, {"3", ".", "1", "4", "1", "5", "9"}},
      {"1,000,000", {"1", ",", "000", ",", "000"}, {"1", ",", "0", "0", "0", ",", "0", "0", "0"}},
      {"abc123def", {"abc", "123", "def"}, {"abc", "1", "2", "3", "def"}},
      {"a  1", {"a", " ", " 1"}, {"a", "  ", "1"}},
      {"year 2024!", {"year", " 2024", "!"}, {"year", " ", "2", "0", "2", "4", "!"}},
      {"\u0663\u0664 x\u00b2",
       {"\u0663\u0664", " x", "\u00b2"},
       {"\u0663", "\u0664", " x", "\u00b2"}},
      {"\u216b fifty", {"\u216b", " fifty"}, {"\u216b", " fifty"}},
      {"Caf\u00e9 na\u00efve", {"Caf\u00e9", " na\u00efve"}, {"Caf\u00e9", " na\u00efve"}},
      {"e\u0301 combining", {"e", "\u0301", " combining"}, {"e", "\u0301", " combining"}},
      {"\u4f60\u597d\uff0c\u4e16\u754c\uff01",
       {"\u4f60\u597d", "\uff0c", "\u4e16\u754c", "\uff01"},
       {"\u4f60\u597d", "\uff0c", "\u4e16\u754c", "\uff01"}},
      {"\u65e5\u672c\u8a9e \u30c6\u30ad\u30b9\u30c8",
       {"\u65e5\u672c\u8a9e", " \u30c6\u30ad\u30b9\u30c8"},
       {"\u65e5\u672c\u8a9e", " \u30c6\u30ad\u30b9\u30c8"}},
      {"emoji \U0001f600\U0001f44d\U0001f3fd ok",
       {"emoji", " \U0001f600\U0001f44d\U0001f3fd", " ok"},
       {"emoji", " \U0001f600\U0001f44d\U0001f3fd", " ok"}},
      {"x\u00a0y", {"x", "\u00a0", "y"}, {"x", "\u00a0", "y"}},
      {"x\u3000\u3000y", {"x", "\u3000", "\u3000", "y"}, {"x", "\u3000", "\u3000", "y"}},
      {"a\u001cb", {"a", "\u001c", "b"}, {"a", "\u001c", "b"}},
      {"x\u0085y", {"x", "\u0085", "y"}, {"x", "\u0085", "y"}},
      {"--- (parens)!!", {"---", " (", "parens", ")!!"}, {"---", " (", "parens", ")!!"}},
      {" ?!", {" ?!"}, {" ?!"}},
      {"  ?!", {" ", " ?!"}, {" ", " ?!"}},
      {"$100 and 50%",
       {"$", "100", " and", " 50", "%"},
       {"$", "1", "0", "0", " and", " ", "5", "0", "%"}},
      {"\u200bzw", {"\u200b", "zw"}, {"\u200b", "zw"}},
      {"a\u2028b", {"a", "\u2028", "b"}, {"a", "\u2028", "b"}},
      {"end with space ", {"end", " with", " space", " "}, {"end", " with", " space", " "}},
      {"tab\tsep", {"tab", "\t", "sep"}, {"tab", "\t", "sep"}},
      {"\n", {"\n"}, {"\n"}},
      {" ", {" "}, {" "}},
      {"", {}, {}},
  };
  return kCases;
}

std::vector<std::string> split(const std::string& text, PreTokenizerKind kind) {
  std::vector<std::string_view> views;
  pre_tokenize(text, kind, &views);
  return std::vector<std::string>(views.begin(), views.end());
}

TEST(PreTokenizerTest, Gpt2RuleMatchesHfByteLevel) {
  for (const SplitCase& c : cases()) {
    EXPECT_EQ(split(c.text, PreTokenizerKind::kGpt2), c.gpt2) << "text: " << c.text;
  }
}

TEST(PreTokenizerTest, SmollmRuleMatchesHfDigitsThenByteLevel) {
  for (const SplitCase& c : cases()) {
    EXPECT_EQ(split(c.text, PreTokenizerKind::kSmollm), c.smollm) << "text: " << c.text;
  }
}

TEST(PreTokenizerTest, AppendsToExistingPieces) {
  std::vector<std::string_view> pieces = {"keep"};
  pre_tokenize("a b", PreTokenizerKind::kGpt2, &pieces);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0], "keep");
  EXPECT_EQ(pieces[2], " b");
}

TEST(PreTokenizerTest, LongWhitespaceRunKeepsItsLastSpaceForTheNextWord) {
  const std::string text = "x" + std::string(1000, ' ') + "y";
  const auto pieces = split(text, PreTokenizerKind::kSmollm);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[1], std::string(999, ' '));
  EXPECT_EQ(pieces[2], " y");
}

// Random text over a mix of classes: pieces are non-empty, tile the text exactly, and under
// "smollm" every number code point stands alone.
TEST(PreTokenizerTest, RandomTextIsTiledExactly) {
  const std::vector<char32_t> alphabet = {'a',  'Z',  '7',    ' ',     ' ',  '\n',  '\r',   '\t',
                                          '\'', 's',  '.',    '!',     0xE9, 0x301, 0x4E2D, 0x663,
                                          0xB2, 0xA0, 0x3000, 0x1F600, 0x85, 0x1C};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) unicode::append_utf8(alphabet[rng() % alphabet.size()], &text);
    for (PreTokenizerKind kind : {PreTokenizerKind::kGpt2, PreTokenizerKind::kSmollm}) {
      std::string joined;
      for (const std::string& p : split(text, kind)) {
        ASSERT_FALSE(p.empty());
        joined += p;
        if (kind == PreTokenizerKind::kSmollm) {
          int len = 0;
          for (size_t pos = 0; pos < p.size(); pos += static_cast<size_t>(len)) {
            const bool number = unicode::char_class(unicode::decode_utf8(p, pos, &len)) ==
                                unicode::CharClass::kNumber;
            if (number) {
              EXPECT_EQ(p.size(), static_cast<size_t>(len)) << "piece: " << p;
            }
          }
        }
      }
      EXPECT_EQ(joined, text);
    }
  }
}

TEST(PreTokenizerTest, NamesRoundTripAndUnknownNamesAreUnsupported) {
  EXPECT_EQ(pre_tokenizer_from_name("gpt2"), PreTokenizerKind::kGpt2);
  EXPECT_EQ(pre_tokenizer_from_name("smollm"), PreTokenizerKind::kSmollm);
  EXPECT_STREQ(pre_tokenizer_name(PreTokenizerKind::kSmollm), "smollm");
  EXPECT_STREQ(pre_tokenizer_name(PreTokenizerKind::kGpt2), "gpt2");
  for (const char* name : {"default", "llama3", "qwen2", ""}) {
    try {
      (void)pre_tokenizer_from_name(name);
      ADD_FAILURE() << "accepted " << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kUnsupported);
      EXPECT_NE(std::string(e.what()).find("supported: gpt2, smollm"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace latentkv
