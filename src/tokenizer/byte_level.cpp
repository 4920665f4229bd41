#include "latentkv/tokenizer/byte_level.h"

#include <array>

#include "latentkv/tokenizer/unicode.h"

namespace latentkv::byte_level {
namespace {

bool printable(uint32_t b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Alphabet {
  std::array<std::string, 256> symbol;   // byte -> UTF-8 of its character
  std::array<int16_t, 0x144> byte_of{};  // character (all are < U+0144) -> byte, or -1
};

const Alphabet& alphabet() {
  static const Alphabet a = [] {
    Alphabet t;
    t.byte_of.fill(-1);
    char32_t next = 0x100;
    for (uint32_t b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : next++;
      unicode::append_utf8(cp, &t.symbol[b]);
      t.byte_of[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return a;
}

}  // namespace

std::string_view symbol(uint8_t b) { return alphabet().symbol[b]; }

bool to_bytes(std::string_view spelled, std::string* bytes) {
  if (unicode::find_invalid_utf8(spelled) != std::string_view::npos) return false;
  const Alphabet& a = alphabet();
  bytes->clear();
  for (size_t pos = 0; pos < spelled.size();) {
    int len = 0;
    const char32_t cp = unicode::decode_utf8(spelled, pos, &len);
    if (cp >= a.byte_of.size() || a.byte_of[cp] < 0) return false;
    bytes->push_back(static_cast<char>(a.byte_of[cp]));
    pos += static_cast<size_t>(len);
  }
  return true;
}

std::string spell(std::string_view bytes) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += a.symbol[static_cast<uint8_t>(c)];
  return out;
}

}  // namespace latentkv::byte_level
