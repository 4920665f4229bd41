// On-disk caching of calibration statistics and Fisher scores: miss, hit, other keys, corrupted
// entries, disabled caching, and the cache directory resolution.
#include "latentkv/pipeline/stage_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "latentkv/pipeline/cache_dir.h"
#include "model/tiny_llama.h"
#include "support/expect_error.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

CalibStats small_stats(double scale) {
  CalibStats s = CalibStats::empty(2, 3);
  for (auto& l : s.layers) l = LayerGram::from_gram(Eigen::MatrixXd::Identity(3, 3) * scale, 7);
  return s;
}

std::string fresh_dir(const std::string& name) { return testing::temp_dir() + "/cache-" + name; }

TEST(StageCache, CalibStatsMissThenHit) {
  const std::string dir = fresh_dir("gram");
  int computed = 0;
  auto compute = [&] {
    ++computed;
    return small_stats(2.0);
  };
  CacheOutcome out;
  const CalibStats a = cached_calib_stats(dir, "model-1", "data-1", compute, &out);
  EXPECT_FALSE(out.hit);
  EXPECT_TRUE(testing::file_exists(out.path));
  const CalibStats b = cached_calib_stats(dir, "model-1", "data-1", compute, &out);
  EXPECT_TRUE(out.hit);
  EXPECT_EQ(computed, 1);
  EXPECT_EQ(b.layers[1].gram(), a.layers[1].gram());
  EXPECT_EQ(b.model_key, "model-1");
  // Another model or other data is another entry.
  cached_calib_stats(dir, "model-2", "data-1", compute, &out);
  EXPECT_FALSE(out.hit);
  cached_calib_stats(dir, "model-1", "data-2", compute, &out);
  EXPECT_FALSE(out.hit);
  EXPECT_EQ(computed, 3);
}

TEST(StageCache, CorruptedEntryIsRecomputedWithANote) {
  const std::string dir = fresh_dir("corrupt");
  int computed = 0;
  auto compute = [&] {
    ++computed;
    return small_stats(1.0);
  };
  CacheOutcome out;
  cached_calib_stats(dir, "m", "d", compute, &out);
  std::ofstream(out.path, std::ios::binary | std::ios::trunc) << "garbage";
  cached_calib_stats(dir, "m", "d", compute, &out);
  EXPECT_FALSE(out.hit);
  EXPECT_NE(out.note.find("ignoring cache file"), std::string::npos) << out.note;
  cached_calib_stats(dir, "m", "d", compute, &out);
  EXPECT_TRUE(out.hit);  // rewritten
  EXPECT_EQ(computed, 2);
}

TEST(StageCache, EmptyDirectoryDisablesCaching) {
  int computed = 0;
  CacheOutcome out;
  for (int i = 0; i < 2; ++i)
    cached_calib_stats(
        "", "m", "d",
        [&] {
          ++computed;
          return small_stats(1.0);
        },
        &out);
  EXPECT_EQ(computed, 2);
  EXPECT_TRUE(out.path.empty());
}

TEST(StageCache, UnwritableDirectoryFailsBeforeComputing) {
  const std::string file = testing::temp_dir() + "/a-file";
  std::ofstream(file) << "x";
  int computed = 0;
  EXPECT_LKV_ERROR(cached_calib_stats(
                       file + "/sub", "m", "d",
                       [&] {
                         ++computed;
                         return small_stats(1.0);
                       },
                       nullptr),
                   StatusCode::kIoError, "cache directory");
  EXPECT_EQ(computed, 0);
}

TEST(StageCache, FisherStoresBothReductions) {
  testing::TinyLlamaSpec spec;
  const LlamaWeights w = testing::make_tiny_llama(spec, 3);
  const std::string dir = fresh_dir("fisher");
  int computed = 0;
  auto compute = [&] {
    ++computed;
    FisherAccumulator acc(w.config);
    acc.add(llama_kv_projection_gradients<float>(w, testing::random_tokens(12, 61, 1)));
    return acc;
  };
  CacheOutcome out;
  const FisherScores ms =
      cached_fisher_scores(dir, "m", "d", FisherReduction::kMeanSquare, compute, &out);
  EXPECT_FALSE(out.hit);
  const FisherScores rms =
      cached_fisher_scores(dir, "m", "d", FisherReduction::kRms, compute, &out);
  EXPECT_TRUE(out.hit);
  EXPECT_EQ(computed, 1);
  EXPECT_EQ(rms.reduction, FisherReduction::kRms);
  EXPECT_EQ(ms.model_id, "m");
  EXPECT_NE(rms.key, ms.key);
}

// Sets or (value nullptr) unsets an environment variable for the scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { had_ ? setenv(name_, old_.c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(CacheDir, EnvironmentOrder) {
  {
    ScopedEnv a("LATENTKV_CACHE_DIR", "/x/lkv"), b("XDG_CACHE_HOME", "/y");
    EXPECT_EQ(cache_dir(), "/x/lkv");
  }
  {
    ScopedEnv a("LATENTKV_CACHE_DIR", nullptr), b("XDG_CACHE_HOME", "/y");
    EXPECT_EQ(cache_dir(), "/y/latentkv");
  }
  {
    ScopedEnv a("LATENTKV_CACHE_DIR", nullptr), b("XDG_CACHE_HOME", nullptr), c("HOME", "/h");
    EXPECT_EQ(cache_dir(), "/h/.cache/latentkv");
  }
  EXPECT_EQ(cache_file_path("/d", "k", ".gram").substr(0, 3), "/d/");
  EXPECT_NE(cache_file_path("/d", "k1", ""), cache_file_path("/d", "k2", ""));
}

}  // namespace
}  // namespace latentkv
