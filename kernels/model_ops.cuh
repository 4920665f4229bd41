// Kernels of the small forward-pass ops of the GPU engine (launchers: src/engine/model_ops.cu).
// Row ops run one CTA per row; element-wise ops run grid-stride loops, 8 fp16 values (16 bytes)
// per thread and step when the shapes and pointers allow it (template parameter V = 8), one
// otherwise (V = 1).
#pragma once

#include <cuda_fp16.h>

#include <climits>
#include <cstdint>

#include "mma_utils.cuh"

namespace latentkv::kernels {

constexpr int kElemThreads = 256;    // element-wise kernels and embedding rows
constexpr int kNormThreads = 256;    // RMSNorm rows (d_model <= ~8K)
constexpr int kVocabThreads = 1024;  // rows of logits (vocab up to ~128K)

// static: internal linkage, should the header ever be compiled into several .cu files.
static __device__ __forceinline__ float half_to_float(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}

static __device__ __forceinline__ uint16_t float_to_half(float f) {
  return __half_as_ushort(__float2half_rn(f));
}

/// Loads 8 consecutive fp16 values (p 16-byte aligned) as floats.
static __device__ __forceinline__ void load_half8(const uint16_t* p, float (&f)[8]) {
  const uint4 v = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {  // little endian: the lower address is the low half-word
    f[2 * k] = half_to_float(static_cast<uint16_t>(w[k] & 0xFFFFu));
    f[2 * k + 1] = half_to_float(static_cast<uint16_t>(w[k] >> 16));
  }
}

/// Stores 8 floats as consecutive fp16 values (p 16-byte aligned).
static __device__ __forceinline__ void store_half8(uint16_t* p, const float (&f)[8]) {
  uint32_t w[4];
#pragma unroll
  for (int k = 0; k < 4; ++k)
    w[k] = uint32_t{float_to_half(f[2 * k])} | (uint32_t{float_to_half(f[2 * k + 1])} << 16);
  *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}

static __device__ __forceinline__ int64_t grid_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

static __device__ __forceinline__ int64_t grid_threads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

/// Reduces v over the CTA with `op` (identity `init`); every thread gets the result. smem: [32].
/// blockDim.x must be a multiple of 32. Starts with a barrier so that consecutive calls may share
/// smem.
template <typename T, typename Op>
static __device__ __forceinline__ T block_reduce(T v, T init, Op op, T* smem) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_xor_sync(~0u, v, off));
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? smem[lane] : init;
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_xor_sync(~0u, v, off));
  return v;
}

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MaxFloatOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MinIntOp {
  __device__ __forceinline__ int operator()(int a, int b) const { return min(a, b); }
};
struct MaxIntOp {
  __device__ __forceinline__ int operator()(int a, int b) const { return max(a, b); }
};

/// Keeps the better of (v, i) and (v2, i2): larger value, then lower id; i < 0 means "none".
/// Symmetric, so that both lanes of a shuffle pair agree.
static __device__ __forceinline__ void argmax_merge(float& v, int& i, float v2, int i2) {
  if (i2 >= 0 && (i < 0 || v2 > v || (v2 == v && i2 < i))) {
    v = v2;
    i = i2;
  }
}

/// Calls f(j, row[j]) for the CTA thread's share of j in [0, vocab), ids increasing along each
/// thread's calls; float4 loads when row is 16-byte aligned (the tail after vocab / 4 * 4 is read
/// one by one).
template <typename F>
static __device__ __forceinline__ void for_row(const float* row, int vocab, F&& f) {
  int tail = 0;
  if (reinterpret_cast<uintptr_t>(row) % 16 == 0) {
    const int n4 = vocab / 4;
    const float4* row4 = reinterpret_cast<const float4*>(row);
#pragma unroll 2
    for (int k = threadIdx.x; k < n4; k += blockDim.x) {
      const float4 v = row4[k];
      f(4 * k, v.x);
      f(4 * k + 1, v.y);
      f(4 * k + 2, v.z);
      f(4 * k + 3, v.w);
    }
    tail = n4 * 4;
  }
  for (int j = tail + threadIdx.x; j < vocab; j += blockDim.x) f(j, row[j]);
}

/// Argmax of row[0, vocab) over the CTA, NaN ignored, ties to the lowest id; every thread gets
/// the id (-1 when every entry is NaN) and its value in *best.
static __device__ int row_argmax(const float* row, int vocab, float* best, float* smem_v,
                                 int* smem_i) {
  float v = -INFINITY;
  int i = -1;
  // Ids grow along a thread's calls, so a strict > keeps the lowest id of a tie.
  for_row(row, vocab, [&](int j, float x) {
    if (!isnan(x) && (i < 0 || x > v)) {
      v = x;
      i = j;
    }
  });
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int off = 16; off > 0; off /= 2)
    argmax_merge(v, i, __shfl_xor_sync(~0u, v, off), __shfl_xor_sync(~0u, i, off));
  __syncthreads();
  if (lane == 0) {
    smem_v[warp] = v;
    smem_i[warp] = i;
  }
  __syncthreads();
  if (lane < static_cast<int>(blockDim.x / 32)) {
    v = smem_v[lane];
    i = smem_i[lane];
  } else {
    v = -INFINITY;
    i = -1;
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2)
    argmax_merge(v, i, __shfl_xor_sync(~0u, v, off), __shfl_xor_sync(~0u, i, off));
  *best = v;
  return i;
}

/// One CTA per token: out[i, :] = table[tokens[i], :], NaN for an id outside [0, vocab).
/// V = 8 needs d % 8 == 0 and 16-byte aligned table and out.
template <int V>
static __global__ void __launch_bounds__(kElemThreads)
    embed_tokens_kernel(const uint16_t* table, int vocab, int d, const int32_t* tokens,
                        float* out) {
  const int64_t i = blockIdx.x;
  const int32_t tok = tokens[i];
  float* dst = out + i * d;
  if (tok < 0 || tok >= vocab) {
    for (int c = threadIdx.x; c < d; c += blockDim.x) dst[c] = __int_as_float(0x7fffffff);
    return;
  }
  const uint16_t* src = table + static_cast<int64_t>(tok) * d;
  for (int c = threadIdx.x * V; c < d; c += blockDim.x * V) {
    if constexpr (V == 8) {
      float f[8];
      load_half8(src + c, f);
      reinterpret_cast<float4*>(dst + c)[0] = make_float4(f[0], f[1], f[2], f[3]);
      reinterpret_cast<float4*>(dst + c)[1] = make_float4(f[4], f[5], f[6], f[7]);
    } else {
      dst[c] = half_to_float(src[c]);
    }
  }
}

/// One CTA per row. Same arithmetic as detail::rms_norm() of the CPU forward pass: the sum of
/// squares in double, inv = float(1 / sqrt(double(float(ss / d)) + eps)), out = (x * inv) * w.
/// Rows of a multiple of 4 floats on 16-byte addresses are read as float4, 4 per thread in
/// flight: one element at a time, a 4096-wide row (one decode token) waited out 16 dependent
/// global loads per thread, 12 us per call on an H100.
static __global__ void __launch_bounds__(kNormThreads)
    rms_norm_kernel(const float* x, const float* weight, int d, float eps, uint16_t* out) {
  grid_dependency_wait();    // launched as a programmatic dependent (launch_dependent)
  grid_dependents_launch();  // the next projection may start loading its weights
  __shared__ double smem[32];
  const int64_t i = blockIdx.x;
  const float* xi = x + i * d;
  uint16_t* oi = out + i * d;
  const bool vec = d % 4 == 0 && reinterpret_cast<uintptr_t>(xi) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(weight) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(oi) % 8 == 0;
  const int d4 = vec ? d / 4 : 0;
  const float4* x4 = reinterpret_cast<const float4*>(xi);
  double ss = 0.0;
#pragma unroll 4
  for (int j = threadIdx.x; j < d4; j += blockDim.x) {
    const float4 v = x4[j];
    ss += static_cast<double>(v.x) * v.x + static_cast<double>(v.y) * v.y +
          static_cast<double>(v.z) * v.z + static_cast<double>(v.w) * v.w;
  }
  for (int j = 4 * d4 + threadIdx.x; j < d; j += blockDim.x) {
    const double v = xi[j];
    ss += v * v;
  }
  ss = block_reduce(ss, 0.0, SumOp(), smem);
  const float mean = static_cast<float>(ss / d);
  const float inv =
      static_cast<float>(1.0 / sqrt(static_cast<double>(mean) + static_cast<double>(eps)));
  const float4* w4 = reinterpret_cast<const float4*>(weight);
#pragma unroll 4
  for (int j = threadIdx.x; j < d4; j += blockDim.x) {
    const float4 v = x4[j], w = w4[j];
    const uint2 h = make_uint2(
        float_to_half((v.x * inv) * w.x) | uint32_t{float_to_half((v.y * inv) * w.y)} << 16,
        float_to_half((v.z * inv) * w.z) | uint32_t{float_to_half((v.w * inv) * w.w)} << 16);
    reinterpret_cast<uint2*>(oi)[j] = h;
  }
  for (int j = 4 * d4 + threadIdx.x; j < d; j += blockDim.x)
    oi[j] = float_to_half((xi[j] * inv) * weight[j]);
}

/// One thread per (row, head, pair j < half): rotates elements j and j + half of the head by
/// positions[row] * inv_freq[j] (half-split RoPE), in place.
static __global__ void __launch_bounds__(kElemThreads)
    rope_kernel(uint16_t* x, int num_heads, int half, int64_t row_stride, const int32_t* positions,
                const double* inv_freq, int64_t total) {
  grid_dependency_wait();  // launched as a programmatic dependent (launch_dependent)
  grid_dependents_launch();
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (int64_t p = grid_thread(); p < total; p += grid_threads()) {
    const int j = static_cast<int>(p % half);
    const int64_t t = p / half;
    const int h = static_cast<int>(t % num_heads);
    const int64_t i = t / num_heads;
    uint16_t* head = x + i * row_stride + static_cast<int64_t>(h) * 2 * half;
    // The product is exact to ~1e-11 rad in double and fmod is exact, so that the float angle
    // keeps float accuracy at any position; sincosf (not __sincosf) is accurate over [0, 2π).
    const double angle = fmod(static_cast<double>(positions[i]) * inv_freq[j], kTwoPi);
    float s, c;
    sincosf(static_cast<float>(angle), &s, &c);
    const float a = half_to_float(head[j]), b = half_to_float(head[j + half]);
    head[j] = float_to_half(a * c - b * s);
    head[j + half] = float_to_half(b * c + a * s);
  }
}

static __device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

/// Grid-stride over groups of V output columns: out[i, c] = silu(gate[i, c]) * up[i, c].
/// V = 8 needs ffn % 8 == 0 and 16-byte aligned gate_up and out.
template <int V>
static __global__ void __launch_bounds__(kElemThreads)
    swiglu_kernel(const uint16_t* gate_up, int ffn, uint16_t* out, int64_t groups) {
  grid_dependency_wait();    // launched as a programmatic dependent (launch_dependent)
  grid_dependents_launch();  // the next projection may start loading its weights
  const int per_row = ffn / V;
  for (int64_t g = grid_thread(); g < groups; g += grid_threads()) {
    const int64_t i = g / per_row;
    const int c = static_cast<int>(g % per_row) * V;
    const uint16_t* gate = gate_up + i * 2 * ffn + c;
    uint16_t* o = out + i * ffn + c;
    if constexpr (V == 8) {
      float gf[8], uf[8];
      load_half8(gate, gf);
      load_half8(gate + ffn, uf);
#pragma unroll
      for (int k = 0; k < 8; ++k) gf[k] = silu_mul(gf[k], uf[k]);
      store_half8(o, gf);
    } else {
      o[0] = float_to_half(silu_mul(half_to_float(gate[0]), half_to_float(gate[ffn])));
    }
  }
}

/// One CTA per row: out[r] = argmax (0 when the row is all NaN).
static __global__ void __launch_bounds__(kVocabThreads)
    argmax_rows_kernel(const float* logits, int vocab, int64_t row_stride, int32_t* out) {
  __shared__ float smem_v[32];
  __shared__ int smem_i[32];
  const int64_t r = blockIdx.x;
  float best;
  const int id = row_argmax(logits + r * row_stride, vocab, &best, smem_v, smem_i);
  if (threadIdx.x == 0) out[r] = id < 0 ? 0 : id;
}

/// Probability weight of a logit for sampling: p = exp((x - m) / T) = exp2((x - m) * k) with
/// k = log2(e) / T, in (0, 1] (the max token's is exactly 1), 0 for NaN; and its fixed-point
/// value q = round(p * q_scale). Integer masses sum exactly in any order, so that the nucleus
/// search and the inverse CDF below agree to the last unit and do not depend on the reduction
/// order.
struct SampleWeight {
  float m, k, q_scale;
  __device__ __forceinline__ float prob(float x) const {
    return isnan(x) ? 0.0f : fminf(exp2f((x - m) * k), 1.0f);
  }
  __device__ __forceinline__ unsigned long long fixed(float p) const {
    return __float2ull_rn(p * q_scale);
  }
};

/// Tokens kept by top-p: nonzero fixed-point weight and p >= tau (compared as bit patterns,
/// which order positive floats like their values).
static __device__ __forceinline__ bool in_nucleus(float p, unsigned long long q,
                                                  uint32_t tau_bits) {
  return q != 0 && __float_as_uint(p) >= tau_bits;
}

/// Digits of the radix select over the bit patterns of p in (0, 1] (bit 31, the sign, is 0):
/// the exponent, bits [23, 31), then mantissa bits [11, 23) and [0, 11). A nonzero q needs
/// p >= 2^-62 (q_scale <= 2^61), so that the biased exponent lies in [65, 127]: the first pass
/// bins exponent - 64 into kExpBins bins, per warp (tokens crowd into few exponents, where one
/// shared histogram would serialize the atomics of all warps).
constexpr int kExpBins = 64;
constexpr int kRadixPasses = 3;
constexpr int kRadixHistSize = 4096;  // >= 32 warps * kExpBins + kExpBins, and 2^12
__host__ __device__ constexpr int radix_shift(int pass) {
  return pass == 0 ? 23 : pass == 1 ? 11 : 0;
}
__host__ __device__ constexpr int radix_bins(int pass) {
  return pass == 0 ? kExpBins : pass == 1 ? 4096 : 2048;
}

/// tau for top_p < 1: the bit pattern of the largest p whose nucleus mass M(tau) = Σ_{p_j >= tau}
/// q_j reaches ceil(top_p · Σ q_j). MSB-first radix select weighted by mass: each pass bins the
/// tokens that share the digits chosen so far by their next digit, and warp 0 picks the largest
/// digit whose suffix mass (plus the mass of tokens already known to lie above) reaches the
/// target. All in exact integers. Every thread gets the result. hist: [kRadixHistSize].
static __device__ uint32_t nucleus_threshold(const float* row, int vocab, const SampleWeight& w,
                                             float top_p, unsigned long long* hist) {
  __shared__ unsigned long long sel_above;
  __shared__ uint32_t sel_digit;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
  uint32_t prefix = 0;
  unsigned long long above = 0, target = 0;  // target: set in warp 0, the only reader
  for (int pass = 0; pass < kRadixPasses; ++pass) {
    const int shift = radix_shift(pass), bins = radix_bins(pass);
    const uint32_t high_mask = pass == 0 ? 0u : ~((1u << radix_shift(pass - 1)) - 1u);
    // Pass 0: warp wp's private bins at hist[wp * kExpBins], summed into sel = the bins after.
    unsigned long long* sel = pass == 0 ? hist + num_warps * kExpBins : hist;
    const int zeroed = pass == 0 ? num_warps * kExpBins : bins;
    for (int b = threadIdx.x; b < zeroed; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    unsigned long long* mine = pass == 0 ? hist + warp * kExpBins : hist;
    for_row(row, vocab, [&](int, float x) {
      const float p = w.prob(x);
      const unsigned long long q = w.fixed(p);
      const uint32_t bits = __float_as_uint(p);
      if (q == 0 || (bits & high_mask) != prefix) return;
      const uint32_t digit =
          (bits >> shift) & ((pass == 0 ? 256u : static_cast<uint32_t>(bins)) - 1u);
      atomicAdd(&mine[pass == 0 ? digit - kExpBins : digit], q);
    });
    __syncthreads();
    if (pass == 0) {
      for (int b = threadIdx.x; b < kExpBins; b += blockDim.x) {
        unsigned long long sum = 0;
        for (int wp = 0; wp < num_warps; ++wp) sum += hist[wp * kExpBins + b];
        sel[b] = sum;
      }
      __syncthreads();
    }
    if (warp == 0) {
      // Lane l owns bins [l * per, (l + 1) * per); suffix = mass of its bins and all above.
      const int per = bins / 32;
      unsigned long long own = 0;
      for (int b = lane * per; b < (lane + 1) * per; ++b) own += sel[b];
      unsigned long long suffix = own;
#pragma unroll
      for (int off = 1; off < 32; off *= 2) {
        const unsigned long long y = __shfl_down_sync(~0u, suffix, off);
        if (lane + off < 32) suffix += y;
      }
      if (pass == 0) {
        const unsigned long long total = __shfl_sync(~0u, suffix, 0);
        const double t = ceil(static_cast<double>(top_p) * static_cast<double>(total));
        target = t < 1.0 ? 1ull : min(total, static_cast<unsigned long long>(t));
      }
      // Lane 0 always qualifies: above + all bins = M(prefix followed by zeros) >= target.
      const unsigned ok = __ballot_sync(~0u, above + suffix >= target);
      if (lane == 31 - __clz(ok)) {
        unsigned long long cum = above + (suffix - own);
        int b = (lane + 1) * per - 1;
        for (; b > lane * per; --b) {
          if (cum + sel[b] >= target) break;
          cum += sel[b];
        }
        sel_digit = static_cast<uint32_t>(pass == 0 ? b + kExpBins : b);
        sel_above = cum;
      }
    }
    __syncthreads();
    prefix |= sel_digit << shift;
    above = sel_above;
  }
  return prefix;
}

/// One CTA (kVocabThreads threads) per row: temperature > 0, nucleus (top-p) sampling by inverse
/// CDF in id order with u = uniforms[r], on fixed-point weights (SampleWeight).
static __global__ void __launch_bounds__(kVocabThreads)
    sample_rows_kernel(const float* logits, int vocab, int64_t row_stride, float temperature,
                       float top_p, float q_scale, const float* uniforms, int32_t* out) {
  __shared__ float smem_f[32];
  __shared__ int smem_i[32];
  __shared__ unsigned long long smem_q[kRadixHistSize];  // radix bins, then per-warp masses
  const int64_t r = blockIdx.x;
  const float* row = logits + r * row_stride;
  float m;
  const int best = row_argmax(row, vocab, &m, smem_f, smem_i);
  if (best < 0 || isinf(m)) {  // all NaN, or an infinite max: the softmax is undefined
    if (threadIdx.x == 0) out[r] = best < 0 ? 0 : best;
    return;
  }
  const SampleWeight w{m, 1.4426950408889634f / temperature, q_scale};
  // Smallest positive float: top_p = 1 keeps every token of nonzero weight.
  const uint32_t tau_bits = top_p < 1.0f ? nucleus_threshold(row, vocab, w, top_p, smem_q) : 1u;

  // Inverse CDF in id order. Warp wp owns the contiguous ids [wp * seg, (wp + 1) * seg): each
  // warp sums its nucleus mass; the one warp whose cumulative range holds the goal scans its ids
  // 128 at a time (4 consecutive per lane).
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, num_warps = blockDim.x / 32;
  const int seg = ((vocab + num_warps - 1) / num_warps + 127) / 128 * 128;
  const int begin = static_cast<int>(min(int64_t{vocab}, int64_t{warp} * seg));
  const int end = static_cast<int>(min(int64_t{vocab}, int64_t{begin} + seg));
  unsigned long long mass = 0;
  int last = -1;
  for (int j = begin + lane; j < end; j += 32) {
    const float p = w.prob(row[j]);
    const unsigned long long q = w.fixed(p);
    if (in_nucleus(p, q, tau_bits)) {
      mass += q;
      last = j;
    }
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) mass += __shfl_xor_sync(~0u, mass, off);
  last = block_reduce(last, -1, MaxIntOp(), smem_i);  // its barriers also order smem_q
  if (lane == 0) smem_q[warp] = mass;
  __syncthreads();
  unsigned long long prefix = 0, total = 0;
  for (int wp = 0; wp < num_warps; ++wp) {
    if (wp == warp) prefix = total;
    total += smem_q[wp];
  }
  // goal = floor(u · total) < total for u in [0, 1); u >= 1 gives goal = total: the fallback.
  const double u = fmin(fmax(static_cast<double>(uniforms[r]), 0.0), 1.0);  // NaN -> 0
  const unsigned long long goal = __double2ull_rz(u * static_cast<double>(total));
  if (goal >= total) {
    if (threadIdx.x == 0) out[r] = last;
    return;
  }
  if (!(prefix <= goal && goal < prefix + mass)) return;  // exactly one warp goes on
  unsigned long long cum = prefix;
  int pick = -1;
  for (int base = begin; base < end && pick < 0; base += 128) {
    const int j0 = base + 4 * lane;
    unsigned long long c[4];  // inclusive sums of the lane's 4 nucleus weights
    bool kept[4];
    unsigned long long run = 0;
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const int j = j0 + t;
      const float p = j < end ? w.prob(row[j]) : 0.0f;
      const unsigned long long q = w.fixed(p);
      kept[t] = j < end && in_nucleus(p, q, tau_bits);
      run += kept[t] ? q : 0ull;
      c[t] = run;
    }
    unsigned long long incl = run;  // inclusive scan of the lane totals
#pragma unroll
    for (int off = 1; off < 32; off *= 2) {
      const unsigned long long y = __shfl_up_sync(~0u, incl, off);
      if (lane >= off) incl += y;
    }
    const unsigned long long start = cum + (incl - run);
    int mine = -1;
#pragma unroll
    for (int t = 3; t >= 0; --t)
      if (kept[t] && start + c[t] > goal) mine = j0 + t;
    const unsigned hit = __ballot_sync(~0u, mine >= 0);
    if (hit != 0u) pick = __shfl_sync(~0u, mine, __ffs(hit) - 1);
    cum += __shfl_sync(~0u, incl, 31);
  }
  if (lane == 0) out[r] = pick >= 0 ? pick : last;
}

/// splitmix64's output function (a bijective 64-bit mixer).
__host__ __device__ __forceinline__ uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// out[i] = fp16(scale * (2u - 1)), u = the top 24 bits of splitmix64 at counter i of a stream
/// keyed by `key` (= splitmix64_mix(seed), so that nearby seeds give unrelated streams).
static __global__ void __launch_bounds__(kElemThreads)
    fill_random_fp16_kernel(uint16_t* out, int64_t count, uint64_t key, float scale) {
  for (int64_t i = grid_thread(); i < count; i += grid_threads()) {
    const uint64_t h = splitmix64_mix(key + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull);
    const float u = static_cast<float>(h >> 40) * 0x1p-24f;  // [0, 1), exact
    out[i] = float_to_half(scale * (2.0f * u - 1.0f));
  }
}

static __global__ void __launch_bounds__(kElemThreads)
    copy_positions_kernel(const int32_t* seq_lens, int n, int32_t* positions) {
  for (int64_t b = grid_thread(); b < n; b += grid_threads()) positions[b] = seq_lens[b];
}

}  // namespace latentkv::kernels
