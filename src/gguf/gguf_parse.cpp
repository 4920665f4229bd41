// GGUF header parsing and validation. Counts read from the file are checked against the bytes
// that remain before anything is allocated, so a corrupt count cannot make us allocate gigabytes.
#include <algorithm>
#include <limits>

#include "gguf/gguf_file_impl.h"
#include "gguf/gguf_reader.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

namespace latentkv {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int kMaxArrayDepth = 8;        // nesting limit for arrays of arrays
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
// Smallest encodings, used to bound counts: a key/value needs an 8-byte key length, a 4-byte
// type and a 1-byte value; a tensor info an 8-byte name length, 4-byte n_dims, 4-byte type and
// 8-byte offset; an array element of nested arrays a 4-byte type plus an 8-byte count.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
constexpr uint64_t kMinNestedArrayBytes = 4 + 8;

[[noreturn]] void corrupt(const GgufReader& r, const std::string& what) {
  LKV_THROW(StatusCode::kCorruptData, r.path(), ": ", what);
}

GgufValueType read_value_type(GgufReader& r, const std::string& key) {
  const uint32_t t = r.read<uint32_t>("value type");
  if (t > static_cast<uint32_t>(GgufValueType::kFloat64)) {
    corrupt(r, str_cat("metadata '", key, "' has unknown value type ", t));
  }
  return static_cast<GgufValueType>(t);
}

GgufValue read_value(GgufReader& r, GgufValueType type, const std::string& key, int depth);

GgufValue read_array(GgufReader& r, const std::string& key, int depth) {
  if (depth >= kMaxArrayDepth) {
    corrupt(r, str_cat("metadata '", key, "' nests arrays deeper than ", kMaxArrayDepth));
  }
  const GgufValueType elem = read_value_type(r, key);
  const uint64_t count = r.read<uint64_t>("array length");
  const size_t scalar = gguf_scalar_size(elem);
  const uint64_t min_elem = scalar > 0                       ? scalar
                            : elem == GgufValueType::kString ? sizeof(uint64_t)
                                                             : kMinNestedArrayBytes;
  if (count > r.remaining() / min_elem) {
    corrupt(r, str_cat("truncated header: array '", key, "' claims ", count, " ",
                       gguf_value_type_name(elem), " elements but only ", r.remaining(),
                       " bytes remain"));
  }
  if (scalar > 0) {
    return GgufValue::numeric_array(elem, count, r.take(count * scalar, "array data"));
  }
  if (elem == GgufValueType::kString) {
    std::vector<std::string_view> items;
    items.reserve(count);
    for (uint64_t i = 0; i < count; ++i) items.push_back(r.read_string("array string"));
    return GgufValue::string_array(std::move(items));
  }
  std::vector<GgufValue> items;
  items.reserve(count);
  for (uint64_t i = 0; i < count; ++i) items.push_back(read_array(r, key, depth + 1));
  return GgufValue::array_of_arrays(std::move(items));
}

GgufValue read_value(GgufReader& r, GgufValueType type, const std::string& key, int depth) {
  if (type == GgufValueType::kString) return GgufValue::string(r.read_string("string value"));
  if (type == GgufValueType::kArray) return read_array(r, key, depth);
  const size_t n = gguf_scalar_size(type);
  uint64_t raw = 0;
  std::memcpy(&raw, r.take(n, "value"), n);
  return GgufValue::scalar(type, raw);
}

void check_version(GgufReader& r, uint32_t version) {
  if (version == 2 || version == 3) return;
  // A big-endian writer stores 3 as 0x03000000.
  const uint32_t swapped = __builtin_bswap32(version);
  if (swapped >= 1 && swapped <= 3) {
    LKV_THROW(StatusCode::kUnsupported, r.path(),
              ": big-endian GGUF files are not supported (version field reads ", version, ")");
  }
  LKV_THROW(StatusCode::kUnsupported, r.path(), ": GGUF version ", version,
            " is not supported (latentkv reads versions 2 and 3)");
}

void read_metadata(GgufReader& r, GgufFile::Impl& impl, uint64_t kv_count) {
  if (kv_count > r.remaining() / kMinKvBytes) {
    corrupt(r, str_cat("truncated header: metadata count ", kv_count, " does not fit in the ",
                       r.remaining(), " bytes that remain"));
  }
  impl.kvs.reserve(kv_count);
  for (uint64_t i = 0; i < kv_count; ++i) {
    r.set_context(str_cat("metadata entry #", i));
    const std::string_view key = r.read_string("key");
    const std::string key_str(key);
    r.set_context(str_cat("metadata '", key_str, "'"));
    const GgufValueType type = read_value_type(r, key_str);
    GgufValue value = read_value(r, type, key_str, 0);
    if (!impl.kv_index.emplace(key, impl.kvs.size()).second) {
      corrupt(r, str_cat("duplicate metadata key '", key_str, "'"));
    }
    impl.kvs.push_back({key, std::move(value)});
  }
  r.set_context("");
}

void read_alignment(GgufReader& r, GgufFile::Impl& impl) {
  const auto it = impl.kv_index.find("general.alignment");
  if (it == impl.kv_index.end()) return;
  const GgufValue& v = impl.kvs[it->second].value;
  const std::optional<uint32_t> a = v.as<uint32_t>();
  if (!a || *a == 0 || (*a & (*a - 1)) != 0) {
    corrupt(r, str_cat("general.alignment must be a power of two, got ", v.describe()));
  }
  impl.alignment = *a;
}

GgufTensorInfo read_tensor_info(GgufReader& r, uint64_t index) {
  GgufTensorInfo t;
  r.set_context(str_cat("tensor info #", index));
  t.name = r.read_string("name");
  const std::string name(t.name);
  r.set_context(str_cat("tensor '", name, "'"));
  const uint32_t n_dims = r.read<uint32_t>("n_dims");
  if (n_dims == 0 || n_dims > kMaxDims) {
    corrupt(r, str_cat("tensor '", name, "' has ", n_dims, " dimensions (1 to 4 allowed)"));
  }
  t.ne.resize(n_dims);
  int64_t n = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne = r.read<uint64_t>("dimension");
    const auto max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (ne > max || (ne > 0 && static_cast<uint64_t>(n) > max / ne)) {
      corrupt(r, str_cat("tensor '", name, "' has an impossible element count (dimension ", d,
                         " is ", ne, ")"));
    }
    t.ne[d] = static_cast<int64_t>(ne);
    n *= t.ne[d];
  }
  t.n_elements = n;
  const uint32_t type = r.read<uint32_t>("type");
  if (!ggml_type_known(type)) {
    LKV_THROW(StatusCode::kUnsupported, r.path(), ": tensor '", name, "' has unknown ggml type ",
              type);
  }
  t.type = static_cast<GgmlType>(type);
  const GgmlTypeInfo& info = ggml_type_info(t.type);
  if (t.ne[0] % info.block_size != 0) {
    corrupt(r, str_cat("tensor '", name, "' row length ", t.ne[0], " is not a multiple of the ",
                       info.name, " block size ", info.block_size));
  }
  t.offset = r.read<uint64_t>("offset");
  // Each block takes at least one byte, so a tensor larger than the file is caught before the
  // byte count can overflow.
  const uint64_t n_blocks = static_cast<uint64_t>(n) / info.block_size;
  if (n_blocks > r.remaining() + r.pos()) {
    LKV_THROW(StatusCode::kCorruptData, r.path(), ": truncated tensor data: tensor '", name, "' ",
              t.describe(), " is larger than the whole file");
  }
  t.n_bytes = n_blocks * info.type_size;
  return t;
}

// Checks that every tensor is aligned, inside the data section, and disjoint from the others.
void check_tensor_bytes(const GgufFile::Impl& impl) {
  const uint64_t file_size = impl.map.size();
  const uint64_t data_size = file_size > impl.data_offset ? file_size - impl.data_offset : 0;
  for (const GgufTensorInfo& t : impl.tensors) {
    if (t.offset % impl.alignment != 0) {
      LKV_THROW(StatusCode::kCorruptData, impl.path, ": tensor '", t.name, "' offset ", t.offset,
                " is not a multiple of the alignment ", impl.alignment);
    }
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      LKV_THROW(StatusCode::kCorruptData, impl.path, ": truncated tensor data: tensor '", t.name,
                "' needs bytes ", impl.data_offset + t.offset, "..",
                impl.data_offset + t.offset + t.n_bytes, " but the file has ", file_size, " bytes");
    }
  }
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(impl.tensors.size());
  for (const GgufTensorInfo& t : impl.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    if (b.n_bytes > 0 && a.offset + a.n_bytes > b.offset) {
      LKV_THROW(StatusCode::kCorruptData, impl.path, ": tensors '", a.name, "' and '", b.name,
                "' overlap in the data section");
    }
  }
}

}  // namespace

void parse_gguf(GgufFile::Impl& impl) {
  GgufReader r(impl.map.data(), impl.map.size(), impl.path);
  if (impl.map.size() < sizeof(uint32_t)) {
    corrupt(r, str_cat("not a GGUF file (", impl.map.size(), " bytes, too short for the magic)"));
  }
  const uint32_t magic = r.read<uint32_t>("magic");
  if (magic != kMagic) {
    const uint8_t* m = impl.map.data();
    corrupt(r, str_cat("not a GGUF file (magic bytes ", std::hex, int{m[0]}, " ", int{m[1]}, " ",
                       int{m[2]}, " ", int{m[3]}, std::dec, ", expected 47 47 55 46 \"GGUF\")"));
  }
  impl.version = r.read<uint32_t>("version");
  check_version(r, impl.version);
  const uint64_t tensor_count = r.read<uint64_t>("tensor count");
  const uint64_t kv_count = r.read<uint64_t>("metadata count");
  read_metadata(r, impl, kv_count);
  read_alignment(r, impl);

  if (tensor_count > r.remaining() / kMinTensorInfoBytes) {
    corrupt(r, str_cat("truncated header: tensor count ", tensor_count, " does not fit in the ",
                       r.remaining(), " bytes that remain"));
  }
  impl.tensors.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t = read_tensor_info(r, i);
    if (!impl.tensor_index.emplace(t.name, impl.tensors.size()).second) {
      corrupt(r, str_cat("duplicate tensor name '", t.name, "'"));
    }
    impl.tensors.push_back(std::move(t));
  }
  impl.data_offset = (r.pos() + impl.alignment - 1) / impl.alignment * impl.alignment;
  check_tensor_bytes(impl);
}

}  // namespace latentkv
