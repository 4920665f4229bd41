// On-disk caching of the two expensive, input-determined stages of the compression pipeline:
// calibration statistics (a forward pass over the calibration windows) and Fisher scores (a
// forward and backward pass). An entry is keyed by the model's identity (SHA-256 of the GGUF) and
// the data's (SHA-256 of the text plus the window settings); see cache_dir.h for the directory.
#pragma once

#include <functional>
#include <string>

#include "latentkv/compress/calib_stats.h"
#include "latentkv/fisher/fisher_scores.h"

namespace latentkv {

/// What a cached stage did.
struct CacheOutcome {
  bool hit = false;  ///< loaded from the cache: the computation was skipped
  std::string path;  ///< the cache file; empty when caching is off
  /// Why an existing cache file was not used (corrupted, other keys, newer format) and was
  /// replaced; empty otherwise.
  std::string note;
};

/// Statistics identified by (model_key, data_key): read from `dir` when it holds a valid entry with
/// these keys, otherwise `compute()`d, given the keys, and stored there. An unusable entry is
/// recomputed and overwritten (outcome->note says why). `dir` empty disables caching. Throws what
/// compute() throws, and Error(kIoError) when the directory or the file cannot be written.
CalibStats cached_calib_stats(const std::string& dir, const std::string& model_key,
                              const std::string& data_key,
                              const std::function<CalibStats()>& compute, CacheOutcome* outcome);

/// Fisher scores with `reduction`, identified by (model_key, data_key), cached like the above.
/// compute() returns the accumulated squared gradients; the scores of both reductions are stored,
/// so that a later run asking for the other one hits the cache too.
FisherScores cached_fisher_scores(const std::string& dir, const std::string& model_key,
                                  const std::string& data_key, FisherReduction reduction,
                                  const std::function<FisherAccumulator()>& compute,
                                  CacheOutcome* outcome);

}  // namespace latentkv
