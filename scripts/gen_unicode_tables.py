#!/usr/bin/env python3
"""Generates src/tokenizer/unicode_tables.cpp: the character classes the BPE pre-tokenizer needs.

The GPT-2 split rule (and the Digits split before it) asks three questions of a code point:
is it a letter (\\p{L}: Lu Ll Lt Lm Lo), a number (\\p{N}: Nd Nl No), or white space (the Unicode
White_Space property, which is what Oniguruma's \\s means in HF `tokenizers`)? This script writes
one sorted table of code point ranges, each tagged with its class, so the library answers all
three with one binary search and needs no regex library.

Letters and numbers come from `unicodedata2` when it is installed, else from the standard
`unicodedata` (Python 3.11: Unicode 14.0); the Unicode version used is written into the output.
The committed table is Unicode 16.0, the version of the Oniguruma inside HF `tokenizers` 0.23
(whose regex the reference tokenizer runs):  pip install unicodedata2==16.0.0. White_Space is not exposed by `unicodedata` (str.isspace() is a different set: it also
accepts U+001C..U+001F), so its short, stable list is spelled out below from the Unicode Character
Database file PropList.txt.

Usage (from the repository root):  python3 scripts/gen_unicode_tables.py > src/tokenizer/unicode_tables.cpp
"""

import sys

try:
    import unicodedata2 as unicodedata
    SOURCE = "unicodedata2"
except ImportError:
    import unicodedata
    SOURCE = "unicodedata"

# PropList.txt, property White_Space (unchanged since Unicode 6.3).
WHITE_SPACE = [
    (0x0009, 0x000D), (0x0020, 0x0020), (0x0085, 0x0085), (0x00A0, 0x00A0), (0x1680, 0x1680),
    (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
]

LETTER, NUMBER, WHITESPACE = 1, 2, 3
SHORT_NAMES = {LETTER: "L", NUMBER: "N", WHITESPACE: "W"}  # aliases defined in the output


def char_class(cp, white):
    if cp in white:
        return WHITESPACE
    cat = unicodedata.category(chr(cp))
    if cat[0] == "L":
        return LETTER
    if cat[0] == "N":
        return NUMBER
    return 0


def ranges():
    white = set()
    for lo, hi in WHITE_SPACE:
        white.update(range(lo, hi + 1))
    out = []  # [first, last, class]
    for cp in range(0x110000):
        cls = char_class(cp, white)
        if cls == 0:
            continue
        if out and out[-1][2] == cls and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp, cls])
    return out


def main():
    table = ranges()
    w = sys.stdout.write
    w("// GENERATED FILE - do not edit. Produced by scripts/gen_unicode_tables.py\n")
    w(f"// from Python's {SOURCE} (Unicode {unicodedata.unidata_version}); White_Space from "
      "PropList.txt.\n")
    w("// Regenerate with (after pip install unicodedata2==16.0.0):\n")
    w("//   python3 scripts/gen_unicode_tables.py > src/tokenizer/unicode_tables.cpp\n")
    w('#include "tokenizer/unicode_tables.h"\n\n')
    w("namespace latentkv::unicode_detail {\n\n")
    w(f'const char kUnicodeVersion[] = "{unicodedata.unidata_version}";\n\n')
    w("namespace {\n")
    w("constexpr CharClass L = CharClass::kLetter;\n")
    w("constexpr CharClass N = CharClass::kNumber;\n")
    w("constexpr CharClass W = CharClass::kWhitespace;\n")
    w("}  // namespace\n\n")
    w("// {first, last, class}, sorted and disjoint.\n")
    w("// clang-format off\n")
    w(f"const CharRange kCharRanges[{len(table)}] = {{\n")
    line = ""
    for lo, hi, cls in table:
        item = f"{{0x{lo:X}, 0x{hi:X}, {SHORT_NAMES[cls]}}},"
        if len(line) + len(item) + 1 > 98:
            w(line.rstrip() + "\n")
            line = ""
        line += item + " "
    if line:
        w(line.rstrip() + "\n")
    w("};\n")
    w("// clang-format on\n\n")
    w(f"const size_t kNumCharRanges = {len(table)};\n\n")
    w("}  // namespace latentkv::unicode_detail\n")


if __name__ == "__main__":
    main()
