// Test-only helpers for the GPU tests of the attention kernels: device buffers and CUDA checks.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace latentkv::testing {

#define LKV_ASSERT_CUDA(expr) ASSERT_EQ(cudaSuccess, (expr)) << #expr
#define LKV_ASSERT_OK(expr)                                    \
  do {                                                         \
    const ::latentkv::Status st_ = (expr);                     \
    ASSERT_TRUE(st_.ok()) << #expr << ": " << st_.to_string(); \
  } while (0)

/// Owning device allocation of n elements of T (cudaMalloc; freed on destruction).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) { resize(n); }
  explicit DeviceBuffer(const std::vector<T>& host) {
    resize(host.size());
    upload(host);
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), n_(o.n_) {
    o.ptr_ = nullptr;
    o.n_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(n_, o.n_);
    return *this;
  }

  void resize(size_t n) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    n_ = n;
    if (n > 0 && cudaMalloc(&ptr_, n * sizeof(T)) != cudaSuccess) ptr_ = nullptr;
  }
  void upload(const std::vector<T>& host) {
    if (!host.empty())
      cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return host;
  }
  /// Fills every byte with `byte` (poison before a kernel writes the buffer).
  void fill_bytes(int byte) {
    if (n_ > 0) cudaMemset(ptr_, byte, n_ * sizeof(T));
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

/// Multiprocessor count of device 0.
inline int device_sm_count() {
  int n = 0;
  cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0);
  return n;
}

}  // namespace latentkv::testing
