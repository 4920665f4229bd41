#include "latentkv/tokenizer/pre_tokenizer.h"

#include "latentkv/status.h"
#include "latentkv/tokenizer/unicode.h"

namespace latentkv {
namespace {

using unicode::CharClass;

// The text decoded once: code point, class and byte offset of each character, so the matcher
// can look ahead and back cheaply. offset[n] is the text size.
struct Chars {
  std::vector<char32_t> cp;
  std::vector<CharClass> cls;
  std::vector<size_t> offset;
};

void decode(std::string_view text, Chars* c) {
  c->cp.reserve(text.size());
  c->cls.reserve(text.size());
  c->offset.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    int len = 0;
    const char32_t cp = unicode::decode_utf8(text, pos, &len);
    c->cp.push_back(cp);
    c->cls.push_back(unicode::char_class(cp));
    c->offset.push_back(pos);
    pos += static_cast<size_t>(len);
  }
  c->offset.push_back(text.size());
}

// Length in characters of the GPT-2 rule's match at character i of the stretch [i, end). The
// alternatives are tried in the regex's order; the first that matches wins, as in a backtracking
// regex engine. Always >= 1: every character is a letter, a number, whitespace or other, and
// some alternative accepts each.
size_t gpt2_match(const Chars& c, size_t i, size_t end) {
  const char32_t ch = c.cp[i];
  // 's|'t|'re|'ve|'m|'ll|'d  (ASCII, case-sensitive)
  if (ch == '\'' && i + 1 < end) {
    const char32_t a = c.cp[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < end) {
      const char32_t b = c.cp[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
  }
  auto run = [&](size_t from, CharClass k) {
    size_t j = from;
    while (j < end && c.cls[j] == k) ++j;
    return j - i;
  };
  //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+  : an optional single SPACE, then a run of one class.
  // The space is taken only when the class run follows it; otherwise the space (whitespace) can
  // start none of these and falls through to the whitespace rules.
  const CharClass k = c.cls[i];
  if (ch == ' ' && i + 1 < end && c.cls[i + 1] != CharClass::kWhitespace) {
    return run(i + 1, c.cls[i + 1]);
  }
  if (k != CharClass::kWhitespace) return run(i, k);
  // \s+(?!\S) | \s+ : a whitespace run that reaches the end of the stretch is taken whole. One
  // followed by a non-space gives up its last character (which then prefixes the next word when
  // it is a space), unless it is a single character, which \s+ then takes alone.
  const size_t n = run(i, CharClass::kWhitespace);
  if (i + n == end || n == 1) return n;
  return n - 1;
}

void gpt2_split(std::string_view text, const Chars& c, size_t begin, size_t end,
                std::vector<std::string_view>* pieces) {
  for (size_t i = begin; i < end;) {
    const size_t n = gpt2_match(c, i, end);
    pieces->push_back(text.substr(c.offset[i], c.offset[i + n] - c.offset[i]));
    i += n;
  }
}

}  // namespace

PreTokenizerKind pre_tokenizer_from_name(std::string_view name) {
  if (name == "gpt2") return PreTokenizerKind::kGpt2;
  if (name == "smollm") return PreTokenizerKind::kSmollm;
  LKV_THROW(StatusCode::kUnsupported, "pre-tokenizer '", name,
            "' is not supported (supported: gpt2, smollm)");
}

const char* pre_tokenizer_name(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::kGpt2:
      return "gpt2";
    case PreTokenizerKind::kSmollm:
      return "smollm";
  }
  return "unknown";
}

void pre_tokenize(std::string_view text, PreTokenizerKind kind,
                  std::vector<std::string_view>* pieces) {
  Chars chars;
  decode(text, &chars);
  const size_t n = chars.cp.size();
  if (kind == PreTokenizerKind::kGpt2) {
    gpt2_split(text, chars, 0, n, pieces);
    return;
  }
  // kSmollm: numbers isolated first; the GPT-2 rule sees each stretch between them on its own,
  // so its lookahead ends at the stretch end (as in HF's Sequence of pre-tokenizers).
  size_t begin = 0;
  for (size_t i = 0; i < n; ++i) {
    if (chars.cls[i] != CharClass::kNumber) continue;
    gpt2_split(text, chars, begin, i, pieces);
    pieces->push_back(text.substr(chars.offset[i], chars.offset[i + 1] - chars.offset[i]));
    begin = i + 1;
  }
  gpt2_split(text, chars, begin, n, pieces);
}

}  // namespace latentkv
