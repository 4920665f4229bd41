// Rank allocation as the compression pipeline runs it: the budget of CompressOptions turned into an
// AllocationSpec, and the chosen allocator fed with Fisher scores and/or the whitened spectra of
// every group (compress/rank_allocation.h has the allocators themselves).
#pragma once

#include <vector>

#include "latentkv/compress/calib_stats.h"
#include "latentkv/compress/rank_allocation.h"
#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/pipeline/compress_options.h"

namespace latentkv {

/// The AllocationSpec for `options` on a model with `layout`: the budget kinds map to
///   kBytesFraction -> KvBudget::fraction with the options' quantization (metadata counted),
///   kBytesPerToken -> KvBudget::bytes_per_token with the options' quantization,
///   kRankFraction  -> KvBudget::fraction with fp16 latents (Palu's convention: the ranks keep
///                     this fraction of the full rank; storing them with fewer bits is extra).
/// Throws Error(kInvalidArgument) for an invalid spec (AllocationSpec::validate()).
AllocationSpec allocation_spec(const CompressOptions& options, const KvLayout& layout);

/// What the allocators may read. `spectra[u·num_groups + g]` holds the singular values of group g
/// of unit u (unit 2·l = k_proj, 2·l+1 = v_proj of layer l), descending, as the whitened
/// decomposition computes them; `group_heads[u]` the KV heads of unit u's groups (group g, slot s
/// at g·group_size + s). `fisher` may be null when the options do not need it.
struct AllocationInputs {
  std::vector<std::vector<double>> spectra;
  std::vector<std::vector<int>> group_heads;
  const FisherScores* fisher = nullptr;
  const CalibStats* stats = nullptr;  ///< for ErrorWeight::kFisherPerInput
};

/// The weight of each group's truncation error in greedy_error ([num_units·num_groups]):
///   kFisher          the group's Fisher score (the mean of its KV heads' scores when per-head
///                    scores exist, else the projection's score);
///   kFisherPerInput  that score divided by the mean squared input of the layer,
///                    tr(Γ)/(tokens·d_model): a weight gradient is the outer product of the output
///                    gradient and the input, so this estimates E[(dL/dy)²], the factor that turns
///                    an output error into a loss increase;
///   kNone            1.
/// Throws Error(kInvalidArgument) when scores or statistics are missing or do not fit.
std::vector<double> group_error_weights(const CompressOptions& options, const KvLayout& layout,
                                        const AllocationInputs& inputs);

/// Runs the allocator of `options` (uniform, palu or greedy_error) under allocation_spec().
/// Throws Error(kInvalidArgument) for missing inputs or a budget below the minimum allocation.
RankAllocation allocate_ranks(const CompressOptions& options, const KvLayout& layout,
                              const AllocationInputs& inputs);

}  // namespace latentkv
