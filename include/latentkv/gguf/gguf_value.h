// One GGUF metadata value: a scalar, a string, or an array (of scalars, strings or arrays).
//
// Values are views into a memory-mapped GgufFile: strings are std::string_view and numeric
// arrays point at the file bytes, so a GgufValue is valid only while the GgufFile that produced
// it is alive. GGUF data is little-endian; latentkv supports little-endian hosts only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace latentkv {

/// GGUF metadata value type ids (part of the file format).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

/// "uint32", "string", "array", ... ; "type<id>" for an id outside the enum.
std::string gguf_value_type_name(GgufValueType type);
/// True for the integer types (uint8 ... int64); bool is not an integer.
bool gguf_is_integer_type(GgufValueType type);

/// A metadata value. Build one only through GgufFile (or the factory functions used by it).
///
/// Conversions (`as<T>()`, `as_array<T>()`) return nullopt when the stored value does not fit:
///  - integer T (int8_t ... uint64_t) accepts any integer value (any width/signedness) in T's
///    range;
///  - float/double accept float32 and float64 (rounded to nearest for float) and integers that
///    they represent exactly;
///  - bool accepts only bool; std::string / std::string_view accept only string.
class GgufValue {
 public:
  GgufValue() = default;

  GgufValueType type() const { return type_; }
  bool is_array() const { return type_ == GgufValueType::kArray; }
  bool is_string() const { return type_ == GgufValueType::kString; }

  /// The scalar or string converted to T, or nullopt when the type or range does not allow it.
  /// T: bool, int8_t ... uint64_t, float, double, std::string, std::string_view.
  template <typename T>
  std::optional<T> as() const;

  /// Element type of an array (kArray for an array of arrays). Only valid when is_array().
  GgufValueType array_type() const { return elem_type_; }
  /// Number of elements of an array (0 for a non-array).
  uint64_t array_size() const { return is_array() ? count_ : 0; }
  /// Element i of an array as a value of its own (any element type). Throws Error(kInvalidArgument)
  /// when this is not an array or i is out of range.
  GgufValue array_element(uint64_t i) const;
  /// All elements converted to T (same rules as as<T>()), or nullopt when any element does not
  /// convert or this is not an array. T as for as<T>() (string arrays: std::string(_view)).
  template <typename T>
  std::optional<std::vector<T>> as_array() const;
  /// The elements of an array of strings, without copying. Empty for any other value.
  const std::vector<std::string_view>& strings() const { return strings_; }

  /// Short human description for messages: `uint32 30`, `string "llama"`, `array[49152] of
  /// string`.
  std::string describe() const;

  // Factories used by the parser (and tests). `data` must stay alive as long as the value.
  static GgufValue scalar(GgufValueType type, uint64_t raw_bits);
  static GgufValue string(std::string_view s);
  static GgufValue numeric_array(GgufValueType elem_type, uint64_t count, const uint8_t* data);
  static GgufValue string_array(std::vector<std::string_view> items);
  static GgufValue array_of_arrays(std::vector<GgufValue> items);

 private:
  GgufValueType type_ = GgufValueType::kUint8;
  uint64_t raw_ = 0;      // numeric scalar: its little-endian bytes, zero-extended
  std::string_view str_;  // string
  GgufValueType elem_type_ = GgufValueType::kUint8;
  uint64_t count_ = 0;                     // array length
  const uint8_t* elems_ = nullptr;         // numeric array: count_ packed elements in the file
  std::vector<std::string_view> strings_;  // string array
  std::vector<GgufValue> items_;           // array of arrays
};

/// Bytes of one numeric GGUF value (uint8 → 1, ..., float64 → 8); 0 for string/array.
size_t gguf_scalar_size(GgufValueType type);

namespace detail {
/// Name of a C++ type accepted by GgufValue::as, for error messages.
template <typename T>
constexpr const char* gguf_cpp_type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_same_v<T, float>)
    return "float32";
  else if constexpr (std::is_same_v<T, double>)
    return "float64";
  else if constexpr (std::is_same_v<T, int8_t>)
    return "int8";
  else if constexpr (std::is_same_v<T, uint8_t>)
    return "uint8";
  else if constexpr (std::is_same_v<T, int16_t>)
    return "int16";
  else if constexpr (std::is_same_v<T, uint16_t>)
    return "uint16";
  else if constexpr (std::is_same_v<T, int32_t>)
    return "int32";
  else if constexpr (std::is_same_v<T, uint32_t>)
    return "uint32";
  else if constexpr (std::is_same_v<T, int64_t>)
    return "int64";
  else if constexpr (std::is_same_v<T, uint64_t>)
    return "uint64";
  else
    return "string";
}
}  // namespace detail

}  // namespace latentkv
