// Dense building blocks of the CPU forward pass (internal to src/model).
#pragma once

#include <Eigen/Core>

#include "latentkv/model/llama.h"

namespace latentkv::detail {

/// Below this many multiply-adds a parallel region costs more than it saves (fork/join is
/// microseconds, and on a busy machine a descheduled worker stalls the whole region).
constexpr int64_t kMinParallelWork = int64_t{1} << 16;

/// Whether `work` multiply-adds deserve an OpenMP parallel region here (never when nested).
bool worth_threads(int64_t work);

/// y[n, out] = x[n, in] · Wᵀ (W: [out, in], row-major like nn.Linear), or y += x · Wᵀ when
/// `accumulate`. Threads (when the work is worth it) each compute a slice of output columns.
void linear(const Eigen::Ref<const MatrixRM>& x, const MatrixRM& w, Eigen::Ref<MatrixRM> y,
            bool accumulate = false);

/// Adds a bias row vector to every row of y (no-op when `bias` is empty).
void add_bias(Eigen::Ref<MatrixRM> y, const Eigen::VectorXf& bias);

/// y = x / sqrt(mean(x²) + eps) * weight, row by row (mean accumulated in double, the rest in
/// float as HF's LlamaRMSNorm does).
void rms_norm(const Eigen::Ref<const MatrixRM>& x, const Eigen::VectorXf& weight, double eps,
              Eigen::Ref<MatrixRM> y);

/// gate = silu(gate) * up, element-wise (SwiGLU).
void silu_mul(Eigen::Ref<MatrixRM> gate, const Eigen::Ref<const MatrixRM>& up);

}  // namespace latentkv::detail
