// Building blocks shared by the CPU reference caches (internal to src/cache): RoPE tables and a
// causal multi-head softmax attention over per-head key/value row views.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "latentkv/model/llama.h"

namespace latentkv::detail {

/// Smallest amount of work (multiply-adds or element updates) worth an OpenMP region: below it,
/// starting and joining a thread team costs more than it saves, badly so on a loaded machine.
inline constexpr int64_t kParallelWork = int64_t{1} << 16;

/// cos/sin (double, as apply_rope() in rope.h) of every frequency at a list of positions.
struct RopeAngles {
  int half = 0;
  std::vector<double> cos, sin;  // [tokens][half]

  /// Appends the angles of `positions`.
  void append(const std::vector<int64_t>& positions, const std::vector<double>& inv_freq);
  void clear() { cos.clear(), sin.clear(); }
  /// Rotates `heads` consecutive heads of width 2·half at `row` with the angles of token t.
  void rotate(float* row, int heads, int64_t t) const;
};

/// Row t of a row-major operand lives at data + t * stride; `cols` contiguous floats per row.
struct RowsView {
  const float* data = nullptr;
  int64_t stride = 0;
  int64_t cols = 0;
};

/// For every query head h: out[:, out_col[h] .. + values[h].cols) = softmax(q_h · keys[h]ᵀ) ·
/// values[h], where q_h = q[:, h·head_dim .. + head_dim) (RoPE applied, already scaled by
/// 1/sqrt(head_dim)) and query row i sees the first visible[i] >= 1 tokens. Softmax is the
/// max-subtracted form in fp32 with the normalizer summed in double. Parallel (OpenMP) over
/// (query head, block of query rows); `scratch` holds one score buffer per thread.
void causal_attention(const MatrixRM& q, int head_dim, const std::vector<RowsView>& keys,
                      const std::vector<RowsView>& values, const std::vector<int64_t>& out_col,
                      const std::vector<int64_t>& visible, MatrixRM& out,
                      std::vector<std::vector<float>>& scratch);

/// y[n, out] = x[n, in]·Wᵀ: the forward pass's linear() (which splits decode-sized products over
/// threads), or a single-threaded product when the whole product is below kParallelWork.
void project(const Eigen::Ref<const MatrixRM>& x, const MatrixRM& w, Eigen::Ref<MatrixRM> y);

/// Throws Error(kNumericalError) naming the first non-finite entry of x ([n, d_model] hidden
/// states of a chunk); `what` names the caller in the message.
void check_finite_rows(const Eigen::Ref<const MatrixRM>& x, const char* what);

/// Throws Error(kInvalidArgument) unless positions are >= 0, strictly increasing and greater
/// than `last` (the newest cached position, or -1 when empty).
void check_new_positions(const std::vector<int64_t>& positions, int64_t last);

/// For queries x ([n, d_model]) at non-decreasing `positions`, the number of cached tokens each
/// may see: those at a position <= its own (`cached` is the sorted positions of the cache).
/// Throws Error(kInvalidArgument), messages prefixed by `what`, on a bad shape, an empty cache,
/// decreasing positions, a query before every cached token, or a non-finite input.
std::vector<int64_t> query_visibility(const Eigen::Ref<const MatrixRM>& x, int d_model,
                                      const std::vector<int64_t>& positions,
                                      const std::vector<int64_t>& cached, const char* what);

}  // namespace latentkv::detail
