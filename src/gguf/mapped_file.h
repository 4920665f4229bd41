// Read-only memory mapping of a whole file (internal to the GGUF reader).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace latentkv {

/// Maps `path` read-only for its whole lifetime. Move-only.
class MappedFile {
 public:
  /// Throws Error: kNotFound when the file does not exist, kIoError when it cannot be opened,
  /// is not a regular file, or cannot be mapped. An empty file is mapped as zero bytes.
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  void release();
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace latentkv
