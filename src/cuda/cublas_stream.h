// Running a cuBLAS call of an engine-facing op on the op's stream with the caller's handle.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace latentkv {

/// Points `cublas` at `stream` for the lifetime of the object and back afterwards, and leaves the
/// handle untouched when it already uses that stream: cublasSetStream resets the handle's
/// workspace to cuBLAS's default pool, which would undo a caller's cublasSetWorkspace (what an
/// engine sets so that GEMMs never allocate inside a CUDA-graph capture).
class CublasStreamScope {
 public:
  CublasStreamScope(cublasHandle_t cublas, cudaStream_t stream) : cublas_(cublas) {
    status_ = cublasGetStream(cublas, &old_);
    if (status_ == CUBLAS_STATUS_SUCCESS && old_ != stream) {
      status_ = cublasSetStream(cublas, stream);
      changed_ = status_ == CUBLAS_STATUS_SUCCESS;
    }
  }
  ~CublasStreamScope() {
    if (changed_) cublasSetStream(cublas_, old_);
  }
  CublasStreamScope(const CublasStreamScope&) = delete;
  CublasStreamScope& operator=(const CublasStreamScope&) = delete;

  /// Status of getting / setting the stream; the op must not run unless it is SUCCESS.
  cublasStatus_t status() const { return status_; }

 private:
  cublasHandle_t cublas_;
  cudaStream_t old_ = nullptr;
  cublasStatus_t status_ = CUBLAS_STATUS_SUCCESS;
  bool changed_ = false;
};

}  // namespace latentkv
