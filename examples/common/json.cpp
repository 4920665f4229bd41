#include "common/json.h"

#include <cmath>
#include <cstdio>

namespace latentkv::cli {

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

static std::string number(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN/Inf
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

JsonObject& JsonObject::add_raw(const std::string& key, const std::string& raw) {
  fields_.emplace_back(key, raw);
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, double value) {
  return add_raw(key, number(value));
}
JsonObject& JsonObject::add(const std::string& key, int64_t value) {
  return add_raw(key, std::to_string(value));
}
JsonObject& JsonObject::add(const std::string& key, bool value) {
  return add_raw(key, value ? "true" : "false");
}
JsonObject& JsonObject::add(const std::string& key, const std::string& value) {
  return add_raw(key, json_quote(value));
}
JsonObject& JsonObject::add(const std::string& key, const JsonObject& value) {
  return add_raw(key, value.str());
}
JsonObject& JsonObject::add(const std::string& key, const std::vector<JsonObject>& values) {
  std::string raw = "[";
  for (size_t i = 0; i < values.size(); ++i) raw += (i ? "," : "") + values[i].str();
  return add_raw(key, raw + "]");
}
JsonObject& JsonObject::add(const std::string& key, const std::vector<double>& values) {
  std::string raw = "[";
  for (size_t i = 0; i < values.size(); ++i) raw += (i ? "," : "") + number(values[i]);
  return add_raw(key, raw + "]");
}

std::string JsonObject::str() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) out += ", ";
    out += json_quote(fields_[i].first) + ": " + fields_[i].second;
  }
  return out + "}";
}

}  // namespace latentkv::cli
