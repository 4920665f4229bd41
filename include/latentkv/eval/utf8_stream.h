// Streaming decoded token bytes to a terminal: a token of a byte-level BPE vocabulary may end in
// the middle of a multi-byte UTF-8 character, so output is held back until the character is
// complete.
#pragma once

#include <string>
#include <string_view>

namespace latentkv {

class Utf8Stream {
 public:
  /// Appends `bytes` and returns everything that is safe to print: all pending bytes except an
  /// incomplete multi-byte character at the end. Invalid bytes are passed through unchanged.
  std::string push(std::string_view bytes);
  /// Returns and clears whatever is still held (an incomplete character at the end of the text).
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace latentkv
