// SHA-256 (FIPS 180-4), used to identify model files: calibration caches and compressed models
// are keyed by the SHA-256 of the source GGUF, which anyone can reproduce with `sha256sum`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace latentkv {

/// Incremental SHA-256. update() any number of times, then digest() once.
class Sha256 {
 public:
  Sha256();
  /// Appends `n` bytes to the message.
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Finishes the message and returns the 32-byte digest. The object must not be reused.
  std::array<uint8_t, 32> digest();
  /// digest() as 64 lowercase hex characters.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

/// Lowercase hex SHA-256 of `n` bytes.
std::string sha256_hex(const void* data, size_t n);
/// Lowercase hex SHA-256 of a file's bytes (as `sha256sum path`). Throws Error(kNotFound /
/// kIoError) when the file cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace latentkv
