#include "latentkv/tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "latentkv/status.h"

namespace latentkv::unicode {
namespace {

TEST(UnicodeTest, ClassesOfSampleCodePoints) {
  struct Sample {
    char32_t cp;
    CharClass cls;
  };
  const Sample samples[] = {
      {'a', CharClass::kLetter},        {'Z', CharClass::kLetter},
      {0xE9, CharClass::kLetter},       {0x4E2D, CharClass::kLetter},
      {0x30C6, CharClass::kLetter},     {0x1D400, CharClass::kLetter},
      {'5', CharClass::kNumber},        {0x663, CharClass::kNumber},
      {0xB2, CharClass::kNumber},       {0x216B, CharClass::kNumber},
      {0xBD, CharClass::kNumber},       {' ', CharClass::kWhitespace},
      {'\t', CharClass::kWhitespace},   {'\r', CharClass::kWhitespace},
      {0x85, CharClass::kWhitespace},   {0xA0, CharClass::kWhitespace},
      {0x2028, CharClass::kWhitespace}, {0x3000, CharClass::kWhitespace},
      {0x1C, CharClass::kOther},        {0x200B, CharClass::kOther},
      {0x180E, CharClass::kOther},      {'!', CharClass::kOther},
      {'\'', CharClass::kOther},        {0x301, CharClass::kOther},
      {0x1F600, CharClass::kOther},     {0xFF0C, CharClass::kOther},
      {0x10FFFF, CharClass::kOther},    {0x110000, CharClass::kOther},
      {0xFFFFFFFF, CharClass::kOther},
  };
  for (const Sample& s : samples) {
    EXPECT_EQ(char_class(s.cp), s.cls) << "U+" << std::hex << static_cast<uint32_t>(s.cp);
  }
  // The table follows Unicode 16.0, as the regex engine of the reference (HF tokenizers) does:
  // Egyptian Hieroglyphs Extended-A (new in 16.0) are letters.
  EXPECT_STREQ(table_version(), "16.0.0");
  EXPECT_EQ(char_class(0x13460), CharClass::kLetter);
}

// The ASCII fast path must agree with the C locale's classification (which, in ASCII, is exactly
// \p{L}, \p{N} and White_Space).
TEST(UnicodeTest, AsciiClassesMatchCLocale) {
  for (int c = 0; c < 128; ++c) {
    const CharClass want = std::isalpha(c)   ? CharClass::kLetter
                           : std::isdigit(c) ? CharClass::kNumber
                           : std::isspace(c) ? CharClass::kWhitespace
                                             : CharClass::kOther;
    EXPECT_EQ(char_class(static_cast<char32_t>(c)), want) << c;
  }
}

// Every scalar value encodes, validates and decodes back; every surrogate encoding is invalid.
TEST(UnicodeTest, EveryScalarValueRoundTrips) {
  std::string buf;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    buf.clear();
    append_utf8(cp, &buf);
    ASSERT_EQ(find_invalid_utf8(buf), std::string_view::npos) << cp;
    int len = 0;
    ASSERT_EQ(decode_utf8(buf, 0, &len), cp);
    ASSERT_EQ(static_cast<size_t>(len), buf.size());
    ASSERT_EQ(static_cast<size_t>(len), cp < 0x80 ? 1u : cp < 0x800 ? 2u : cp < 0x10000 ? 3u : 4u);
  }
  for (char32_t cp = 0xD800; cp <= 0xDFFF; ++cp) {
    const std::string s = {static_cast<char>(0xE0 | (cp >> 12)),
                           static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
                           static_cast<char>(0x80 | (cp & 0x3F))};
    ASSERT_EQ(find_invalid_utf8(s), 0u) << cp;
  }
}

TEST(UnicodeTest, InvalidSequencesAreFoundAtTheirOffset) {
  struct Bad {
    std::string text;
    size_t offset;
  };
  const Bad bad[] = {
      {"\x80", 0},              // lone continuation byte
      {"ab\xBF", 2},            // continuation byte after ASCII
      {"\xC0\x80", 0},          // overlong NUL
      {"\xC1\xBF", 0},          // overlong U+007F
      {"\xE0\x80\x80", 0},      // overlong 3-byte
      {"\xE0\x9F\xBF", 0},      // overlong U+07FF
      {"\xED\xA0\x80", 0},      // surrogate U+D800
      {"\xF0\x80\x80\x80", 0},  // overlong 4-byte
      {"\xF4\x90\x80\x80", 0},  // U+110000
      {"\xF5\x80\x80\x80", 0},  // lead byte beyond U+10FFFF
      {"\xFE", 0},              // never valid
      {"\xFF", 0},
      {"x\xE2\x82", 1},                 // truncated at end
      {"\xE2\x82x", 0},                 // truncated by ASCII
      {"ok \xC3\xA9 \xE2\x28\xA1", 6},  // bad second byte after a valid char
  };
  for (const Bad& b : bad) EXPECT_EQ(find_invalid_utf8(b.text), b.offset) << b.text;
  EXPECT_EQ(find_invalid_utf8(""), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80"
                              "\xF4\x8F\xBF\xBF"),
            std::string_view::npos);
}

TEST(UnicodeTest, CheckUtf8NamesTheByteAndOffset) {
  EXPECT_NO_THROW(check_utf8("h\xC3\xA9llo", "text"));
  try {
    check_utf8("hello\xFFworld", "text file");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "text file is not valid UTF-8 (byte 0xFF at offset 5)");
  }
}

}  // namespace
}  // namespace latentkv::unicode
