// Shared helpers for latentkv tests: locating the real model and data, GPU detection.
//
// Tests that need the default model or WikiText-2 skip when they are absent, unless
// LATENTKV_REQUIRE_MODEL=1 / LATENTKV_REQUIRE_DATA=1 (set by scripts/test.sh after setup), in
// which case absence is a failure: a test that silently skips on CI would prove nothing.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace latentkv::testing {

/// $LATENTKV_MODEL, else <source>/models/SmolLM2-135M-Instruct.Q4_1.gguf.
std::string default_model_path();
/// $LATENTKV_DATA_DIR, else <source>/../shared/data/wikitext-2.
std::string wikitext_dir();
/// Directory for files a test writes (created on demand, unique per process).
std::string temp_dir();
bool file_exists(const std::string& path);
bool env_flag(const char* name);
/// True when a CUDA device is usable from this process.
bool gpu_available();
/// Relative L2 error ‖a − ref‖ / ‖ref‖ (0/0 counts as 0).
double rel_err(const std::vector<double>& a, const std::vector<double>& ref);

}  // namespace latentkv::testing

/// Skips (or fails under LATENTKV_REQUIRE_MODEL=1) when the default model is missing.
#define LKV_REQUIRE_MODEL()                                                             \
  do {                                                                                  \
    if (!::latentkv::testing::file_exists(::latentkv::testing::default_model_path())) { \
      if (::latentkv::testing::env_flag("LATENTKV_REQUIRE_MODEL"))                      \
        FAIL() << "model missing: " << ::latentkv::testing::default_model_path()        \
               << " (run scripts/setup.sh)";                                            \
      GTEST_SKIP() << "model missing (run scripts/setup.sh)";                           \
    }                                                                                   \
  } while (0)

/// Skips (or fails under LATENTKV_REQUIRE_DATA=1) when WikiText-2 is missing.
#define LKV_REQUIRE_DATA()                                                                      \
  do {                                                                                          \
    if (!::latentkv::testing::file_exists(::latentkv::testing::wikitext_dir() + "/test.txt")) { \
      if (::latentkv::testing::env_flag("LATENTKV_REQUIRE_DATA"))                               \
        FAIL() << "WikiText-2 missing under " << ::latentkv::testing::wikitext_dir();           \
      GTEST_SKIP() << "WikiText-2 missing under " << ::latentkv::testing::wikitext_dir();       \
    }                                                                                           \
  } while (0)

/// Skips when no CUDA device is present (GPU tests must pass or skip on CPU-only CI).
#define LKV_REQUIRE_GPU()                                                \
  do {                                                                   \
    if (!::latentkv::testing::gpu_available()) GTEST_SKIP() << "no GPU"; \
  } while (0)
