// Minimal JSON object writer for the CLIs' --json line (flat objects, nested arrays of objects).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace latentkv::cli {

/// Builds one JSON object in insertion order: {"ppl": 12.5, "ctx": 512}.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, int64_t value);
  JsonObject& add(const std::string& key, int value) { return add(key, int64_t{value}); }
  JsonObject& add(const std::string& key, bool value);
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonObject& add(const std::string& key, const JsonObject& value);
  JsonObject& add(const std::string& key, const std::vector<JsonObject>& values);
  JsonObject& add(const std::string& key, const std::vector<double>& values);
  std::string str() const;

 private:
  JsonObject& add_raw(const std::string& key, const std::string& raw);
  std::vector<std::pair<std::string, std::string>> fields_;
};

/// JSON string literal with escapes.
std::string json_quote(const std::string& s);

}  // namespace latentkv::cli
