#include "latentkv/pipeline/cache_dir.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "latentkv/hash.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

const char* non_empty_env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? v : nullptr;
}

}  // namespace

std::string cache_dir() {
  if (const char* d = non_empty_env("LATENTKV_CACHE_DIR")) return d;
  if (const char* d = non_empty_env("XDG_CACHE_HOME")) return std::string(d) + "/latentkv";
  if (const char* d = non_empty_env("HOME")) return std::string(d) + "/.cache/latentkv";
  LKV_THROW(StatusCode::kNotFound,
            "no cache directory: set LATENTKV_CACHE_DIR (or XDG_CACHE_HOME or HOME)");
}

void ensure_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    LKV_THROW(StatusCode::kIoError, "cannot create cache directory ", dir, ": ", ec.message());
  if (!fs::is_directory(dir, ec))
    LKV_THROW(StatusCode::kIoError, "cache path ", dir, " exists but is not a directory");
}

std::string cache_file_path(const std::string& dir, const std::string& key,
                            const std::string& suffix) {
  return dir + "/" + sha256_hex(key.data(), key.size()) + suffix;
}

}  // namespace latentkv
