// Head-similarity-aware grouping of KV heads for the key projection (design §3.4, ReCalKV HSR).
//
// Similarity of KV heads i and j is the linear CKA of their whitened key weights: with
// X_i = (W_{k,i} L)ᵀ ([d_model, head_dim]) centred over its rows,
//   CKA(i, j) = ‖X_iᵀ X_j‖²_F / (‖X_iᵀ X_i‖_F ‖X_jᵀ X_j‖_F)   (only head_dim × head_dim products).
// A partition into equal-size groups is scored by its total within-group similarity,
// Σ_groups Σ_{pairs i<j in the group} CKA(i, j). The result is a group_heads permutation in the
// ProjectionFactors convention (group g, slot s -> KV head), canonical: slots ascending within a
// group, groups ordered by their first head, so that the consecutive grouping is the identity.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "latentkv/compress/whitened_svd.h"
#include "latentkv/model/llama.h"

namespace latentkv {

/// CKA matrix of the KV heads of W_k ([num_kv_heads·head_dim, d_model]) after whitening with
/// `whitening` (nullptr: plain weights). Symmetric [num_kv_heads, num_kv_heads], ones on the
/// diagonal, entries in [0, 1]; a head whose centred weights are all zero has similarity 0 to the
/// others. Throws Error(kInvalidArgument) on a shape mismatch.
Eigen::MatrixXd head_similarity_cka(const MatrixRM& w_k, int num_kv_heads, int head_dim,
                                    const Whitening* whitening);

/// Σ over groups of the within-group pairwise similarity of `group_heads` (groups of group_size
/// consecutive entries).
double grouping_objective(const Eigen::MatrixXd& similarity, const std::vector<int>& group_heads,
                          int group_size);

/// Greedy pair merging: start a group from the most similar pair of unassigned heads, grow it by
/// the unassigned head with the largest summed similarity to its members, repeat.
std::vector<int> group_heads_greedy(const Eigen::MatrixXd& similarity, int group_size);

struct GroupingSearchOptions {
  /// Enumerate every partition when there are at most this many, otherwise refine by swaps.
  /// Enumeration costs ~0.1 µs per partition (bench/head_grouping_bench: 16 heads in groups of 4,
  /// 2.6 M partitions, 0.28 s), so 2e5 keeps it near 20 ms: every grouping of ≤ 12 heads and 16
  /// heads in groups of 8 are exact.
  double max_exhaustive = 2e5;
};

/// Partition search that is never worse than greedy: exhaustive enumeration when the number of
/// partitions is small, otherwise best-improvement swap refinement (exchange two heads of
/// different groups while that raises the objective) started from the better of the greedy and
/// consecutive groupings.
std::vector<int> group_heads_search(const Eigen::MatrixXd& similarity, int group_size,
                                    const GroupingSearchOptions& options = {});

/// How KV heads are grouped.
enum class GroupingMethod {
  kConsecutive,  ///< 0,1,2,... (Palu G-LRD)
  kGreedy,       ///< group_heads_greedy on the CKA matrix
  kSearch,       ///< group_heads_search on the CKA matrix
  /// Of consecutive, greedy and search, the grouping with the lowest whitened truncation error at
  /// the given rank (the default). CKA is only a proxy: bench/head_grouping_bench shows a higher
  /// objective occasionally giving a slightly higher error, so the candidates are scored on the
  /// quantity that matters.
  kBestError,
};

/// Relative whitened truncation error √(Σ discarded σ² / Σ σ²) of W ([num_kv_heads·head_dim,
/// d_model]) grouped by `group_heads` with `rank` per group. Only singular values are needed, from
/// the eigenvalues of W_g Γ W_gᵀ ([group_size·head_dim]²), so this is much cheaper than a
/// decomposition. Throws Error(kInvalidArgument) on inconsistent input.
double grouped_truncation_error(const MatrixRM& w, int num_kv_heads, int head_dim, int group_size,
                                const std::vector<int>& group_heads, int rank,
                                const Whitening* whitening);

/// The group_heads for W_k under `method` (computes the CKA matrix unless kConsecutive). `rank`
/// (per group) is used by kBestError only and must then be in [1, group_size·head_dim]. Throws
/// Error(kInvalidArgument) when group_size does not divide num_kv_heads or shapes mismatch.
std::vector<int> similarity_group_heads(const MatrixRM& w_k, int num_kv_heads, int head_dim,
                                        int group_size, const Whitening* whitening,
                                        GroupingMethod method = GroupingMethod::kBestError,
                                        int rank = 0);

/// Number of partitions of n heads into groups of group_size (as a double; it overflows fast).
double count_partitions(int num_heads, int group_size);

}  // namespace latentkv
