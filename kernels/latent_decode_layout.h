// Tile configuration and shared-memory layout of the fused latent decode kernel. Plain C++ so that
// host planning code (compiled without nvcc) and the kernel agree on every size.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LKV_HOST_DEVICE __host__ __device__
#else
#define LKV_HOST_DEVICE
#endif

namespace latentkv::kernels {

constexpr int kLatentTile = 64;      ///< tokens per tile (one pipeline stage)
constexpr int kLatentMaxRows = 16;   ///< query rows per CTA: one m16 tile
constexpr int kLatentMaxVPairs = 4;  ///< 16-column blocks of the value latent per warp
constexpr int kLatentSPad = 8;       ///< floats of padding per score row (bank spread)

/// Row stride in shared memory for rows of `bytes` bytes: 16-byte multiple, odd number of 16-byte
/// units so that the 8 row addresses of one ldmatrix hit distinct banks.
LKV_HOST_DEVICE constexpr int latent_smem_row_stride(int bytes) {
  const int s = (bytes + 15) / 16 * 16;
  return (s / 16) % 2 == 0 ? s + 16 : s;
}

/// Latent bytes per token row as stored (packed codes, fp16 when bits = 16).
LKV_HOST_DEVICE constexpr int latent_code_row_bytes(int rank, int bits) {
  return (rank * bits + 7) / 8;
}

/// MMA k-steps of the key rebuild: k16 steps for fp16, k32 steps for int8 (2-bit codes come in
/// pairs of steps per 16-byte segment).
LKV_HOST_DEVICE constexpr int latent_key_steps(int rank_k, int bits) {
  return bits == 16 ? rank_k / 16 : bits == 2 ? 2 * ((rank_k + 63) / 64) : (rank_k + 31) / 32;
}

/// The kernel's compile-time k-step count: ksteps rounded up to a power of two, at least 2
/// (2-bit codes come in pairs of steps).
LKV_HOST_DEVICE constexpr int latent_key_step_bucket(int ksteps) {
  int b = 2;
  while (b < ksteps) b *= 2;
  return b;
}

/// Byte offsets of the regions of the kernel's dynamic shared memory.
struct LatentSmemLayout {
  int stages = 0;
  int k_sstride = 0, v_sstride = 0;  ///< stage row strides (codes or fp16)
  int k_copy = 0, v_copy = 0;        ///< bytes copied per row (multiple of 16)
  int stage_bytes = 0;
  int vtile_stride = 0;  ///< fp16 value tile rows (bits < 16: dequantized values)
  int k4_stride = 0;     ///< 3-bit keys re-packed as 4-bit codes
  int off_vtile = 0, off_k4 = 0, off_s = 0, off_p = 0, off_o = 0, off_stats = 0;
  int o_stride = 0;  ///< floats per row of the value accumulator
  int total = 0;
};

LKV_HOST_DEVICE constexpr LatentSmemLayout latent_smem_layout(int bits, int rank_k, int rank_v,
                                                              int num_warps) {
  LatentSmemLayout l{};
  const int t = kLatentTile;
  const bool quant = bits < 16;
  l.stages = quant ? 3 : 2;
  const int kb = latent_code_row_bytes(rank_k, bits), vb = latent_code_row_bytes(rank_v, bits);
  l.k_copy = (kb + 15) / 16 * 16;
  l.v_copy = (vb + 15) / 16 * 16;
  l.k_sstride = latent_smem_row_stride(kb);
  l.v_sstride = latent_smem_row_stride(vb);
  l.stage_bytes = t * (l.k_sstride + l.v_sstride) + (quant ? 2 * t * 4 : 0);
  int off = l.stages * l.stage_bytes;
  l.vtile_stride = latent_smem_row_stride(2 * rank_v);
  l.off_vtile = off;
  if (quant) off += t * l.vtile_stride;
  l.k4_stride = latent_smem_row_stride(latent_key_steps(rank_k, 4) * 16);
  l.off_k4 = off;
  if (bits == 3) off += t * l.k4_stride;
  l.off_s = off;
  off += num_warps * kLatentMaxRows * (t + kLatentSPad) * 4;
  l.off_p = off;
  off += kLatentMaxRows * (t + 8) * 2;
  l.o_stride = rank_v + 8;
  l.off_o = off;
  off += kLatentMaxRows * l.o_stride * 4;
  l.off_stats = off;
  off += 3 * kLatentMaxRows * 4;
  l.total = off;
  return l;
}

}  // namespace latentkv::kernels

namespace latentkv::kernels {

/// Warps of the latent decode kernel: one per 8 head dims (+ their RoPE partners).
LKV_HOST_DEVICE constexpr int latent_num_warps(int head_dim) { return head_dim / 16; }

/// Whether a CTA holding `hpc` heads keeps their key factors in registers: hpc times the
/// compile-time k-step bucket (latent_key_step_bucket) at most 32 fragments of 4 registers.
LKV_HOST_DEVICE constexpr bool latent_hpc_fits(int hpc, int rank_k, int bits) {
  return hpc * latent_key_step_bucket(latent_key_steps(rank_k, bits)) <= 32;
}

/// CTAs per multiprocessor that latent_decode_kernel<*, *, hpc, fold, ks> is compiled for (its
/// __launch_bounds__ minimum). The folded (MHA) form whose factor fragments take at most 32
/// registers (hpc·ks <= 8) is capped at 128 registers so that two CTAs (16 warps) share an SM:
/// the kernel is latency-bound at 8 warps (H100, Llama-2 shape: 1.3-1.5x faster at group sizes
/// 1 and 2). At hpc·ks = 16 the cap spills 64-240 bytes per thread and was measured 12-26 %
/// slower, so larger fragments keep the whole register file.
LKV_HOST_DEVICE constexpr int latent_min_ctas(bool fold, int hpc, int ks) {
  return fold && hpc * ks <= 8 ? 2 : 1;
}

/// CTAs per multiprocessor a launch gets: the compiled minimum when `smem_bytes` of dynamic
/// shared memory per CTA (plus the 1 KiB the runtime reserves) allow it, else one.
LKV_HOST_DEVICE constexpr int latent_ctas_per_sm(bool fold, int hpc, int ksteps, int smem_bytes) {
  const int n = latent_min_ctas(fold, hpc, latent_key_step_bucket(ksteps));
  return n * (smem_bytes + 1024) <= 228 * 1024 ? n : 1;
}

}  // namespace latentkv::kernels

namespace latentkv::kernels {

/// Warpgroup (wgmma) form of the folded 4-bit kernel (latent_decode_wgmma.cuh): two warpgroups of
/// 4 warps, each running its own stream of 64-token tiles; the e4m3 folded factors of the CTA's 4
/// heads stay in shared memory for the whole CTA.
constexpr int kLatentWgHeads = 4;   ///< KV heads (= query heads, MHA) per CTA
constexpr int kLatentWgGroups = 2;  ///< warpgroups per CTA
constexpr int kLatentWgStages = 2;  ///< pipeline stages per warpgroup
constexpr int kLatentWgThreads = kLatentWgGroups * 128;

/// Byte offsets of the regions of the warpgroup kernel's dynamic shared memory.
struct LatentWgSmemLayout {
  int w8 = 0;                        ///< [head][128 rows][rank_k] e4m3, wgmma core-matrix order
  int w8_pad = 0;                    ///< zero bytes after W8, read by zero-padded k-steps
  int k_sstride = 0, v_sstride = 0;  ///< code row strides in a stage
  int k_copy = 0, v_copy = 0;        ///< bytes copied per row
  int stage_bytes = 0;               ///< K codes, V codes, (scale, zero) of K then V
  int off_stages = 0;                ///< [warpgroup][stage]
  int off_ztab = 0;                  ///< [8][kLatentWgZStride] fp16: row 2h = β·Σ_r W8 of head h
  int off_beta = 0;                  ///< [head][8] float
  int off_theta = 0;                 ///< [64] float: RoPE frequency of pair i
  int off_wg = 0, wg_bytes = 0;      ///< per warpgroup: phases, scores, P tile, alpha
  int off_o = 0;                     ///< [head][rank_v] float: the merged value accumulator
  int off_stats = 0;                 ///< [warpgroup][head][3] float: m, l, value zero-point sum
  int total = 0;
};
constexpr int kLatentWgZStride = 136;  ///< halves per Z-table row (odd number of 16-byte units)
constexpr int kLatentWgPStride = 72;   ///< halves per P-tile row

/// Grid of latent_decode_wgmma_kernel, linear in x: the warpgroup CTAs over the pages (main_x
/// splits × main_y blocks of 4 heads × batch), then the fp16 CTAs of the residual window (win_x
/// slots × win_y head blocks × batch; none when win_x = 0).
struct LatentWgGrid {
  int main_x, main_y, win_x, win_y, batch;
};

/// Heads per fp16 residual-window CTA run by the warpgroup kernel of k-step bucket ks (its fp16
/// factor fragments, bucket 2·ks, fit the registers for hpc·2·ks <= 32): the value
/// latent_heads_per_cta gives for bits 16 at group sizes divisible by 4.
LKV_HOST_DEVICE constexpr int latent_wg_window_heads(int ks) { return ks <= 4 ? 4 : 2; }

LKV_HOST_DEVICE constexpr LatentWgSmemLayout latent_wg_smem_layout(int rank_k, int rank_v) {
  LatentWgSmemLayout l{};
  const int t = kLatentTile;
  l.w8 = kLatentWgHeads * 128 * rank_k;
  // The k-steps of a rank's bucket past the rank (A = 0) read B 256 bytes further per step; in
  // the last row block that runs past W8, and 0 times a NaN byte pattern of e4m3 is NaN.
  l.w8_pad = 7 * 256;
  const int kb = latent_code_row_bytes(rank_k, 4), vb = latent_code_row_bytes(rank_v, 4);
  l.k_copy = (kb + 15) / 16 * 16;
  l.v_copy = (vb + 15) / 16 * 16;
  l.k_sstride = latent_smem_row_stride(kb);
  l.v_sstride = latent_smem_row_stride(vb);
  l.stage_bytes = t * (l.k_sstride + l.v_sstride) + 2 * t * 4;
  int off = l.w8 + l.w8_pad;
  l.off_stages = off;
  off += kLatentWgGroups * kLatentWgStages * l.stage_bytes;
  l.off_ztab = off;
  off += 8 * kLatentWgZStride * 2;
  l.off_beta = off;
  off += kLatentWgHeads * 8 * 4;
  l.off_theta = off;
  off += 64 * 4;
  // Per warpgroup: tile phases [64] float, scores [head][64] float, P tile [8][72] fp16,
  // alpha [8] float.
  l.wg_bytes = 64 * 4 + kLatentWgHeads * t * 4 + 8 * kLatentWgPStride * 2 + 8 * 4;
  l.off_wg = off;
  off += kLatentWgGroups * l.wg_bytes;
  l.off_o = off;
  off += kLatentWgHeads * rank_v * 4;
  l.off_stats = off;
  off += kLatentWgGroups * kLatentWgHeads * 3 * 4;
  l.total = off;
  return l;
}

/// Whether the warpgroup form takes this folded problem: head_dim 128, 4-bit codes, 4 heads per
/// CTA, rank_k a multiple of 32 in [64, 256] and rank_v 64, 128 or 256 (the value columns split
/// into 1, 2 or 4 blocks of 64 over the warpgroup's 4 warps); the factors and two stages per
/// warpgroup then fit in shared memory. The caller also needs an sm_90a build and device.
LKV_HOST_DEVICE constexpr bool latent_wg_takes(int head_dim, int bits, int hpc, int rank_k,
                                               int rank_v) {
  return head_dim == 128 && bits == 4 && hpc == kLatentWgHeads && rank_k % 32 == 0 &&
         rank_k >= 64 && rank_k <= 256 && (rank_v == 64 || rank_v == 128 || rank_v == 256) &&
         latent_wg_smem_layout(rank_k, rank_v).total + 1024 <= 228 * 1024;
}

}  // namespace latentkv::kernels

// ---- Split combine fused with the value up-projection (latent_combine_up.cuh) ---------------

namespace latentkv::kernels {

constexpr int kUpSlices = 4;  ///< CTAs sharing one head's output rows (parallelism at batch 1)
constexpr int kUpThreads = 256;
constexpr int kUpWarps = kUpThreads / 32;
constexpr int kUpMaxVecs = 8;    ///< latent vectors (query heads × sequences) one CTA projects
constexpr int kUpMaxRank = 512;  ///< rank_v: 16-byte B_v fragments of 256 columns per lane
constexpr int kUpMaxItems = 8;   ///< merged latent values per thread: vectors·rank_v <= 2048
constexpr int kUpWeightSlots = 4096;  ///< merge weights per CTA: num_slots of each vector

}  // namespace latentkv::kernels
