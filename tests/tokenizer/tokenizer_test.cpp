// Tokenizer tests on a hand-made vocabulary: the 256 byte tokens, a few merges that build
// "hello" and " world", and some control / user-defined tokens.
#include "latentkv/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "latentkv/status.h"
#include "latentkv/tokenizer/byte_level.h"
#include "latentkv/tokenizer/unicode.h"

namespace latentkv {
namespace {

constexpr int32_t kEndOfText = 0, kImStart = 1, kImEnd = 2, kTool = 3, kTools = 4;
constexpr int32_t kFirstByte = 5;  // byte b has id kFirstByte + b

int32_t byte_id(char c) { return kFirstByte + static_cast<uint8_t>(c); }

TokenizerVocab make_vocab() {
  TokenizerVocab v;
  v.pre = "smollm";
  v.tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>", "<tool>s"};
  v.token_types = {3, 3, 3, 4, 4};
  for (int b = 0; b < 256; ++b) {
    v.tokens.emplace_back(byte_level::symbol(static_cast<uint8_t>(b)));
    v.token_types.push_back(1);
  }
  // Merges, best first; each adds the merged token to the vocabulary.
  for (const char* m :
       {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "Ġ Ġ"}) {
    const std::string s = m;
    const size_t sp = s.find(' ');
    v.merges.push_back(s);
    v.tokens.push_back(s.substr(0, sp) + s.substr(sp + 1));
    v.token_types.push_back(1);
  }
  v.bos_id = kEndOfText;
  v.eos_id = kImEnd;
  v.unk_id = kEndOfText;
  v.pad_id = kEndOfText;
  return v;
}

const Tokenizer& tiny() {
  static const Tokenizer t = Tokenizer::from_vocab(make_vocab());
  return t;
}

int32_t id(const char* text) { return tiny().find_token(text).value(); }

void expect_error(const std::function<void()>& f, StatusCode code, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error, expected one containing: " << part;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(TokenizerTest, MergesBuildWordsAndBytesFillTheRest) {
  EXPECT_EQ(tiny().encode("hello world"), (std::vector<int32_t>{id("hello"), id("Ġworld")}));
  // "helo": h+e merges, then nothing for "he l o".
  EXPECT_EQ(tiny().encode("helo"), (std::vector<int32_t>{id("he"), byte_id('l'), byte_id('o')}));
  // Digits are split one by one ("smollm"), so " 12" is " ", "1", "2".
  EXPECT_EQ(tiny().encode("hello 12"),
            (std::vector<int32_t>{id("hello"), byte_id(' '), byte_id('1'), byte_id('2')}));
  // A space run before a word: "ĠĠ" then "Ġworld".
  EXPECT_EQ(tiny().encode("   world"), (std::vector<int32_t>{id("ĠĠ"), id("Ġworld")}));
  // Multi-byte characters go through their bytes.
  EXPECT_EQ(tiny().encode("\xC3\xA9"), (std::vector<int32_t>{byte_id('\xC3'), byte_id('\xA9')}));
  EXPECT_TRUE(tiny().encode("").empty());
}

TEST(TokenizerTest, BosOnlyWhenAsked) {
  EncodeOptions opt;
  opt.add_bos = true;
  EXPECT_EQ(tiny().encode("hello", opt), (std::vector<int32_t>{kEndOfText, id("hello")}));
  EXPECT_EQ(tiny().encode("", opt), (std::vector<int32_t>{kEndOfText}));
  EXPECT_EQ(tiny().encode("hello"), (std::vector<int32_t>{id("hello")}));

  TokenizerVocab v = make_vocab();
  v.bos_id = -1;
  const Tokenizer no_bos = Tokenizer::from_vocab(v);
  expect_error([&] { (void)no_bos.encode("x", opt); }, StatusCode::kInvalidArgument, "no BOS");
}

TEST(TokenizerTest, ControlTokensAreParsedOnlyOnRequest) {
  const std::string text = "<|im_start|>hello<|im_end|>";
  EncodeOptions special;
  special.parse_special = true;
  EXPECT_EQ(tiny().encode(text, special), (std::vector<int32_t>{kImStart, id("hello"), kImEnd}));

  const std::vector<int32_t> plain = tiny().encode(text);
  // "<|im_start|>" (12 bytes) and "<|im_end|>" (10) as byte tokens, around "hello".
  EXPECT_EQ(plain.size(), 12 + 10 + 1u);
  for (int32_t t : plain) EXPECT_NE(tiny().token_type(t), TokenType::kControl);
  EXPECT_EQ(tiny().decode(plain), text);
  EXPECT_EQ(tiny().decode(tiny().encode(text, special)), text);
}

TEST(TokenizerTest, UserDefinedTokensAreAlwaysMatchedLongestFirst) {
  EXPECT_EQ(tiny().encode("hello<tool>hello"),
            (std::vector<int32_t>{id("hello"), kTool, id("hello")}));
  EXPECT_EQ(tiny().encode("<tool>shello"), (std::vector<int32_t>{kTools, id("hello")}));
  // A partial literal is plain text.
  EXPECT_EQ(tiny().encode("<too").size(), 4u);
}

TEST(TokenizerTest, DecodeRendersBytesAndSpecialText) {
  EXPECT_EQ(tiny().decode({id("hello"), id("Ġworld"), kImEnd}), "hello world<|im_end|>");
  EXPECT_EQ(tiny().token_bytes(byte_id('\n')), "\n");
  EXPECT_EQ(tiny().token_bytes(id("Ġw")), " w");
  // Half of a two-byte character (streaming) decodes to that byte alone.
  EXPECT_EQ(tiny().decode({byte_id('\xC3')}), "\xC3");
  expect_error(
      [] {
        (void)tiny().decode({id("hello"), 100000});
      },
      StatusCode::kInvalidArgument, "token id 100000 is outside the vocabulary");
  expect_error([] { (void)tiny().token_type(-1); }, StatusCode::kInvalidArgument, "token id -1");
}

TEST(TokenizerTest, Accessors) {
  EXPECT_EQ(tiny().n_vocab(), 5 + 256 + 10);
  EXPECT_EQ(tiny().bos_id(), kEndOfText);
  EXPECT_EQ(tiny().eos_id(), kImEnd);
  EXPECT_EQ(tiny().unk_id(), kEndOfText);
  EXPECT_EQ(tiny().pad_id(), kEndOfText);
  EXPECT_FALSE(tiny().add_bos_by_default());
  EXPECT_EQ(tiny().pre_tokenizer(), PreTokenizerKind::kSmollm);
  EXPECT_EQ(tiny().token_type(kImStart), TokenType::kControl);
  EXPECT_EQ(tiny().token_type(kTool), TokenType::kUserDefined);
  EXPECT_EQ(tiny().find_token("<|im_end|>"), kImEnd);
  EXPECT_FALSE(tiny().find_token("nope").has_value());
}

TEST(TokenizerTest, InvalidUtf8IsRejected) {
  expect_error([] { (void)tiny().encode("hello \xFF world"); }, StatusCode::kInvalidArgument,
               "text is not valid UTF-8 (byte 0xFF at offset 6)");
  expect_error([] { (void)tiny().encode("\xED\xA0\x80"); }, StatusCode::kInvalidArgument,
               "not valid UTF-8");
  expect_error([] { (void)tiny().encode(std::string("ab\xC3", 3)); }, StatusCode::kInvalidArgument,
               "offset 2");
}

// Random text mixing ASCII, controls, CR LF, long space runs, Latin-1, combining marks, CJK,
// emoji, any scalar value and special-token text: decode(encode(s)) == s, with and without
// parse_special.
TEST(TokenizerTest, RandomUtf8RoundTrips) {
  std::mt19937 rng(42);
  auto pick = [&](char32_t lo, char32_t hi) {
    return lo + static_cast<char32_t>(rng() % (hi - lo + 1));
  };
  const std::vector<std::function<void(std::string*)>> makers = {
      [&](std::string* s) { s->push_back(static_cast<char>(pick(0x20, 0x7E))); },
      [&](std::string* s) { s->push_back(static_cast<char>(pick(0x00, 0x1F))); },
      [&](std::string* s) { *s += "\r\n"; },
      [&](std::string* s) { s->append(pick(1, 40), ' '); },
      [&](std::string* s) { unicode::append_utf8(pick(0xA0, 0x24F), s); },
      [&](std::string* s) { unicode::append_utf8(pick(0x300, 0x36F), s); },
      [&](std::string* s) { unicode::append_utf8(pick(0x4E00, 0x9FFF), s); },
      [&](std::string* s) { unicode::append_utf8(pick(0x1F300, 0x1FAFF), s); },
      [&](std::string* s) {
        char32_t cp = pick(0, 0x10FFFF);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        unicode::append_utf8(cp, s);
      },
      [&](std::string* s) { *s += "<|im_start|>"; },
      [&](std::string* s) { *s += "<tool>"; },
      [&](std::string* s) { *s += "hello world 0123456789"; },
  };
  EncodeOptions special;
  special.parse_special = true;
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) makers[rng() % makers.size()](&text);
    ASSERT_EQ(tiny().decode(tiny().encode(text)), text);
    ASSERT_EQ(tiny().decode(tiny().encode(text, special)), text);
  }
}

TEST(TokenizerTest, UnsupportedModelsAndPreTokenizers) {
  TokenizerVocab v = make_vocab();
  v.model = "llama";
  expect_error([&] { (void)Tokenizer::from_vocab(v); }, StatusCode::kUnsupported,
               "tokenizer model 'llama' is not supported");
  v = make_vocab();
  v.pre = "default";
  expect_error([&] { (void)Tokenizer::from_vocab(v); }, StatusCode::kUnsupported,
               "pre-tokenizer 'default' is not supported");
  v.pre = "gpt2";
  const Tokenizer gpt2 = Tokenizer::from_vocab(v);
  EXPECT_EQ(gpt2.pre_tokenizer(), PreTokenizerKind::kGpt2);
  // Under plain GPT-2 rules " 12" stays one piece (and, with no merges for it, three bytes).
  EXPECT_EQ(gpt2.encode(" 12"), (std::vector<int32_t>{byte_id(' '), byte_id('1'), byte_id('2')}));
}

TEST(TokenizerTest, InconsistentVocabulariesAreCorrupt) {
  struct Case {
    const char* what;
    std::function<void(TokenizerVocab*)> spoil;
    const char* message;
  };
  const Case cases[] = {
      {"empty",
       [](TokenizerVocab* v) {
         v->tokens.clear();
         v->token_types.clear();
       },
       "vocabulary has 0 tokens"},
      {"types", [](TokenizerVocab* v) { v->token_types.pop_back(); }, "token types for"},
      {"type value", [](TokenizerVocab* v) { v->token_types[7] = 9; },
       "token 7 has unknown type 9"},
      {"byte type", [](TokenizerVocab* v) { v->token_types[7] = 6; }, "SentencePiece byte token"},
      {"spelling",
       [](TokenizerVocab* v) {
         v->tokens.push_back("a b");
         v->token_types.push_back(1);
       },
       "is not spelled in the byte-level alphabet"},
      {"empty normal",
       [](TokenizerVocab* v) {
         v->tokens.push_back("");
         v->token_types.push_back(1);
       },
       "is not spelled in the byte-level alphabet"},
      {"control utf8", [](TokenizerVocab* v) { v->tokens[0] = "\xFF"; },
       "token 0 is not valid UTF-8"},
      {"merge format", [](TokenizerVocab* v) { v->merges.push_back("hello"); },
       "merge 10 'hello' is not two tokens separated by one space"},
      {"merge spaces", [](TokenizerVocab* v) { v->merges.push_back("h e l"); },
       "is not two tokens"},
      {"merge unknown", [](TokenizerVocab* v) { v->merges.push_back("x y"); },
       "merge 10 'x y' uses or makes a token that is not in the vocabulary"},
      {"bos", [](TokenizerVocab* v) { v->bos_id = 271; }, "BOS token id 271 is outside"},
      {"eos", [](TokenizerVocab* v) { v->eos_id = -2; }, "EOS token id -2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TokenizerVocab v = make_vocab();
    c.spoil(&v);
    expect_error([&] { (void)Tokenizer::from_vocab(v); }, StatusCode::kCorruptData, c.message);
  }
}

TEST(TokenizerTest, TextNeedingAMissingByteTokenIsRejected) {
  TokenizerVocab v = make_vocab();
  v.tokens[kFirstByte + 0x04] = "<unused>";  // the vocabulary loses byte 0x04 ...
  v.token_types[kFirstByte + 0x04] = 5;
  v.tokens[kFirstByte + 0xF5] = "<unused2>";  // ... and 0xF5, which valid UTF-8 never holds
  v.token_types[kFirstByte + 0xF5] = 5;
  const Tokenizer t = Tokenizer::from_vocab(v);
  EXPECT_EQ(t.decode(t.encode("hello world")), "hello world");
  expect_error([&] { (void)t.encode("hello\x04 world"); }, StatusCode::kInvalidArgument,
               "text has byte 0x04 at offset 5, for which the vocabulary has no token");
  // Also when the piece was seen before without the byte, and after a literal token.
  expect_error([&] { (void)t.encode("ab ab<tool>ab\x04"); }, StatusCode::kInvalidArgument,
               "byte 0x04 at offset 13");
}

TEST(TokenizerTest, MissingTokenTypesMeanAllNormal) {
  TokenizerVocab v = make_vocab();
  v.tokens.erase(v.tokens.begin(), v.tokens.begin() + kFirstByte);
  v.token_types.clear();
  v.bos_id = v.eos_id = v.unk_id = v.pad_id = -1;
  const Tokenizer t = Tokenizer::from_vocab(v);
  EXPECT_EQ(t.n_vocab(), 256 + 10);
  EXPECT_EQ(t.token_type(0), TokenType::kNormal);
  EXPECT_EQ(t.decode(t.encode("hello world")), "hello world");
}

TEST(ByteLevelTest, AlphabetIsTheGpt2Mapping) {
  EXPECT_EQ(byte_level::symbol(' '), "\xC4\xA0");   // Ġ U+0120
  EXPECT_EQ(byte_level::symbol('\n'), "\xC4\x8A");  // Ċ U+010A
  EXPECT_EQ(byte_level::symbol('A'), "A");
  EXPECT_EQ(byte_level::symbol(0xE9), "\xC3\xA9");  // é is printable Latin-1: itself
  EXPECT_EQ(byte_level::symbol(0xAD), "\xC5\x83");  // soft hyphen is not: U+0143, the last
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(byte_level::to_bytes(byte_level::spell(all), &back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(byte_level::to_bytes("a b", &back));       // raw space is not in the alphabet
  EXPECT_FALSE(byte_level::to_bytes("\xC5\x84", &back));  // U+0144, just past it
  EXPECT_FALSE(byte_level::to_bytes("\xFF", &back));      // not UTF-8
}

}  // namespace
}  // namespace latentkv
