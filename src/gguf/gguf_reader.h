// Bounds-checked little-endian cursor over the bytes of a GGUF header (internal).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "latentkv/status.h"

namespace latentkv {

/// Reads GGUF primitives from [data, data + size). Every read that would run past the end throws
/// Error(kCorruptData, "<path>: truncated header: ...") naming what was being read and where.
class GgufReader {
 public:
  GgufReader(const uint8_t* data, uint64_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  const std::string& path() const { return path_; }

  /// What is being parsed ("metadata 'llama.block_count'"), for error messages.
  void set_context(std::string context) { context_ = std::move(context); }

  /// Advances by n bytes and returns where they start.
  const uint8_t* take(uint64_t n, const char* what) {
    if (n > remaining()) {
      LKV_THROW(StatusCode::kCorruptData, path_, ": truncated header: ", what,
                context_.empty() ? "" : " of ", context_, " needs ", n, " bytes at offset ", pos_,
                " but the file has ", size_, " bytes");
    }
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

  template <typename T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));  // GGUF is little-endian, like the host
    return v;
  }

  /// A GGUF string: uint64 length, then the bytes.
  std::string_view read_string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    return std::string_view(reinterpret_cast<const char*>(take(n, what)), n);
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
  std::string context_;
};

}  // namespace latentkv
