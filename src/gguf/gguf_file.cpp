#include "latentkv/gguf/gguf_file.h"

#include "gguf/gguf_file_impl.h"
#include "latentkv/hash.h"

namespace latentkv {

std::string GgufTensorInfo::describe() const {
  std::string s = "[";
  for (size_t i = ne.size(); i-- > 0;) s += str_cat(ne[i], i > 0 ? ", " : "");
  return s + "] " + ggml_type_name(type);
}

GgufFile::GgufFile(const std::string& path) : impl_(std::make_unique<Impl>(path)) {
  parse_gguf(*impl_);
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  try {
    return GgufFile(path);
  } catch (...) {
    return status_from_exception();
  }
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

const std::string& GgufFile::path() const { return impl_->path; }
uint32_t GgufFile::version() const { return impl_->version; }
uint64_t GgufFile::file_size() const { return impl_->map.size(); }
uint64_t GgufFile::alignment() const { return impl_->alignment; }
uint64_t GgufFile::data_offset() const { return impl_->data_offset; }
const uint8_t* GgufFile::file_bytes() const { return impl_->map.data(); }

const std::vector<GgufKeyValue>& GgufFile::metadata() const { return impl_->kvs; }

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = impl_->kv_index.find(key);
  return it == impl_->kv_index.end() ? nullptr : &impl_->kvs[it->second].value;
}

const GgufValue& GgufFile::value(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) {
    LKV_THROW(StatusCode::kNotFound, impl_->path, ": missing required metadata '", key, "'");
  }
  return *v;
}

const std::vector<std::string_view>& GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = value(key);
  if (!v.is_array() || v.array_type() != GgufValueType::kString) {
    throw_conversion_error(key, v, "array of string");
  }
  return v.strings();
}

void GgufFile::throw_conversion_error(std::string_view key, const GgufValue& v,
                                      const std::string& expected) const {
  LKV_THROW(StatusCode::kCorruptData, impl_->path, ": metadata '", key, "' is ", v.describe(),
            ", expected ", expected);
}

const std::vector<GgufTensorInfo>& GgufFile::tensors() const { return impl_->tensors; }

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (t == nullptr) LKV_THROW(StatusCode::kNotFound, impl_->path, ": missing tensor '", name, "'");
  return *t;
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& info) const {
  return impl_->map.data() + impl_->data_offset + info.offset;
}

std::string GgufFile::sha256() const { return sha256_hex(impl_->map.data(), impl_->map.size()); }

}  // namespace latentkv
