#include "latentkv/eval/utf8_stream.h"

#include <algorithm>

namespace latentkv {

namespace {
// Length of the sequence a lead byte announces (1 for ASCII and for bytes that cannot start one).
size_t announced_length(unsigned char b) {
  if (b >= 0xF0 && b <= 0xF4) return 4;
  if (b >= 0xE0) return b <= 0xEF ? 3 : 1;
  if (b >= 0xC2) return 2;
  return 1;
}
}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  size_t cut = pending_.size();
  // Look back at most 3 bytes for the lead byte of an unfinished character.
  for (size_t k = 1; k <= std::min<size_t>(3, pending_.size()); ++k) {
    const auto b = static_cast<unsigned char>(pending_[pending_.size() - k]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for its lead
    if (announced_length(b) > k) cut = pending_.size() - k;
    break;
  }
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace latentkv
