// Status conversion for CUDA / cuBLAS calls in the engine-facing GPU code.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "latentkv/status.h"

/// Returns a kCudaError Status from the enclosing function when a CUDA runtime call fails.
#define LKV_CUDA_RETURN(expr)                                                                    \
  do {                                                                                           \
    const cudaError_t lkv_err_ = (expr);                                                         \
    if (lkv_err_ != cudaSuccess)                                                                 \
      return ::latentkv::Status(::latentkv::StatusCode::kCudaError,                              \
                                ::latentkv::str_cat(#expr, ": ", cudaGetErrorString(lkv_err_))); \
  } while (0)

/// Returns a kCudaError Status when a cuBLAS call fails.
#define LKV_CUBLAS_RETURN(expr)                                                                    \
  do {                                                                                             \
    const cublasStatus_t lkv_st_ = (expr);                                                         \
    if (lkv_st_ != CUBLAS_STATUS_SUCCESS)                                                          \
      return ::latentkv::Status(::latentkv::StatusCode::kCudaError,                                \
                                ::latentkv::str_cat(#expr, ": ", cublasGetStatusString(lkv_st_))); \
  } while (0)
