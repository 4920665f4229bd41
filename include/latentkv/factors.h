// Low-rank factors of a key or value projection: the contract between the decomposition, the
// latent cache, the compressed model file and the kernels (design §2, §3.2–§3.4).
//
// A projection W ([num_kv_heads*head_dim, d_model], row-major like nn.Linear) is split into
// num_groups = num_kv_heads / group_size groups of KV heads. Group g holds the KV heads
// group_heads[g*group_size + s] for slots s = 0..group_size-1 (consecutive heads by default; any
// permutation after similarity grouping, so nothing is permuted at run time). For each group
//   W_g  ≈  B_g · A_g,     W_g = rows of W for the group's heads, in slot order,
//   A_g: [rank_g, d_model] (down-projection to the latent),
//   B_g: [group_size*head_dim, rank_g] (up-projection; rows in slot order, head_dim per slot).
// All A_g are stacked into one [total_rank, d_model] matrix so that the latents of a token are
// one GEMM: h = x · Aᵀ. Storage is plain float (fp32) so that engine-facing code needs no Eigen.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "latentkv/status.h"

namespace latentkv {

/// Factors of one projection (keys or values) of one layer.
struct ProjectionFactors {
  int d_model = 0;
  int head_dim = 0;
  int num_kv_heads = 0;
  int group_size = 0;
  /// Rank of each group, [num_groups].
  std::vector<int> ranks;
  /// KV head at (group g, slot s) = group_heads[g*group_size + s]; a permutation of 0..heads-1.
  std::vector<int> group_heads;
  /// Stacked down-projections, [total_rank, d_model] row-major, group 0 first.
  std::vector<float> a;
  /// Up-projections, group after group; group g is [group_size*head_dim, ranks[g]] row-major.
  std::vector<float> b;
  /// Projection bias in original head order, [num_kv_heads*head_dim], or empty (Llama: none).
  std::vector<float> bias;
  /// Size of the orthonormal rotation folded into A/B per group (0 = none). Informational:
  /// B·A is unchanged by the fold.
  int rotation = 0;

  int num_groups() const { return group_size > 0 ? num_kv_heads / group_size : 0; }
  int total_rank() const { return std::accumulate(ranks.begin(), ranks.end(), 0); }
  /// First row of group g inside `a` (= first latent channel of group g).
  int rank_offset(int g) const {
    return std::accumulate(ranks.begin(), ranks.begin() + g, 0);
  }
  /// Offset of B_g inside `b`, in elements.
  int64_t b_offset(int g) const {
    return static_cast<int64_t>(group_size) * head_dim * rank_offset(g);
  }
  /// Whether every group has the same rank (what the fused kernels need).
  bool uniform_rank() const {
    for (int r : ranks)
      if (r != ranks.front()) return false;
    return !ranks.empty();
  }

  /// Throws Error(kInvalidArgument) naming the first inconsistency.
  void validate() const {
    LKV_CHECK_ARG(d_model > 0 && head_dim > 0 && num_kv_heads > 0,
                  "factors: d_model, head_dim and num_kv_heads must be positive");
    LKV_CHECK_ARG(group_size > 0 && num_kv_heads % group_size == 0, "factors: group_size ",
                  group_size, " does not divide num_kv_heads ", num_kv_heads);
    LKV_CHECK_ARG(static_cast<int>(ranks.size()) == num_groups(), "factors: ", ranks.size(),
                  " ranks for ", num_groups(), " groups");
    for (int r : ranks)
      LKV_CHECK_ARG(r >= 1 && r <= group_size * head_dim, "factors: rank ", r,
                    " outside [1, group_size*head_dim = ", group_size * head_dim, "]");
    LKV_CHECK_ARG(static_cast<int>(group_heads.size()) == num_kv_heads,
                  "factors: group_heads has ", group_heads.size(), " entries, expected ",
                  num_kv_heads);
    std::vector<bool> seen(num_kv_heads, false);
    for (int h : group_heads) {
      LKV_CHECK_ARG(h >= 0 && h < num_kv_heads && !seen[h],
                    "factors: group_heads is not a permutation of the KV heads");
      seen[h] = true;
    }
    const int64_t r = total_rank();
    LKV_CHECK_ARG(static_cast<int64_t>(a.size()) == r * d_model, "factors: A has ", a.size(),
                  " elements, expected ", r * d_model);
    LKV_CHECK_ARG(static_cast<int64_t>(b.size()) == r * group_size * head_dim, "factors: B has ",
                  b.size(), " elements, expected ", r * group_size * head_dim);
    LKV_CHECK_ARG(bias.empty() || static_cast<int64_t>(bias.size()) == int64_t{num_kv_heads} * head_dim,
                  "factors: bias has ", bias.size(), " elements");
  }
};

/// The consecutive grouping 0,1,2,... (Palu's G-LRD).
inline std::vector<int> consecutive_group_heads(int num_kv_heads) {
  std::vector<int> heads(num_kv_heads);
  std::iota(heads.begin(), heads.end(), 0);
  return heads;
}

}  // namespace latentkv
