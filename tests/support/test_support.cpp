#include "support/test_support.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#ifdef LATENTKV_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace latentkv::testing {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == "1";
}

std::string default_model_path() {
  if (const char* p = std::getenv("LATENTKV_MODEL")) return p;
  return std::string(LATENTKV_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::string wikitext_dir() {
  if (const char* p = std::getenv("LATENTKV_DATA_DIR")) return p;
  return std::string(LATENTKV_SOURCE_DIR) + "/../shared/data/wikitext-2";
}

std::string temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string dir =
      std::string(base ? base : "/tmp") + "/latentkv-test-" + std::to_string(getpid());
  mkdir(dir.c_str(), 0755);
  return dir;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool gpu_available() {
#ifdef LATENTKV_WITH_CUDA
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
#else
  return false;
#endif
}

double rel_err(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace latentkv::testing
