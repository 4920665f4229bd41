// Read-only, memory-mapped GGUF file (versions 2 and 3): metadata, tensor infos, tensor bytes.
//
// Format (little-endian): magic "GGUF", uint32 version, uint64 tensor_count, uint64 kv_count,
// kv_count × (string key, uint32 value type, value), tensor_count × (string name, uint32 n_dims,
// n_dims × uint64 ne, uint32 ggml type, uint64 offset), padding to `general.alignment` (default
// 32), then the data section; tensor offsets are relative to its start. A string is a uint64
// length followed by that many bytes (no terminator).
//
// Everything is validated against the file size when the file is opened, so a GgufFile that
// exists is internally consistent: every tensor's bytes lie inside the file. Errors are
// latentkv::Error with a one-line message that names the file:
//   kNotFound     the file does not exist
//   kIoError      it cannot be opened, stat'ed or mapped (permissions, a directory, ...)
//   kCorruptData  wrong magic, truncated header or tensor data, bad counts/offsets/dims
//   kUnsupported  GGUF v1, a newer version, a big-endian file, an unknown ggml tensor type
//
// Lifetime: string_views, GgufValues, GgufTensorInfos and tensor bytes handed out point into the
// mapping and stay valid while the GgufFile (or the object it was moved into) is alive.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "latentkv/gguf/ggml_type.h"
#include "latentkv/gguf/gguf_value.h"
#include "latentkv/status.h"

namespace latentkv {

/// One metadata entry, in file order.
struct GgufKeyValue {
  std::string_view key;
  GgufValue value;
};

/// Where a tensor lives and what it holds.
struct GgufTensorInfo {
  std::string_view name;
  GgmlType type = GgmlType::kF32;
  /// GGUF dimensions, innermost first: ne[0] is the row length (columns), ne[1] the number of
  /// rows of a matrix. A row-major [rows, cols] matrix has ne = {cols, rows}. 1 to 4 entries.
  std::vector<int64_t> ne;
  uint64_t offset = 0;   ///< from the start of the data section (a multiple of the alignment)
  uint64_t n_bytes = 0;  ///< size of the tensor's data in bytes
  int64_t n_elements = 0;

  int n_dims() const { return static_cast<int>(ne.size()); }
  /// Elements per row (ne[0]).
  int64_t n_cols() const { return ne.empty() ? 0 : ne[0]; }
  /// Rows: the product of ne[1..].
  int64_t n_rows() const { return ne.empty() || ne[0] == 0 ? 0 : n_elements / ne[0]; }
  /// Row-major shape (ne reversed): {rows, cols} for a matrix, {n} for a vector.
  std::vector<int64_t> shape() const { return std::vector<int64_t>(ne.rbegin(), ne.rend()); }
  /// "[49152, 576] q8_0" — row-major shape and type, for messages.
  std::string describe() const;
};

/// A parsed, memory-mapped GGUF file. Move-only.
class GgufFile {
 public:
  /// Maps and parses `path`; throws Error as listed in the file comment.
  explicit GgufFile(const std::string& path);
  /// Same, but returns the error as a Status instead of throwing.
  static Result<GgufFile> open(const std::string& path);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  const std::string& path() const;
  uint32_t version() const;
  uint64_t file_size() const;
  /// Data-section alignment (general.alignment, default 32).
  uint64_t alignment() const;
  /// File offset of the data section.
  uint64_t data_offset() const;
  /// The whole file's bytes (file_size() of them).
  const uint8_t* file_bytes() const;

  // --- metadata ------------------------------------------------------------------------------
  /// All entries in file order (for iteration / dumping).
  const std::vector<GgufKeyValue>& metadata() const;
  /// The value of `key`, or nullptr when absent.
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  /// The value of `key`; throws Error(kNotFound, "<file>: missing required metadata '<key>'").
  const GgufValue& value(std::string_view key) const;

  /// Required scalar/string `key` converted to T (see GgufValue::as for the conversion rules).
  /// Throws kNotFound when absent and kCorruptData ("<file>: metadata '<key>' is uint32 ...,
  /// expected bool") when the stored value cannot be represented as T.
  template <typename T>
  T get(std::string_view key) const;
  /// Like get<T>, but returns `fallback` when the key is absent (a wrong type still throws).
  template <typename T>
  T get_or(std::string_view key, T fallback) const;
  /// Required array `key` with every element converted to T (e.g. int32_t for
  /// tokenizer.ggml.token_type, std::string for a string array). Throws like get<T>.
  template <typename T>
  std::vector<T> get_array(std::string_view key) const;
  /// Required array of strings `key`, as views into the file (no copies; e.g.
  /// tokenizer.ggml.tokens / tokenizer.ggml.merges). Throws like get<T>.
  const std::vector<std::string_view>& get_string_array(std::string_view key) const;

  // --- tensors -------------------------------------------------------------------------------
  /// All tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const;
  /// The tensor called `name`, or nullptr.
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  /// The tensor called `name`; throws Error(kNotFound, "<file>: missing tensor '<name>'").
  const GgufTensorInfo& tensor(std::string_view name) const;
  /// First byte of a tensor's data (ggml block layout, info.n_bytes bytes, rows back to back).
  /// No alignment beyond the file's is guaranteed.
  const uint8_t* tensor_data(const GgufTensorInfo& info) const;

  /// Lowercase hex SHA-256 of the whole file (same as `sha256sum FILE`): the model identity used
  /// to key caches and compressed files. Reads every byte of the file.
  std::string sha256() const;

  struct Impl;  ///< parsed state; opaque outside src/gguf

 private:
  [[noreturn]] void throw_conversion_error(std::string_view key, const GgufValue& v,
                                           const std::string& expected) const;
  std::unique_ptr<Impl> impl_;
};

template <typename T>
T GgufFile::get(std::string_view key) const {
  const GgufValue& v = value(key);
  std::optional<T> out = v.as<T>();
  if (!out) throw_conversion_error(key, v, detail::gguf_cpp_type_name<T>());
  return *std::move(out);
}

template <typename T>
T GgufFile::get_or(std::string_view key, T fallback) const {
  return has(key) ? get<T>(key) : fallback;
}

template <typename T>
std::vector<T> GgufFile::get_array(std::string_view key) const {
  const GgufValue& v = value(key);
  std::optional<std::vector<T>> out = v.as_array<T>();
  if (!out) {
    throw_conversion_error(key, v, std::string("array of ") + detail::gguf_cpp_type_name<T>());
  }
  return *std::move(out);
}

}  // namespace latentkv
