// A minimal GGUF writer for tests: builds small files (and, by editing the bytes, corrupted
// ones) so that the reader and loader can be tested without large fixtures. Test-only code.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "latentkv/gguf/ggml_type.h"
#include "latentkv/gguf/gguf_value.h"

namespace latentkv::testing {

/// Serializes metadata and tensors in the GGUF layout (see latentkv/gguf/gguf_file.h).
class GgufWriter {
 public:
  uint32_t version = 3;
  uint64_t alignment = 32;  ///< used for padding; write general.alignment yourself to change it

  // --- metadata (appended in call order) ---
  template <typename T>
  void add_scalar(const std::string& key, GgufValueType type, T v) {
    if (sizeof(T) < gguf_scalar_size(type)) throw std::logic_error("add_scalar: T too small");
    key_header(key, type);
    put_raw(&v, gguf_scalar_size(type));
  }
  void add_u32(const std::string& key, uint32_t v) { add_scalar(key, GgufValueType::kUint32, v); }
  void add_i32(const std::string& key, int32_t v) { add_scalar(key, GgufValueType::kInt32, v); }
  void add_f32(const std::string& key, float v) { add_scalar(key, GgufValueType::kFloat32, v); }
  void add_bool(const std::string& key, bool v) {
    add_scalar(key, GgufValueType::kBool, static_cast<uint8_t>(v));
  }
  void add_string(const std::string& key, const std::string& v) {
    key_header(key, GgufValueType::kString);
    put_string(&kv_, v);
  }
  /// Array of numeric elements of `elem_type` (T must have that element's size).
  template <typename T>
  void add_array(const std::string& key, GgufValueType elem_type, const std::vector<T>& v) {
    key_header(key, GgufValueType::kArray);
    put_pod(&kv_, static_cast<uint32_t>(elem_type));
    put_pod(&kv_, static_cast<uint64_t>(v.size()));
    for (const T& x : v) put_raw(&x, gguf_scalar_size(elem_type));
  }
  void add_string_array(const std::string& key, const std::vector<std::string>& v) {
    key_header(key, GgufValueType::kArray);
    put_pod(&kv_, static_cast<uint32_t>(GgufValueType::kString));
    put_pod(&kv_, static_cast<uint64_t>(v.size()));
    for (const std::string& s : v) put_string(&kv_, s);
  }
  /// Array of string arrays (GGUF nested arrays).
  void add_nested_string_array(const std::string& key,
                               const std::vector<std::vector<std::string>>& v) {
    key_header(key, GgufValueType::kArray);
    put_pod(&kv_, static_cast<uint32_t>(GgufValueType::kArray));
    put_pod(&kv_, static_cast<uint64_t>(v.size()));
    for (const auto& inner : v) {
      put_pod(&kv_, static_cast<uint32_t>(GgufValueType::kString));
      put_pod(&kv_, static_cast<uint64_t>(inner.size()));
      for (const std::string& s : inner) put_string(&kv_, s);
    }
  }

  // --- tensors ---
  /// A tensor with GGUF dims `ne` (innermost first) and raw data bytes; `type_id` may be any
  /// number (to write unknown types). Data is placed at the next aligned offset.
  void add_tensor_raw(const std::string& name, uint32_t type_id, const std::vector<int64_t>& ne,
                      const std::vector<uint8_t>& data) {
    tensors_.push_back({name, type_id, ne, data});
  }
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                  const std::vector<uint8_t>& data) {
    add_tensor_raw(name, static_cast<uint32_t>(type), ne, data);
  }
  /// An f32 tensor with row-major `shape` (written as reversed GGUF dims).
  void add_f32_tensor(const std::string& name, const std::vector<int64_t>& shape,
                      const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    add_tensor(name, GgmlType::kF32, std::vector<int64_t>(shape.rbegin(), shape.rend()), bytes);
  }

  /// The whole file.
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    put_raw_to(&out, "GGUF", 4);
    put_pod(&out, version);
    put_pod(&out, static_cast<uint64_t>(tensors_.size()));
    put_pod(&out, n_kv_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
      put_string(&out, t.name);
      put_pod(&out, static_cast<uint32_t>(t.ne.size()));
      for (int64_t d : t.ne) put_pod(&out, static_cast<uint64_t>(d));
      put_pod(&out, t.type);
      put_pod(&out, offset);
      offset = align(offset + t.data.size());
    }
    out.resize(align(out.size()), 0);
    for (const Tensor& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      out.resize(align(out.size()), 0);
    }
    return out;
  }

  /// Writes `bytes` to `path`.
  static void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  }
  void write(const std::string& path) const { write_file(path, bytes()); }

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };

  uint64_t align(uint64_t n) const { return (n + alignment - 1) / alignment * alignment; }
  static void put_raw_to(std::vector<uint8_t>* out, const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    out->insert(out->end(), b, b + n);
  }
  void put_raw(const void* p, size_t n) { put_raw_to(&kv_, p, n); }
  template <typename T>
  static void put_pod(std::vector<uint8_t>* out, T v) {
    put_raw_to(out, &v, sizeof v);
  }
  static void put_string(std::vector<uint8_t>* out, const std::string& s) {
    put_pod(out, static_cast<uint64_t>(s.size()));
    put_raw_to(out, s.data(), s.size());
  }
  void key_header(const std::string& key, GgufValueType type) {
    put_string(&kv_, key);
    put_pod(&kv_, static_cast<uint32_t>(type));
    ++n_kv_;
  }

  std::vector<uint8_t> kv_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace latentkv::testing
