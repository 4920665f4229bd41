// Internal: the generated code point range table behind latentkv::unicode::char_class().
#pragma once

#include <cstddef>

#include "latentkv/tokenizer/unicode.h"

namespace latentkv::unicode_detail {

using unicode::CharClass;

struct CharRange {
  char32_t first;
  char32_t last;
  CharClass cls;
};

extern const char kUnicodeVersion[];
/// Sorted by `first`, disjoint, only letters, numbers and whitespace.
extern const CharRange kCharRanges[];
extern const size_t kNumCharRanges;

}  // namespace latentkv::unicode_detail
