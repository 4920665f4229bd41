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
#include <utility>
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
  /// Size of the orthonormal rotation folded into A/B per group (0 = none; −1 = rotated, each
  /// group by a rotation of its own rank, when ranks differ). Informational: B·A is unchanged by
  /// the fold.
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
  /// (group, slot) of KV head `kv_head`, from group_heads. Throws Error(kInvalidArgument) when the
  /// head is not in group_heads.
  std::pair<int, int> head_location(int kv_head) const {
    for (size_t i = 0; i < group_heads.size(); ++i)
      if (group_heads[i] == kv_head)
        return {static_cast<int>(i) / group_size, static_cast<int>(i) % group_size};
    LKV_THROW(StatusCode::kInvalidArgument, "factors: KV head ", kv_head, " is not in group_heads");
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

/// The output projection with the value up-projection folded in (design §3.8).
///
/// Query head h reads KV head h / gqa_ratio, which sits in value group g(h) at slot j(h). With
/// z_h = Σ_t p_{h,t} h_{v,g(h),t} (the attention-weighted value latent of width ranks[g(h)]),
///   out = Σ_h W'_{o,h} z_h + bias,   W'_{o,h} = W_{o,h} B_{v,g(h)}[j(h)]  ([d_model, ranks[g(h)]]),
/// so value latents are never up-projected. The v_proj bias is folded into `bias` (attention
/// probabilities sum to 1).
struct FoldedOutputProjection {
  int d_model = 0;
  int num_qo_heads = 0;
  /// First column of query head h in `w`, [num_qo_heads + 1]; the last entry is the width.
  std::vector<int> head_offsets;
  /// W' = [W'_{o,0} | W'_{o,1} | ...], [d_model, head_offsets.back()] row-major.
  std::vector<float> w;
  /// [d_model]: o_proj bias + W_o·bias_v; empty when the layer has neither bias.
  std::vector<float> bias;

  int width() const { return head_offsets.empty() ? 0 : head_offsets.back(); }
};

/// The consecutive grouping 0,1,2,... (Palu's G-LRD).
inline std::vector<int> consecutive_group_heads(int num_kv_heads) {
  std::vector<int> heads(num_kv_heads);
  std::iota(heads.begin(), heads.end(), 0);
  return heads;
}

}  // namespace latentkv
