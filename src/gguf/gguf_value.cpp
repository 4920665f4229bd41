#include "latentkv/gguf/gguf_value.h"

#include <cstring>
#include <limits>
#include <type_traits>

#include "latentkv/status.h"

namespace latentkv {
namespace {

bool is_signed_int(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kInt64;
}

int64_t sign_extend(uint64_t raw, size_t bytes) {
  const int shift = 64 - 8 * static_cast<int>(bytes);
  return static_cast<int64_t>(raw << shift) >> shift;
}

double float_value(GgufValueType t, uint64_t raw) {
  if (t == GgufValueType::kFloat32) {
    float f;
    const uint32_t bits = static_cast<uint32_t>(raw);
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  double d;
  std::memcpy(&d, &raw, sizeof d);
  return d;
}

template <typename T>
std::optional<T> integer_to(GgufValueType t, uint64_t raw) {
  if (is_signed_int(t)) {
    const int64_t v = sign_extend(raw, gguf_scalar_size(t));
    if constexpr (std::is_signed_v<T>) {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) return {};
    } else {
      if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) return {};
    }
    return static_cast<T>(v);
  }
  if (raw > static_cast<uint64_t>(std::numeric_limits<T>::max())) return {};
  return static_cast<T>(raw);
}

// Integers convert to floating point only when exactly representable (|v| <= 2^digits).
template <typename T>
std::optional<T> integer_to_float(GgufValueType t, uint64_t raw) {
  constexpr uint64_t kExact = uint64_t{1} << std::numeric_limits<T>::digits;
  if (is_signed_int(t)) {
    const int64_t v = sign_extend(raw, gguf_scalar_size(t));
    if (v < -static_cast<int64_t>(kExact) || v > static_cast<int64_t>(kExact)) return {};
    return static_cast<T>(v);
  }
  if (raw > kExact) return {};
  return static_cast<T>(raw);
}

// Converts one numeric/bool scalar (type t, raw little-endian bits) to T.
template <typename T>
std::optional<T> convert_scalar(GgufValueType t, uint64_t raw) {
  if constexpr (std::is_same_v<T, bool>) {
    if (t != GgufValueType::kBool) return {};
    return raw != 0;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64) {
      return static_cast<T>(float_value(t, raw));
    }
    if (!gguf_is_integer_type(t)) return {};
    return integer_to_float<T>(t, raw);
  } else {
    static_assert(std::is_integral_v<T>, "unsupported conversion target");
    if (!gguf_is_integer_type(t)) return {};
    return integer_to<T>(t, raw);
  }
}

uint64_t read_raw(const uint8_t* p, size_t bytes) {
  uint64_t raw = 0;
  std::memcpy(&raw, p, bytes);  // little-endian host: low bytes first
  return raw;
}

}  // namespace

std::string gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return str_cat("type", static_cast<uint32_t>(type));
}

bool gguf_is_integer_type(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

size_t gguf_scalar_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

GgufValue GgufValue::scalar(GgufValueType type, uint64_t raw_bits) {
  GgufValue v;
  v.type_ = type;
  v.raw_ = raw_bits;
  return v;
}

GgufValue GgufValue::string(std::string_view s) {
  GgufValue v;
  v.type_ = GgufValueType::kString;
  v.str_ = s;
  return v;
}

GgufValue GgufValue::numeric_array(GgufValueType elem_type, uint64_t count, const uint8_t* data) {
  GgufValue v;
  v.type_ = GgufValueType::kArray;
  v.elem_type_ = elem_type;
  v.count_ = count;
  v.elems_ = data;
  return v;
}

GgufValue GgufValue::string_array(std::vector<std::string_view> items) {
  GgufValue v;
  v.type_ = GgufValueType::kArray;
  v.elem_type_ = GgufValueType::kString;
  v.count_ = items.size();
  v.strings_ = std::move(items);
  return v;
}

GgufValue GgufValue::array_of_arrays(std::vector<GgufValue> items) {
  GgufValue v;
  v.type_ = GgufValueType::kArray;
  v.elem_type_ = GgufValueType::kArray;
  v.count_ = items.size();
  v.items_ = std::move(items);
  return v;
}

template <typename T>
std::optional<T> GgufValue::as() const {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    if (type_ != GgufValueType::kString) return {};
    return T(str_);
  } else {
    return convert_scalar<T>(type_, raw_);
  }
}

GgufValue GgufValue::array_element(uint64_t i) const {
  LKV_CHECK_ARG(is_array(), "array_element() on a GGUF ", gguf_value_type_name(type_));
  LKV_CHECK_ARG(i < count_, "GGUF array index ", i, " out of range [0, ", count_, ")");
  if (elem_type_ == GgufValueType::kString) return string(strings_[i]);
  if (elem_type_ == GgufValueType::kArray) return items_[i];
  const size_t size = gguf_scalar_size(elem_type_);
  return scalar(elem_type_, read_raw(elems_ + i * size, size));
}

template <typename T>
std::optional<std::vector<T>> GgufValue::as_array() const {
  if (!is_array()) return {};
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    if (elem_type_ != GgufValueType::kString) return {};
    return std::vector<T>(strings_.begin(), strings_.end());
  } else {
    const size_t size = gguf_scalar_size(elem_type_);
    if (size == 0) return {};  // strings or nested arrays
    std::vector<T> out(count_);
    for (uint64_t i = 0; i < count_; ++i) {
      std::optional<T> x = convert_scalar<T>(elem_type_, read_raw(elems_ + i * size, size));
      if (!x) return {};
      out[i] = *x;
    }
    return out;
  }
}

std::string GgufValue::describe() const {
  const std::string tname = gguf_value_type_name(type_);
  if (type_ == GgufValueType::kArray) {
    return str_cat("array[", count_, "] of ", gguf_value_type_name(elem_type_));
  }
  if (type_ == GgufValueType::kString) {
    constexpr size_t kMax = 40;
    if (str_.size() <= kMax) return str_cat("string \"", str_, "\"");
    return str_cat("string \"", str_.substr(0, kMax), "...\" (", str_.size(), " bytes)");
  }
  if (type_ == GgufValueType::kBool) return str_cat("bool ", raw_ != 0 ? "true" : "false");
  if (type_ == GgufValueType::kFloat32 || type_ == GgufValueType::kFloat64) {
    return str_cat(tname, " ", float_value(type_, raw_));
  }
  if (is_signed_int(type_)) return str_cat(tname, " ", sign_extend(raw_, gguf_scalar_size(type_)));
  return str_cat(tname, " ", raw_);
}

#define LKV_GGUF_INSTANTIATE(T)                       \
  template std::optional<T> GgufValue::as<T>() const; \
  template std::optional<std::vector<T>> GgufValue::as_array<T>() const;
LKV_GGUF_INSTANTIATE(int8_t)
LKV_GGUF_INSTANTIATE(uint8_t)
LKV_GGUF_INSTANTIATE(int16_t)
LKV_GGUF_INSTANTIATE(uint16_t)
LKV_GGUF_INSTANTIATE(int32_t)
LKV_GGUF_INSTANTIATE(uint32_t)
LKV_GGUF_INSTANTIATE(int64_t)
LKV_GGUF_INSTANTIATE(uint64_t)
LKV_GGUF_INSTANTIATE(float)
LKV_GGUF_INSTANTIATE(double)
LKV_GGUF_INSTANTIATE(std::string)
LKV_GGUF_INSTANTIATE(std::string_view)
#undef LKV_GGUF_INSTANTIATE

template std::optional<bool> GgufValue::as<bool>() const;
template std::optional<std::vector<bool>> GgufValue::as_array<bool>() const;

}  // namespace latentkv
