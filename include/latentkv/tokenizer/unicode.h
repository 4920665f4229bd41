// UTF-8 validation/decoding and the Unicode character classes the BPE pre-tokenizer needs.
//
// The classes come from a generated range table (src/tokenizer/unicode_tables.cpp, written by
// scripts/gen_unicode_tables.py), so no regex or ICU library is needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace latentkv::unicode {

/// The classes the GPT-2 split rule distinguishes. Letters are general category L* (\p{L}),
/// numbers N* (\p{N}), whitespace the White_Space property (what \s means in HF `tokenizers`).
/// The three sets are disjoint; everything else (punctuation, symbols, marks, controls that are
/// not White_Space, unassigned code points) is kOther.
enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kWhitespace = 3 };

/// Class of one code point (any value; > U+10FFFF is kOther).
CharClass char_class(char32_t cp);

/// The Unicode version the class table was generated from, e.g. "14.0.0".
const char* table_version();

/// Byte offset of the first byte that does not start a valid UTF-8 sequence (overlong forms,
/// surrogates, code points above U+10FFFF and truncated sequences are invalid), or npos when the
/// whole text is valid.
size_t find_invalid_utf8(std::string_view text);

/// Throws Error(kInvalidArgument) "<what> is not valid UTF-8 (byte 0x.. at offset N)" unless
/// `text` is valid UTF-8.
void check_utf8(std::string_view text, std::string_view what);

/// Decodes the code point starting at text[pos] of VALID UTF-8 and stores its byte length in
/// *len (1..4). Behaviour on invalid input is unspecified; validate first.
inline char32_t decode_utf8(std::string_view text, size_t pos, int* len) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  auto cont = [&](size_t i) { return static_cast<char32_t>(text[pos + i] & 0x3F); };
  if (b0 < 0xE0) {
    *len = 2;
    return (static_cast<char32_t>(b0 & 0x1F) << 6) | cont(1);
  }
  if (b0 < 0xF0) {
    *len = 3;
    return (static_cast<char32_t>(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
  }
  *len = 4;
  return (static_cast<char32_t>(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
}

/// Appends the UTF-8 encoding of `cp` (must be a Unicode scalar value) to *out.
void append_utf8(char32_t cp, std::string* out);

}  // namespace latentkv::unicode
