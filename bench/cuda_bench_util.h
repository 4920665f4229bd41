// Shared helpers of the CUDA benchmarks: device buffers, random fill on the device, and the timing
// protocol (CUDA events around the op only, a 256 MiB scratch write between iterations so that
// every iteration starts with a cold L2, warm-up runs, median of the samples).
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace latentkv::bench {

/// Datasheet HBM bandwidth of the device: H100 SXM 3.35 TB/s, H200 4.8 TB/s (the measured
/// device-to-device copy is reported beside it).
inline double peak_hbm_bytes_per_sec() {
  static const double peak = [] {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return 3.35e12;
    return std::string(prop.name).find("H200") != std::string::npos ? 4.8e12 : 3.35e12;
  }();
  return peak;
}

#define LKV_BENCH_CUDA(expr)                                                                     \
  do {                                                                                           \
    const cudaError_t e_ = (expr);                                                               \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

/// Owning device allocation (bytes).
class DeviceMem {
 public:
  DeviceMem() = default;
  explicit DeviceMem(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) LKV_BENCH_CUDA(cudaMalloc(&ptr_, bytes));
  }
  ~DeviceMem() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceMem(DeviceMem&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  DeviceMem& operator=(DeviceMem&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  template <typename T>
  void upload(const std::vector<T>& v) {
    LKV_BENCH_CUDA(cudaMemcpy(ptr_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

__device__ inline uint32_t bench_hash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

/// Uniform random bytes (packed codes).
__global__ void fill_bytes_kernel(uint8_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    p[i] = static_cast<uint8_t>(bench_hash(seed * 0x9E3779B97F4A7C15ull + i));
}
/// fp16 values uniform in [lo, hi).
__global__ void fill_half_kernel(__half* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    p[i] = __float2half_rn(lo + (hi - lo) * (bench_hash(seed * 0x9E3779B97F4A7C15ull + i) >> 8) *
                                    (1.0f / 16777216.0f));
}

inline void fill_bytes(void* p, size_t n, uint64_t seed) {
  if (n) fill_bytes_kernel<<<1024, 256>>>(static_cast<uint8_t*>(p), n, seed);
  LKV_BENCH_CUDA(cudaGetLastError());
}
inline void fill_half(void* p, size_t n, uint64_t seed, float lo, float hi) {
  if (n) fill_half_kernel<<<1024, 256>>>(static_cast<__half*>(p), n, seed, lo, hi);
  LKV_BENCH_CUDA(cudaGetLastError());
}

/// Times `op` (which enqueues work on `stream`) per the protocol above and fills the state:
/// manual iteration time = the op's time; counters: median/min microseconds.
inline std::vector<double> time_op(benchmark::State& state, const std::function<void()>& op,
                                   cudaStream_t stream = nullptr, int warmup = 3) {
  static DeviceMem scratch(256u << 20);
  cudaEvent_t a, b;
  LKV_BENCH_CUDA(cudaEventCreate(&a));
  LKV_BENCH_CUDA(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) op();
  LKV_BENCH_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> samples;
  for (auto _ : state) {
    LKV_BENCH_CUDA(cudaMemsetAsync(scratch.get(), samples.size() & 0xff, scratch.bytes(), stream));
    LKV_BENCH_CUDA(cudaEventRecord(a, stream));
    op();
    LKV_BENCH_CUDA(cudaEventRecord(b, stream));
    LKV_BENCH_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    LKV_BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
    state.SetIterationTime(ms * 1e-3);
    samples.push_back(ms * 1e3);
  }
  LKV_BENCH_CUDA(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  state.counters["median_us"] = median;
  state.counters["min_us"] = sorted.front();
  return sorted;
}

/// Sets bandwidth / throughput counters from the median time.
inline void set_rate_counters(benchmark::State& state, double bytes, double flops) {
  const double sec = state.counters["median_us"] * 1e-6;
  state.counters["GBps"] = bytes / sec * 1e-9;
  state.counters["pct_peak_bw"] = 100.0 * bytes / sec / peak_hbm_bytes_per_sec();
  state.counters["TFLOPs"] = flops / sec * 1e-12;
  state.counters["bytes"] = bytes;
}

/// Measured device-to-device copy bandwidth (bytes read + written per second, median of 10
/// copies of 2 GiB): the practical streaming limit that the decode steps are compared with.
inline double copy_bandwidth() {
  static const double bw = [] {
    const size_t bytes = size_t{2} << 30;
    DeviceMem a(bytes), b(bytes);
    cudaEvent_t e0, e1;
    LKV_BENCH_CUDA(cudaEventCreate(&e0));
    LKV_BENCH_CUDA(cudaEventCreate(&e1));
    std::vector<float> ms;
    for (int i = 0; i < 12; ++i) {
      LKV_BENCH_CUDA(cudaEventRecord(e0));
      LKV_BENCH_CUDA(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice));
      LKV_BENCH_CUDA(cudaEventRecord(e1));
      LKV_BENCH_CUDA(cudaEventSynchronize(e1));
      float t = 0;
      LKV_BENCH_CUDA(cudaEventElapsedTime(&t, e0, e1));
      if (i >= 2) ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return 2.0 * bytes / (ms[ms.size() / 2] * 1e-3);
  }();
  return bw;
}

inline int sm_count() {
  int n = 0;
  LKV_BENCH_CUDA(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0));
  return n;
}

}  // namespace latentkv::bench
