// The parsed state behind latentkv::GgufFile (internal).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/mapped_file.h"
#include "latentkv/gguf/gguf_file.h"

namespace latentkv {

struct GgufFile::Impl {
  std::string path;
  MappedFile map;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;
  std::vector<GgufKeyValue> kvs;
  std::unordered_map<std::string_view, size_t> kv_index;
  std::vector<GgufTensorInfo> tensors;
  std::unordered_map<std::string_view, size_t> tensor_index;

  explicit Impl(const std::string& p) : path(p), map(p) {}
};

/// Parses the mapped bytes of `impl` (header, metadata, tensor infos) and validates every tensor
/// against the file size. Throws Error (see gguf_file.h).
void parse_gguf(GgufFile::Impl& impl);

}  // namespace latentkv
