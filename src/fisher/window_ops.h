// Pieces of the whole-window training forward/backward pass (internal to src/fisher): how
// products are spread over threads, RMSNorm, SwiGLU and the LM-head cross-entropy, each with its
// backward. Scalar is float or double (explicit instantiations in window_ops.cpp).
#pragma once

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "latentkv/fisher/llama_backward.h"
#include "latentkv/model/llama.h"

namespace latentkv::fisher_detail {

template <typename Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// Work (multiply-adds, or elements for row-wise loops) below which a loop runs on one thread.
/// Each parallel region costs a fork and a barrier; under OpenMP's default spinning wait policy
/// on a loaded machine that overhead dwarfs small loops (measured: the tiny-model tests ran 250×
/// slower on 2 threads than on 1 under a load of 8 on 2 cores).
constexpr int64_t kMinParallelWork = int64_t{1} << 18;

/// The fp32 weight as Scalar: a reference for float, a widening expression for double.
template <typename Scalar, typename Derived>
decltype(auto) as(const Eigen::MatrixBase<Derived>& m) {
  return m.template cast<Scalar>();
}

/// c = a·b, or c += a·b when `accumulate`, computed by the calling thread alone. Eigen's GEMM is
/// serial inside a team of several OpenMP threads, but outside one it may start threads of its
/// own for mid-sized products (with the busy-waiting described at gemm()), so products below
/// kMinParallelWork outside such a team use Eigen's coefficient-based (lazy) product instead.
template <typename Lhs, typename Rhs, typename Dst>
void serial_product(const Lhs& a, const Rhs& b, Dst&& c, bool accumulate = false) {
  const bool small =
      a.rows() * a.cols() * b.cols() < kMinParallelWork && omp_get_num_threads() == 1;
  if (small && accumulate) {
    c.noalias() += a.lazyProduct(b);
  } else if (small) {
    c.noalias() = a.lazyProduct(b);
  } else if (accumulate) {
    c.noalias() += a * b;
  } else {
    c.noalias() = a * b;
  }
}

/// *c = a·b, or *c += a·b when `accumulate`. The columns of c are cut into blocks that threads
/// take one at a time, each block one single-threaded Eigen GEMM. Why not Eigen's own parallel
/// GEMM: its threads busy-wait for each other's packed panels, so on a shared machine a thread
/// that the OS deschedules stalls the other one for its whole time slice (measured: 12× slower
/// than one thread under a load of 10 on 2 cores); here it only delays the block it holds.
/// Products below kMinParallelWork multiply-adds run on the calling thread.
template <typename Lhs, typename Rhs, typename Dst>
void gemm(const Lhs& a, const Rhs& b, Dst* c, bool accumulate = false) {
  constexpr int64_t kBlock = 128;
  const int64_t cols = b.cols();
  if (!accumulate) c->resize(a.rows(), cols);
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  const bool parallel = blocks > 1 && a.rows() * a.cols() * cols >= kMinParallelWork;
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kBlock, n = std::min(kBlock, cols - c0);
    serial_product(a, b.middleCols(c0, n), c->middleCols(c0, n), accumulate);
  }
}

/// y = x / sqrt(mean(x²) + eps) ∘ weight row by row ([T, d]); inv_rms[t] receives the row's
/// 1/sqrt(mean(x²) + eps) for the backward pass.
template <typename Scalar>
void rms_norm_forward(const MatrixRMT<Scalar>& x, const Eigen::VectorXf& weight, double eps,
                      MatrixRMT<Scalar>* y, Vector<Scalar>* inv_rms);

/// dx += d/dx of the RMSNorm above given dy ([T, d]), using the saved input x and inv_rms.
template <typename Scalar>
void rms_norm_backward(const MatrixRMT<Scalar>& x, const Vector<Scalar>& inv_rms,
                       const Eigen::VectorXf& weight, const MatrixRMT<Scalar>& dy,
                       MatrixRMT<Scalar>* dx);

/// m = silu(gate) ∘ up ([T, ffn_dim]).
template <typename Scalar>
void swiglu_forward(const MatrixRMT<Scalar>& gate, const MatrixRMT<Scalar>& up,
                    MatrixRMT<Scalar>* m);

/// Given dm, overwrites dm with d/dgate and writes d/dup into *dup (saved gate and up).
template <typename Scalar>
void swiglu_backward(const MatrixRMT<Scalar>& gate, const MatrixRMT<Scalar>& up,
                     MatrixRMT<Scalar>* dm, MatrixRMT<Scalar>* dup);

/// Mean next-token cross-entropy of logits z·lm_headᵀ, where row t of z ([T, d_model], final
/// normed hidden states) predicts tokens[t+1]; rows are processed in blocks so that the full
/// [T, vocab] logits never exist. Returns the loss and writes dz = d loss / dz ([T, d_model];
/// the last row, which predicts nothing, gets zeros).
template <typename Scalar>
double lm_head_loss_backward(const MatrixRMT<Scalar>& z, const MatrixRM& lm_head,
                             const std::vector<TokenId>& tokens, MatrixRMT<Scalar>* dz);

}  // namespace latentkv::fisher_detail
