// A tiny random Llama model with calibration statistics and Fisher scores, for the pipeline tests.
#pragma once

#include <vector>

#include "latentkv/fisher/fisher_calibration.h"
#include "latentkv/pipeline/calibration.h"
#include "latentkv/pipeline/compress_model.h"
#include "model/tiny_llama.h"

namespace latentkv::testing {

/// 2 layers, d_model 48, 4 query / 2 (or num_kv_heads) KV heads of 16, so that a granule of 8
/// leaves room for unequal ranks; statistics over 4 windows of 40 tokens (160 > d_model: Γ is
/// well conditioned).
struct TinyPipeline {
  LlamaWeights weights;
  std::vector<std::vector<TokenId>> windows;
  CalibStats stats;
  FisherScores fisher;

  TinyPipeline(int num_kv_heads = 2) {
    TinyLlamaSpec spec;
    spec.head_dim = 16;
    spec.num_kv_heads = num_kv_heads;
    weights = make_tiny_llama(spec, 7);
    for (unsigned w = 0; w < 4; ++w) windows.push_back(random_tokens(40, spec.vocab_size, 100 + w));
    stats = collect_calib_stats(weights, windows);
    fisher = accumulate_fisher(weights, windows).scores(FisherReduction::kMeanSquare, "tiny");
  }

  /// Inputs for compress_model() (the sequential windows are the calibration windows).
  CompressInputs inputs() const {
    CompressInputs in;
    in.weights = &weights;
    in.base_sha256 = "tiny";
    in.stats = &stats;
    in.fisher = &fisher;
    in.sequential_windows = windows;
    return in;
  }

  /// The options of `preset` with a granule of 8 for head_dim 16.
  static CompressOptions options(const std::string& preset, double budget, int bits = 16) {
    CompressOptions o = preset_options(preset);
    o.granule = 8;
    o.budget = {BudgetSpec::Kind::kBytesFraction, budget};
    o.quant.bits = bits;
    o.quant.residual = 4;
    return o;
  }
};

}  // namespace latentkv::testing
