// Hopper warpgroup MMA (wgmma) helpers for the decode kernels: shared-memory matrix descriptors,
// the fence / commit / wait protocol, and the 8-bit m64n64k32 forms (s8, e4m3) with A in registers.
//
// Layouts (PTX ISA, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate"): a warpgroup is 4
// consecutive warps; warp w of it owns rows 16w..16w+15 of the m64 tile. The A register fragment
// of k32 8-bit operands is, per warp, that of mma.m16n8k32 (mma_utils.cuh): a0 row r, k 4c..4c+3;
// a1 row r+8; a2 row r, k 16+4c..; a3 row r+8, k 16+4c... The accumulator of n8 block j is
// d[4j..4j+3] = (row r, col 8j+2c), (r, 8j+2c+1), (r+8, 8j+2c), (r+8, 8j+2c+1).
// B in shared memory is read through a descriptor in the no-swizzle ("interleave") K-major
// layout: core matrices of 8 rows x 16 bytes stored as 128 contiguous bytes; `lbo` is the byte
// distance between core matrices adjacent in K, `sbo` between 8-row groups in N.
// Everything here needs sm_90a; callers guard their bodies with LKV_HAS_WGMMA.
#pragma once

#include <cstdint>

#include "mma_utils.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LKV_HAS_WGMMA 1
#else
#define LKV_HAS_WGMMA 0
#endif

namespace latentkv::kernels {

/// Descriptor of a no-swizzle K-major shared-memory operand starting at `p` (16-byte aligned).
__device__ __forceinline__ uint64_t wgmma_desc(const void* p, uint32_t lbo, uint32_t sbo) {
  const uint64_t addr = smem_addr(p);
  return ((addr & 0x3FFFFu) >> 4) | uint64_t{(lbo >> 4) & 0x3FFFu} << 16 |
         uint64_t{(sbo >> 4) & 0x3FFFu} << 32;
}

/// The descriptor `d` moved by `bytes` (a multiple of 16) in shared memory.
__device__ __forceinline__ uint64_t wgmma_desc_advance(uint64_t d, uint32_t bytes) {
  return d + (bytes >> 4);
}

#if LKV_HAS_WGMMA
/// Orders earlier register writes (A fragments, accumulators) before the next wgmma.
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
/// Waits until at most N committed wgmma groups of this warpgroup are pending.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/// Makes generic-proxy shared-memory writes visible to wgmma (async proxy) reads.
__device__ __forceinline__ void fence_proxy_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/// Keeps the compiler from moving accesses of the accumulators across a wgmma wait.
template <int N>
__device__ __forceinline__ void wgmma_pin(int (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void wgmma_pin(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

/// d (+)= A·B for one m64n64k32 step: A (s8, 64 x 32) in registers, B (s8, 64 x 32, K-major)
/// in shared memory; `accumulate` = false overwrites d. Asynchronous: commit and wait before
/// reading d.
__device__ __forceinline__ void wgmma_m64n64k32_s8(int (&d)[32], const uint32_t (&a)[4],
                                                   uint64_t desc_b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %36, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %37, p;\n}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]),
        "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]),
        "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]),
        "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]),
        "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(static_cast<int>(accumulate)), "l"(desc_b));
}

/// wgmma_m64n64k32_s8 for e4m3 operands with fp32 accumulators (same fragment layouts).
__device__ __forceinline__ void wgmma_m64n64k32_e4m3(float (&d)[32], const uint32_t (&a)[4],
                                                     uint64_t desc_b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %36, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %37, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(static_cast<int>(accumulate)), "l"(desc_b));
}
#endif

}  // namespace latentkv::kernels
