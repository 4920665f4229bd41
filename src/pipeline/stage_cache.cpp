#include "latentkv/pipeline/stage_cache.h"

#include <filesystem>

#include "latentkv/pipeline/cache_dir.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

std::string entry_key(const char* kind, const std::string& model_key, const std::string& data_key) {
  return str_cat(kind, "\nmodel ", model_key, "\ndata ", data_key);
}

std::string fisher_path(const std::string& dir, const std::string& key, FisherReduction reduction) {
  return cache_file_path(dir, key, str_cat(".fisher-", fisher_reduction_name(reduction), ".txt"));
}

}  // namespace

CalibStats cached_calib_stats(const std::string& dir, const std::string& model_key,
                              const std::string& data_key,
                              const std::function<CalibStats()>& compute, CacheOutcome* outcome) {
  CacheOutcome local;
  CacheOutcome& out = outcome ? *outcome : local;
  out = {};
  if (dir.empty()) return compute();
  ensure_directory(dir);  // before the computation, so that a bad directory fails fast
  out.path = cache_file_path(dir, entry_key("gram", model_key, data_key), ".gram");
  if (exists(out.path)) {
    try {
      CalibStats s = CalibStats::load(out.path);
      if (s.model_key == model_key && s.data_key == data_key) {
        out.hit = true;
        return s;
      }
      out.note = str_cat(out.path, " holds statistics of other data; recomputing");
    } catch (const Error& e) {
      out.note = str_cat("ignoring cache file: ", e.what());
    }
  }
  CalibStats s = compute();
  s.model_key = model_key;
  s.data_key = data_key;
  s.save(out.path);
  return s;
}

FisherScores cached_fisher_scores(const std::string& dir, const std::string& model_key,
                                  const std::string& data_key, FisherReduction reduction,
                                  const std::function<FisherAccumulator()>& compute,
                                  CacheOutcome* outcome) {
  CacheOutcome local;
  CacheOutcome& out = outcome ? *outcome : local;
  out = {};
  if (dir.empty()) return compute().scores(reduction, model_key);
  ensure_directory(dir);
  const std::string key = entry_key("fisher", model_key, data_key);
  out.path = fisher_path(dir, key, reduction);
  if (exists(out.path)) {
    try {
      FisherScores s = load_fisher_scores(out.path);
      s.validate();
      if (s.model_id == model_key) {
        out.hit = true;
        return s;
      }
      out.note = str_cat(out.path, " holds scores of another model; recomputing");
    } catch (const Error& e) {
      out.note = str_cat("ignoring cache file: ", e.what());
    }
  }
  const FisherAccumulator acc = compute();
  for (FisherReduction r : {FisherReduction::kMeanSquare, FisherReduction::kRms})
    save_fisher_scores(acc.scores(r, model_key), fisher_path(dir, key, r));
  return acc.scores(reduction, model_key);
}

}  // namespace latentkv
