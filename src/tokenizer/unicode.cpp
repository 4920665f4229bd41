#include "latentkv/tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "latentkv/status.h"
#include "tokenizer/unicode_tables.h"

namespace latentkv::unicode {
namespace {

using unicode_detail::CharRange;
using unicode_detail::kCharRanges;
using unicode_detail::kNumCharRanges;

CharClass lookup(char32_t cp) {
  const CharRange* end = kCharRanges + kNumCharRanges;
  // First range whose last code point is >= cp; it holds cp when its first is <= cp.
  const CharRange* it = std::lower_bound(kCharRanges, end, cp,
                                         [](const CharRange& r, char32_t c) { return r.last < c; });
  return (it != end && it->first <= cp) ? it->cls : CharClass::kOther;
}

// ASCII dominates real text; a flat table skips the binary search for it. In ASCII, \p{L} is
// A-Z a-z, \p{N} is 0-9 and White_Space is TAB..CR and SPACE.
constexpr std::array<CharClass, 128> kAsciiClasses = [] {
  std::array<CharClass, 128> t{};
  for (char32_t c = 0; c < 128; ++c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
      t[c] = CharClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = CharClass::kNumber;
    } else if ((c >= 0x09 && c <= 0x0D) || c == ' ') {
      t[c] = CharClass::kWhitespace;
    }
  }
  return t;
}();

}  // namespace

CharClass char_class(char32_t cp) { return cp < 128 ? kAsciiClasses[cp] : lookup(cp); }

const char* table_version() { return unicode_detail::kUnicodeVersion; }

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = s[i];
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    // Lead byte -> sequence length and the allowed range of the second byte (RFC 3629 table),
    // which rules out overlong forms, surrogates and code points above U+10FFFF.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

void check_utf8(std::string_view text, std::string_view what) {
  const size_t bad = find_invalid_utf8(text);
  if (bad == std::string_view::npos) return;
  char byte[8];
  std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[bad]));
  LKV_THROW(StatusCode::kInvalidArgument, what, " is not valid UTF-8 (byte ", byte, " at offset ",
            bad, ")");
}

void append_utf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace latentkv::unicode
