// GPT-2's byte-level alphabet: a reversible map from the 256 byte values to 256 printable
// characters, in which byte-level BPE vocabularies and merges are spelled (space is "Ġ",
// newline "Ċ", ...).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace latentkv::byte_level {

/// UTF-8 text of the character standing for byte `b`: the byte itself for the printable Latin-1
/// ranges '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF, otherwise U+0100 + (its rank among the
/// remaining bytes).
std::string_view symbol(uint8_t b);

/// Raw bytes of a byte-level spelled string. Returns false (leaving *bytes unspecified) when
/// `spelled` is not valid UTF-8 or holds a character outside the alphabet.
bool to_bytes(std::string_view spelled, std::string* bytes);

/// The byte-level spelling of raw bytes (inverse of to_bytes).
std::string spell(std::string_view bytes);

}  // namespace latentkv::byte_level
