// Owning device allocations of the GPU engine (internal). Allocation happens when an engine or
// its weights are built, never in the per-token path.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "latentkv/status.h"

namespace latentkv::engine {

/// Throws Error(kCudaError) naming `what` when a CUDA runtime call failed.
void check_cuda(cudaError_t err, const char* what);
/// Throws the Status when it is not ok.
void check(const Status& status);

/// Throws Error(kUnsupported) when no CUDA GPU is present, or when this build has no kernel image
/// for its architecture (the message names the build's architectures).
void require_gpu();

/// Free and total bytes of the current device.
std::pair<int64_t, int64_t> device_memory_info();

/// One cudaMalloc'ed block of `count` elements of T, freed on destruction.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  /// Throws Error(kOutOfMemory) naming `what`, the request and the free memory on failure.
  DeviceArray(int64_t count, const char* what) { allocate(count, what); }
  ~DeviceArray() { release(); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept { *this = std::move(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }

  void allocate(int64_t count, const char* what);
  void release() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }
  T* get() const { return ptr_; }
  int64_t size() const { return count_; }
  int64_t bytes() const { return count_ * static_cast<int64_t>(sizeof(T)); }

 private:
  T* ptr_ = nullptr;
  int64_t count_ = 0;
};

/// Throws Error(kOutOfMemory): "<what>: cannot allocate X MiB on the GPU (Y MiB free of Z)".
[[noreturn]] void throw_out_of_memory(const char* what, int64_t bytes);

template <typename T>
void DeviceArray<T>::allocate(int64_t count, const char* what) {
  release();
  if (count <= 0) return;
  const int64_t bytes = count * static_cast<int64_t>(sizeof(T));
  void* p = nullptr;
  if (cudaMalloc(&p, static_cast<size_t>(bytes)) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    throw_out_of_memory(what, bytes);
  }
  ptr_ = static_cast<T*>(p);
  count_ = count;
}

}  // namespace latentkv::engine
