// Rank allocation: how many latent channels each group of each key/value projection keeps, under
// an exact KV-cache memory budget (design §3.6).
//
// Units: the k_proj and the v_proj of every layer, in the order unit 2·l = k_proj of layer l,
// unit 2·l+1 = v_proj of layer l (Palu's module order). A unit has num_groups = num_kv_heads /
// group_size groups; a group's rank lies in [granule, group_size·head_dim] and is a multiple of
// the rank granule. A unit's capacity is num_kv_heads·head_dim.
//
// Budget: what one cached token costs over all layers, K and V, in bytes, exactly as the latent
// cache stores it: Σ over every group of latent_bytes_per_token(rank, quant), i.e. the packed codes
// plus the fp16 scale/zero of each quant group (latentkv/quant/latent_quant.h). The reference is
// the fp16 KV cache: 2 bytes · 2 (K and V) · num_kv_heads·head_dim · n_layers per token. A budget
// is a fraction of that (what users mean by "keep 50 % of the KV cache") or an absolute number of
// bytes per token. Every allocator returns ranks whose bytes per token never exceed the budget.
//
// Allocators:
//  - uniform: the same rank for every group, the largest multiple of the granule that fits.
//  - palu (Palu's "fisher_uniform", faithful): for a rank target T, unit i gets
//    min(capacity, ⌊T·F_i/ΣF⌋); the remaining ranks go one at a time to units in ascending order of
//    their fractional share (T·F_i/ΣF − assigned, as Palu's code sorts; stable, so ties go to the
//    earlier unit), skipping full units, in repeated passes; a unit's rank is split evenly over its
//    groups (⌊rank / num_groups⌋ each) and each group's rank rounded to the nearest multiple of the
//    granule (ties to even, as Python's round()), at least one granule. T is chosen as Palu's
//    T = ⌊ratio·Σcapacity⌋ for fp16 latents (ratio = the kept fraction), and for quantized
//    latents the largest T whose codes and metadata fit before rounding; if the rounded
//    allocation exceeds the budget, T is lowered one rank at a time until it fits. Deviations from
//    Palu's code: T is an integer (Palu keeps a fractional T, which makes its remainder loop
//    overshoot by up to one rank per unit) and the budget is enforced after rounding.
//  - greedy_error (ours): every group starts at one granule; then, repeatedly, the group whose
//    next granule of rank removes the most weighted error per added byte gets it, as long as it
//    fits. The error of a group at rank r is the whitened truncation error Σ_{i>=r} σ_i² of its
//    decomposition (design §3.2), weighted by its projection's (or group's) Fisher score, so the
//    allocator minimizes Σ F·(discarded σ²) — a Fisher-weighted output-error proxy for the loss
//    increase — instead of spreading ranks proportionally to F. A group whose next granule does
//    not fit stops growing while others may continue; granules that remove no error are never
//    allocated. For fp16 latents the per-granule costs are equal and σ² is non-increasing, so
//    this greedy is optimal for that objective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "latentkv/quant/latent_quant.h"

namespace latentkv {

/// Shape of the KV projections being allocated.
struct KvLayout {
  int n_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int group_size = 0;  ///< KV heads per group; must divide num_kv_heads

  int num_groups() const { return group_size > 0 ? num_kv_heads / group_size : 0; }
  int num_units() const { return 2 * n_layers; }
  /// Rank capacity of one unit (num_kv_heads·head_dim) and of one group (group_size·head_dim).
  int unit_capacity() const { return num_kv_heads * head_dim; }
  int group_capacity() const { return group_size * head_dim; }
  /// Bytes per token of the uncompressed fp16 K and V cache of all layers.
  int64_t fp16_bytes_per_token() const { return int64_t{4} * n_layers * num_kv_heads * head_dim; }
};

/// A KV-cache memory budget.
struct KvBudget {
  enum class Kind { kFraction, kBytesPerToken };
  Kind kind = Kind::kFraction;
  double value = 0.0;

  /// Keep this fraction (0, 1] of the fp16 KV cache bytes.
  static KvBudget fraction(double f) { return {Kind::kFraction, f}; }
  /// At most this many bytes per token over all layers, K and V (> 0).
  static KvBudget bytes_per_token(double bytes) { return {Kind::kBytesPerToken, bytes}; }

  /// The budget in whole bytes per token for `layout`: ⌊fraction·fp16 bytes⌋ or ⌊bytes⌋. Throws
  /// Error(kInvalidArgument) for a fraction outside (0, 1], bytes <= 0, or a non-finite value.
  int64_t resolve(const KvLayout& layout) const;
};

/// Everything an allocator needs besides its scores.
struct AllocationSpec {
  KvLayout layout;
  QuantConfig quant;  ///< how latents are stored (bits, quant_group); residual is not used
  int granule = 32;   ///< ranks are multiples of this (Palu: 32; head_dim 64 models: 16 or 8)
  KvBudget budget;

  /// Throws Error(kInvalidArgument) naming the first problem: non-positive dimensions,
  /// group_size not dividing num_kv_heads, granule < 1 or not dividing group_size·head_dim,
  /// unsupported bits, quant_group not dividing the granule, or a bad budget.
  void validate() const;
};

/// Ranks of every group of every unit and what they cost.
struct RankAllocation {
  KvLayout layout;
  std::string method;  ///< "uniform", "palu", "greedy_error"
  /// [num_units·num_groups] unit-major: ranks[u·num_groups + g].
  std::vector<int> ranks;
  int64_t bytes_per_token = 0;         ///< what these ranks cost, metadata included
  int64_t budget_bytes_per_token = 0;  ///< the resolved budget (bytes_per_token <= this)
  int64_t fp16_bytes_per_token = 0;    ///< the uncompressed reference
  /// palu: the rank target T that was used (see above); others: the total rank.
  int64_t rank_target = 0;

  int64_t total_rank() const;
  /// Group ranks of layer l's k_proj (value_proj = false) or v_proj.
  std::vector<int> unit_ranks(int layer, bool value_proj) const;
  /// bytes_per_token / fp16_bytes_per_token.
  double kept_fraction() const;
};

/// Bytes per token of `ranks` (one entry per group, any number of groups) stored with `quant`.
int64_t kv_bytes_per_token(const std::vector<int>& ranks, const QuantConfig& quant);

/// Same rank for every group. Throws Error(kInvalidArgument) for a bad spec or a budget below
/// the minimum (every group at one granule; the message gives both numbers).
RankAllocation allocate_uniform(const AllocationSpec& spec);

/// Palu's fisher_uniform allocation (see above). `unit_scores`: [num_units] Fisher scores in unit
/// order (FisherScores::unit_scores()), finite, >= 0, not all zero. Throws
/// Error(kInvalidArgument) for a bad spec, bad scores or a budget below the minimum.
RankAllocation allocate_palu(const AllocationSpec& spec, const std::vector<double>& unit_scores);

/// What greedy_error knows about one group of one unit.
struct GroupErrorProfile {
  /// Importance of the group's error (e.g. its projection's Fisher score); finite, >= 0.
  double weight = 0.0;
  /// drops[j] = error removed by growing the rank from j·granule to (j+1)·granule, for
  /// j = 0..group_capacity/granule - 1 (drops[0] is never used: one granule is the minimum).
  /// Finite and >= 0; see granule_error_drops().
  std::vector<double> drops;
};

/// Our greedy allocation (see above). `groups`: [num_units·num_groups] unit-major. Throws
/// Error(kInvalidArgument) for a bad spec, profiles of the wrong count or length, negative or
/// non-finite weights/drops, or a budget below the minimum.
RankAllocation allocate_greedy_error(const AllocationSpec& spec,
                                     const std::vector<GroupErrorProfile>& groups);

/// Error drops per granule from a group's singular values (descending, as the decomposition
/// returns them; fewer than group_capacity values are padded with zeros): drops[j] =
/// Σ_{i in [j·granule, (j+1)·granule)} σ_i². Throws Error(kInvalidArgument) for a granule that
/// does not divide group_capacity, more values than group_capacity, or a negative/non-finite σ.
std::vector<double> granule_error_drops(const std::vector<double>& singular_values,
                                        int group_capacity, int granule);

}  // namespace latentkv
