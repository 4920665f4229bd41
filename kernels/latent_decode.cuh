// Fused latent decode attention kernel (design §4, §5); host side in src/cuda/latent_decode.cu.
//
// One CTA = (sequence b, block of HPC KV heads of group g, token split). HD/16 warps; warp w owns
// the 8 head dims 8w..8w+7 and their RoPE partners HD/2+8w.. of every head of the block, i.e. one
// m16 tile per head whose rows are (dim d, dim d + HD/2) pairs, so that RoPE stays inside a
// thread and every thread needs one frequency only. Per 64-token tile:
//   1. cp.async pipeline brings the latent rows (codes or fp16) of K and V into shared memory
//      (paged or residual-ring addressing per row, zero fill past the end);
//   2. key rebuild K^T[dims, tokens] = B_k[dims, rank] · H^T by mma.sync with B_k held in
//      registers for the whole CTA: fp16 m16n8k16 on fp16 latents, or int8 m16n8k32 directly on
//      the 4/2-bit codes (3-bit codes are first re-packed as 4-bit), centred by 2^(bits-1); the k
//      order inside a step is permuted so that unpacking codes is two logic ops, and B_i8 is
//      gathered in the same order. For codes the per-token scale s, zero z and the factor scale
//      β are applied to the scores: score = s·(β∘q)·R(B_i8 c') + z'·q·R(β∘rowsum), the second term
//      one small MMA of per-CTA constants against the warp's cos/sin;
//   3. RoPE on the accumulators (angle = φ_tile + t·θ, φ reduced mod 2π in double),
//      fp16 pack + movmatrix turn them into the B fragments of the score MMA S = Q·K^T whose rows
//      are all query heads of the block (GQA reuse); each warp's partial scores go to shared
//      memory and are summed by the softmax pass (online softmax, exp2 domain);
//   4. O[rows, rank_v] += P·H_v by mma.sync, value columns split across warps (values dequantized
//      to fp16 in shared memory first when bits < 16).
// At the end the CTA writes its normalized partial result and log2-sum-exp (or the final output
// when the whole sequence is one split); decode_combine.cuh merges splits.
//
// FOLD form (MHA, latent_query_fold.cuh): steps 2-3 are replaced. Warp w holds the folded
// factors [U|V] of RoPE pairs 8w..8w+7 of every head of the block as B fragments, each 16-token
// slice of the tile is the A operand (tokens = MMA rows), so thread (r, c) gets U·h and V·h of
// pair 8w + 4·ntile + c for tokens r and r+8; its score partial is Σ cos·(U·h) + sin·(V·h) over
// its two pairs, reduce-scattered over the quad into the shared partial scores. For codes,
// score = β·s·(that sum over centred codes) + z'·(a cos/sin MMA against β·Σ_r W8).
// KS (template) is the k-step count rounded up to a power of two, so the k loops unroll; MINB is
// the __launch_bounds__ minimum of CTAs per SM (latent_min_ctas).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "latent_decode_layout.h"
#include "mma_utils.cuh"

namespace latentkv::kernels {

/// Everything the kernel reads, resolved on the host (strides in bytes for the caches).
struct LatentDecodeKernelParams {
  int num_qo_heads, ratio, group_size, rank_k, rank_v, ksteps;
  const int32_t* group_heads;
  const void* q;
  int q_bf16;
  int64_t q_sb, q_sh;
  const uint16_t* b_k;
  const int8_t* b_i8;
  const float* b_i8_scale;
  const int32_t* b_i8_rowsum;
  const double* inv_freq;
  float q_scale;    // sm_scale · log2(e)
  float key_gamma;  // bits < 16: keys enter the score MMA as γ·RoPE(B_i8·(c - o)) (fp16 range)
  const uint8_t *k_codes, *v_codes, *k_sz, *v_sz, *k_ring, *v_ring;
  int64_t k_ps, k_gs, k_ts, v_ps, v_gs, v_ts;
  int64_t k_szps, k_szgs, k_szts, v_szps, v_szgs, v_szts;
  int64_t k_rs, k_rgs, k_rts, v_rs, v_rgs, v_rts;
  int residual, chunk, ring_cap;
  const int32_t *indptr, *indices, *seq_lens;
  int page_size;
  int page_shift = -1;  // log2(page_size) when it is a power of two, else -1
  int mode;             // 0: pages (+ ring rows when bits = 16), 1: the residual ring only
  int tokens_per_split, num_slots, slot_offset;
  float* part_o;    // [batch][num_qo_heads][num_slots][rank_v]
  float* part_lse;  // [batch][num_qo_heads][num_slots], log2 domain
  void* out;
  int out_dtype;
  int64_t out_sb, out_sh;
  float* lse;  // natural log, direct mode only
  // Query-folded key factors (MHA, latent_query_fold.cuh), [batch][num_qo_heads][head_dim][rank_k]
  // rows 2i / 2i+1 = cos / sin weights of RoPE pair i: fp16, and 8-bit (int8; e4m3 for the
  // warpgroup kernel) with one scale per 16 rows plus scale·row sums (bits < 16).
  const uint16_t* w16;
  const int8_t* w8;
  const float* w8_zsum;  // [batch][num_qo_heads][head_dim]
  const float* w8_beta;  // [batch][num_qo_heads][head_dim / 16]: one scale per warp's 16 rows
};

/// Page-table entry of token pos in its sequence: a shift for power-of-two page sizes (the usual
/// 1 and 16), a division otherwise.
__device__ __forceinline__ int page_of(int pos, const LatentDecodeKernelParams& p) {
  return p.page_shift >= 0 ? pos >> p.page_shift : pos / p.page_size;
}

/// Slot of token pos in its page (see page_of).
__device__ __forceinline__ int slot_of(int pos, const LatentDecodeKernelParams& p) {
  return p.page_shift >= 0 ? pos & (p.page_size - 1) : pos % p.page_size;
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ int quantized_len_dev(int tokens, int residual, int chunk) {
  return tokens < residual ? 0 : chunk * ((tokens - residual) / chunk);
}

/// The four byte codes of x as int8(code - OFFSET): byte-wise (x + 0x80 - OFFSET) ^ 0x80.
/// Codes enter the int8 MMAs centred, which keeps the products small and avoids cancelling the
/// zero-point term.
template <int OFFSET>
__device__ __forceinline__ uint32_t centred_s8(uint32_t x) {
  return (x + (0x80u - OFFSET) * 0x01010101u) ^ 0x80808080u;
}

/// Result of a split that holds no token, for the `rows` query rows of the CTA (query head
/// head_of(row)): log2-sum-exp -inf in its slot, or, when the sequence is one split, zero output
/// and lse -inf. Threads tid of nt stride over the writes.
template <class HeadOf>
__device__ __forceinline__ void write_empty_split(const LatentDecodeKernelParams& p, int b,
                                                  int rows, int slot, HeadOf head_of, int tid,
                                                  int nt) {
  const bool direct = p.num_slots == 1;
  for (int i = tid; i < rows * (direct ? p.rank_v + 1 : 1); i += nt) {
    const int row = direct ? i / (p.rank_v + 1) : i, col = direct ? i % (p.rank_v + 1) : 0;
    const int64_t bh = int64_t{b} * p.num_qo_heads + head_of(row);
    if (!direct) {
      p.part_lse[bh * p.num_slots + slot] = -INFINITY;
    } else if (col < p.rank_v) {
      store_out(p.out, int64_t{b} * p.out_sb + head_of(row) * p.out_sh + col, 0.0f, p.out_dtype);
    } else if (p.lse != nullptr) {
      p.lse[bh] = -INFINITY;
    }
  }
}

/// Block index of a CTA running in its own kernel's grid (read where used, as blockIdx).
struct GridBlock {
  __device__ int x() const { return blockIdx.x; }
  __device__ int y() const { return blockIdx.y; }
  __device__ int z() const { return blockIdx.z; }
};

/// Block index of a CTA that runs in another kernel's grid (latent_decode_wgmma_kernel).
struct GivenBlock {
  int bx, by, bz;
  __device__ int x() const { return bx; }
  __device__ int y() const { return by; }
  __device__ int z() const { return bz; }
};

/// One CTA (split blk.x(), head block blk.y(), sequence blk.z()) of latent_decode_kernel; a
/// device function so that the warpgroup kernel can run the fp16 residual-window CTAs in its grid.
template <int HD, int BITS, int HPC, bool FOLD, int KS, class Block>
__device__ __forceinline__ void latent_decode_cta(const LatentDecodeKernelParams p, Block blk) {
  constexpr int NW = HD / 16;
  constexpr int NT = NW * 32;
  constexpr int T = kLatentTile;
  constexpr int HALF = HD / 2;
  constexpr bool kInt = BITS < 16;
  constexpr int STAGES = kInt ? 3 : 2;
  // KS = p.ksteps rounded up to a power of two (latent_key_step_bucket): the k loops unroll into
  // one basic block, so that ptxas can issue the loads of later steps under the MMAs of earlier
  // ones. Fragments of steps >= p.ksteps are zero; fp16 tiles are then read at step
  // p.ksteps - 1 (finite values) instead of past the row.
  static_assert(HPC * KS <= 32, "factor fragments exceed the register budget");
  constexpr int NB = HPC <= 2 ? 4 : 2;  // n8 token tiles per key-rebuild chunk
  // Codes enter the int8 MMA centred, c - 2^(bits-1) (centred_s8).
  constexpr int kCodeOffset = kInt ? 1 << ((BITS == 2 ? 2 : BITS == 3 ? 3 : 4) - 1) : 0;
  constexpr int TPR = NT / kLatentMaxRows;  // softmax threads per query row
  constexpr int SROW = T + kLatentSPad;
  constexpr int PROW = T + 8;
  extern __shared__ __align__(128) uint8_t smem[];

  const LatentSmemLayout lay = latent_smem_layout(BITS, p.rank_k, p.rank_v, NW);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int r = lane / 4, c = lane % 4;
  const int b = blk.z();
  const int chunks = p.group_size / HPC;
  const int g = blk.y() / chunks;
  const int first_slot = (blk.y() % chunks) * HPC;
  const int rows = HPC * p.ratio;
  const int slot = p.slot_offset + blk.x();
  const bool direct = p.num_slots == 1;

  const int seq_len = p.seq_lens[b];
  const int qlen = quantized_len_dev(seq_len, p.residual, p.chunk);
  int lo, hi;
  if (p.mode == 0) {
    lo = blk.x() * p.tokens_per_split;
    hi = min(lo + p.tokens_per_split, kInt ? qlen : seq_len);
  } else {  // residual ring: one tokens_per_split slice per slot
    lo = qlen + blk.x() * p.tokens_per_split;
    hi = min(lo + p.tokens_per_split, seq_len);
  }

  int kv_head[HPC];
#pragma unroll
  for (int j = 0; j < HPC; ++j) kv_head[j] = p.group_heads[g * p.group_size + first_slot + j];
  auto qo_head = [&](int row) {
    int h = 0;
#pragma unroll
    for (int j = 0; j < HPC; ++j)
      if (row / p.ratio == j) h = kv_head[j] * p.ratio + row % p.ratio;
    return h;
  };

  if (lo >= hi) {  // nothing to attend in this split
    write_empty_split(p, b, rows, slot, qo_head, tid, NT);
    return;
  }

  // ---- per-thread constants: B_k (or folded W) fragments, query fragments, RoPE frequency ---
  const int dim_lo = 8 * warp + r, dim_hi = dim_lo + HALF;
  uint32_t bk[HPC][KS][4];
  uint32_t qa[HPC][4];
  uint32_t az[4] = {0, 0, 0, 0};
  // Folded path: this thread's accumulator columns 2c / 2c+1 of n-tile jj are the cos / sin
  // weights of RoPE pair 8·warp + 4·jj + c; the head whose folded scores it writes, and its scale.
  const int pair0 = 8 * warp + c, pair1 = pair0 + 4;
  const int own_head = HPC == 4 ? c : HPC == 2 ? c >> 1 : 0;
  float own_beta = 1.0f;
  if constexpr (FOLD) {
#pragma unroll
    for (int j = 0; j < HPC; ++j) {
      const int64_t bh = int64_t{b} * p.num_qo_heads + kv_head[j];
#pragma unroll
      for (int s = 0; s < KS; ++s)
#pragma unroll
        for (int jj = 0; jj < 2; ++jj) {
          // B fragment (k × n8, column n = r): W row 16·warp + 8·jj + r.
          const int64_t row = (bh * HD + 16 * warp + 8 * jj + r) * p.rank_k;
          uint32_t b0 = 0, b1 = 0;
          if (s < p.ksteps) {
            if constexpr (!kInt) {
              const uint16_t* w = p.w16 + row + 16 * s + 2 * c;
              b0 = *reinterpret_cast<const uint32_t*>(w);
              b1 = *reinterpret_cast<const uint32_t*>(w + 8);
            } else if constexpr (BITS == 2) {
              // Step s, k 4c+i <-> code 64(s/2) + 16c + 4i + 2(s%2), k 16+4c+i <-> that + 1.
              const int base = 64 * (s / 2) + 16 * c, jb = 2 * (s % 2);
              if (base < p.rank_k) {
                const uint4 x = *reinterpret_cast<const uint4*>(p.w8 + row + base);
                const uint32_t s0 = (4 + jb) << 4 | jb, s1 = (5 + jb) << 4 | (jb + 1);
                b0 = prmt(prmt(x.x, x.y, s0), prmt(x.z, x.w, s0), 0x5410);
                b1 = prmt(prmt(x.x, x.y, s1), prmt(x.z, x.w, s1), 0x5410);
              }
            } else {
              // Step s, k 4c+i <-> code 32s + 8c + 2i (low nibbles), k 16+4c+i <-> that + 1.
              const int base = 32 * s + 8 * c;
              if (base < p.rank_k) {
                const uint2 x = *reinterpret_cast<const uint2*>(p.w8 + row + base);
                b0 = prmt(x.x, x.y, 0x6420);
                b1 = prmt(x.x, x.y, 0x7531);
              }
            }
          }
          bk[j][s][2 * jj] = b0;
          bk[j][s][2 * jj + 1] = b1;
        }
    }
    if constexpr (kInt) {
      // Zero-point term: B[κ][n] = β·Σ_r W8 of W row 16·warp + κ, for head n·HPC/8.
      const int zh = r * HPC / 8;
      const int64_t zrow =
          (int64_t{b} * p.num_qo_heads + p.group_heads[g * p.group_size + first_slot + zh]) * HD +
          16 * warp + 2 * c;
      az[0] = pack_half2(p.w8_zsum[zrow], p.w8_zsum[zrow + 1]);
      az[1] = pack_half2(p.w8_zsum[zrow + 8], p.w8_zsum[zrow + 9]);
      own_beta = p.w8_beta[(int64_t{b} * p.num_qo_heads +
                            p.group_heads[g * p.group_size + first_slot + own_head]) *
                               (HD / 16) +
                           warp];
    }
  } else {
#pragma unroll
    for (int j = 0; j < HPC; ++j) {
      const int64_t row0 = (int64_t{g} * p.group_size + first_slot + j) * HD;
      const int64_t rlo = row0 + dim_lo, rhi = row0 + dim_hi;
#pragma unroll
      for (int s = 0; s < KS; ++s) {
        uint32_t a[4] = {0, 0, 0, 0};
        if (s < p.ksteps) {
          if constexpr (!kInt) {
            const uint16_t* blo = p.b_k + rlo * p.rank_k + 16 * s + 2 * c;
            const uint16_t* bhi = p.b_k + rhi * p.rank_k + 16 * s + 2 * c;
            a[0] = *reinterpret_cast<const uint32_t*>(blo);
            a[1] = *reinterpret_cast<const uint32_t*>(bhi);
            a[2] = *reinterpret_cast<const uint32_t*>(blo + 8);
            a[3] = *reinterpret_cast<const uint32_t*>(bhi + 8);
          } else if constexpr (BITS == 2) {
            // Step s reads codes 64(s/2) + 16c + 4i + jb (i = byte), jb = 2(s%2) (+1 for a2/a3).
            const int base = 64 * (s / 2) + 16 * c, jb = 2 * (s % 2);
            if (base < p.rank_k) {
              const uint4 wl = *reinterpret_cast<const uint4*>(p.b_i8 + rlo * p.rank_k + base);
              const uint4 wh = *reinterpret_cast<const uint4*>(p.b_i8 + rhi * p.rank_k + base);
              const uint32_t s0 = (4 + jb) << 4 | jb, s1 = (5 + jb) << 4 | (jb + 1);
              a[0] = prmt(prmt(wl.x, wl.y, s0), prmt(wl.z, wl.w, s0), 0x5410);
              a[1] = prmt(prmt(wh.x, wh.y, s0), prmt(wh.z, wh.w, s0), 0x5410);
              a[2] = prmt(prmt(wl.x, wl.y, s1), prmt(wl.z, wl.w, s1), 0x5410);
              a[3] = prmt(prmt(wh.x, wh.y, s1), prmt(wh.z, wh.w, s1), 0x5410);
            }
          } else {
            // 4-bit (and re-packed 3-bit) codes: step s reads codes 32s + 8c + {0,2,4,6} (a0/a1)
            // and 32s + 8c + {1,3,5,7} (a2/a3).
            const int base = 32 * s + 8 * c;
            if (base < p.rank_k) {
              const uint2 wl = *reinterpret_cast<const uint2*>(p.b_i8 + rlo * p.rank_k + base);
              const uint2 wh = *reinterpret_cast<const uint2*>(p.b_i8 + rhi * p.rank_k + base);
              a[0] = prmt(wl.x, wl.y, 0x6420);
              a[1] = prmt(wh.x, wh.y, 0x6420);
              a[2] = prmt(wl.x, wl.y, 0x7531);
              a[3] = prmt(wh.x, wh.y, 0x7531);
            }
          }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) bk[j][s][i] = a[i];
      }
    }
    // Query fragments of the score MMA (A = Q[rows, dims of this warp]), pre-scaled by
    // sm_scale·log2(e). For bits < 16 the score of token t is
    //   s_t·(β∘q)·R_t(B_i8 c_t) + z_t·q·R_t(β∘rowsum)
    // (β is shared by a RoPE pair, so it commutes with the rotation): the first term is the score
    // MMA with q scaled by β/γ against keys γ·R(B_i8 c); the second is a small MMA of constants A_z
    // against the cos/sin of the warp's 8 frequencies, done once for all heads of the CTA.
    {
      float zv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
      for (int j = 0; j < HPC; ++j) {
        const int64_t row0 = (int64_t{g} * p.group_size + first_slot + j) * HD;
        float v[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const int row = r + 8 * (e / 2 % 2);
          const int dim = (e < 4 ? 8 * warp : HALF + 8 * warp) + 2 * c + e % 2;
          v[e] = 0.0f;
          if (row < rows && row / p.ratio == j) {
            const int64_t h = kv_head[j] * p.ratio + row % p.ratio;
            const int64_t qoff = int64_t{b} * p.q_sb + h * p.q_sh;
            v[e] = load_q(p.q, qoff + dim, p.q_bf16) * p.q_scale;
            if constexpr (kInt) {
              // A_z[row][κ]: κ < 8 -> cos weight of frequency f, κ >= 8 -> sin weight.
              const int f = 8 * warp + 2 * c + e % 2;
              const float beta = p.b_i8_scale[row0 + f];
              const float rs = static_cast<float>(p.b_i8_rowsum[row0 + f]);
              const float rs_h = static_cast<float>(p.b_i8_rowsum[row0 + f + HALF]);
              const float qf = load_q(p.q, qoff + f, p.q_bf16) * p.q_scale;
              const float qh = load_q(p.q, qoff + f + HALF, p.q_bf16) * p.q_scale;
              zv[e] = e < 4 ? beta * (qf * rs + qh * rs_h) : beta * (qh * rs - qf * rs_h);
              v[e] *= beta / p.key_gamma;
            }
          }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) qa[j][i] = pack_half2(v[2 * i], v[2 * i + 1]);
      }
      if constexpr (kInt) {
#pragma unroll
        for (int i = 0; i < 4; ++i) az[i] = pack_half2(zv[2 * i], zv[2 * i + 1]);
      }
    }
  }
  // RoPE frequencies: the rebuild form rotates the dims dim_lo / dim_hi (one frequency); the
  // folded form weights this thread's two pairs pair0 / pair1 (the second angle is FOLD only).
  const double theta = p.inv_freq[FOLD ? pair0 : dim_lo];
  const float theta_f = static_cast<float>(theta);
  const double theta1 = FOLD ? p.inv_freq[pair1] : 0.0;
  const float theta1_f = static_cast<float>(theta1);

  float* s_part = reinterpret_cast<float*>(smem + lay.off_s);
  __half* p_tile = reinterpret_cast<__half*>(smem + lay.off_p);
  float* o_acc = reinterpret_cast<float*>(smem + lay.off_o);
  float* alpha_s = reinterpret_cast<float*>(smem + lay.off_stats);
  float* m_s = alpha_s + kLatentMaxRows;
  float* l_s = m_s + kLatentMaxRows;
  for (int i = tid; i < kLatentMaxRows * lay.o_stride; i += NT) o_acc[i] = 0.0f;

  // ---- tile loader: LTPR threads per token row, one page lookup per thread and tile, made one
  // tile ahead so that issuing the copies never waits for the page table.
  constexpr int LTPR = NT / T;
  const int lrow = tid / LTPR, lsub = tid % LTPR;
  const int64_t page_base = p.indptr[b];
  const int ntiles = (hi - lo + T - 1) / T;
  // Page of this thread's row in tile `it`; -1 past the end, -2 for a residual-ring row.
  auto row_page = [&](int it) -> int64_t {
    const int pos = lo + it * T + lrow;
    if (pos >= hi) return -1;
    if (p.mode == 0 && pos < qlen) return p.indices[page_base + pos / p.page_size];
    return -2;
  };
  auto load_tile = [&](int it, int64_t page) {
    uint8_t* sk = smem + (it % STAGES) * lay.stage_bytes;
    uint8_t* sv = sk + T * lay.k_sstride;
    const int pos = lo + it * T + lrow;
    const uint8_t* ksrc = p.k_codes;
    const uint8_t* vsrc = p.k_codes;
    int bytes = 0;
    if (page >= 0) {
      const int64_t sl = pos % p.page_size;
      ksrc = p.k_codes + page * p.k_ps + g * p.k_gs + sl * p.k_ts;
      vsrc = p.v_codes + page * p.v_ps + g * p.v_gs + sl * p.v_ts;
      bytes = 16;
    } else if (page == -2) {
      const int64_t sl = pos % p.ring_cap;
      ksrc = p.k_ring + b * p.k_rs + g * p.k_rgs + sl * p.k_rts;
      vsrc = p.v_ring + b * p.v_rs + g * p.v_rgs + sl * p.v_rts;
      bytes = 16;
    }
    uint8_t* kd = sk + lrow * lay.k_sstride;
    uint8_t* vd = sv + lrow * lay.v_sstride;
    for (int ch = lsub; ch < lay.k_copy / 16; ch += LTPR)
      cp_async_16(kd + 16 * ch, bytes ? ksrc + 16 * ch : ksrc, bytes);
    for (int ch = lsub; ch < lay.v_copy / 16; ch += LTPR)
      cp_async_16(vd + 16 * ch, bytes ? vsrc + 16 * ch : vsrc, bytes);
    if constexpr (kInt) {
      uint8_t* sz = sv + T * lay.v_sstride;  // [2][T] (scale, zero) fp16 pairs: K then V
      if (lsub < 2) {
        const bool is_v = lsub == 1;
        const uint8_t* src = p.k_sz;
        if (page >= 0) {
          const int64_t sl = pos % p.page_size;
          src = is_v ? p.v_sz + page * p.v_szps + g * p.v_szgs + sl * p.v_szts
                     : p.k_sz + page * p.k_szps + g * p.k_szgs + sl * p.k_szts;
        }
        cp_async_4(sz + (is_v ? T : 0) * 4 + lrow * 4, src, page >= 0 ? 4 : 0);
      }
    }
  };

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ntiles) load_tile(s, row_page(s));
    cp_async_commit();
  }
  int64_t next_page = row_page(STAGES - 1);

  // Softmax state of this thread's row (identical in the TPR threads of a row).
  const int srow = tid / TPR, stl = tid % TPR;
  float m_run = -INFINITY, l_run = 0.0f;
  // RoPE base angle of the current tile, reduced modulo 2π in double.
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double tile_step = fmod(T * theta, kTwoPi);
  double phi = fmod(static_cast<double>(lo) * theta, kTwoPi);
  const double tile_step1 = fmod(T * theta1, kTwoPi);
  double phi1 = fmod(static_cast<double>(lo) * theta1, kTwoPi);

  for (int it = 0; it < ntiles; ++it) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    if (it + STAGES - 1 < ntiles) load_tile(it + STAGES - 1, next_page);
    cp_async_commit();
    next_page = row_page(it + STAGES);

    uint8_t* sk = smem + (it % STAGES) * lay.stage_bytes;
    uint8_t* sv = sk + T * lay.k_sstride;
    const int valid = min(T, hi - (lo + it * T));
    const __half2* sz_k = reinterpret_cast<const __half2*>(sv + T * lay.v_sstride);
    const __half2* sz_v = sz_k + T;

    const uint8_t* ktile = sk;
    int kstride = lay.k_sstride;
    const uint8_t* vtile = sv;
    int vstride = lay.v_sstride;
    if constexpr (kInt) {
      // Values: dequantize to fp16 (fma(code, scale, zero) in fp32, as dequantize_latent()).
      uint8_t* vt = smem + lay.off_vtile;
      const int vch = p.rank_v / 8;
      for (int idx = tid; idx < T * vch; idx += NT) {
        const int row = idx / vch, ch = idx % vch;
        uint4 outv = make_uint4(0, 0, 0, 0);
        if (row < valid) {
          const uint8_t* src = sv + row * lay.v_sstride + ch * BITS;
          uint32_t w;
          if constexpr (BITS == 4) {
            w = *reinterpret_cast<const uint32_t*>(src);
          } else if constexpr (BITS == 2) {
            w = *reinterpret_cast<const uint16_t*>(src);
          } else {
            w = src[0] | uint32_t{src[1]} << 8 | uint32_t{src[2]} << 16;
          }
          const float2 szf = __half22float2(sz_v[row]);
          uint32_t h[4];
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float x0 =
                fmaf(static_cast<float>((w >> (BITS * 2 * i)) & ((1u << BITS) - 1)), szf.x, szf.y);
            const float x1 = fmaf(
                static_cast<float>((w >> (BITS * (2 * i + 1))) & ((1u << BITS) - 1)), szf.x, szf.y);
            h[i] = pack_half2(x0, x1);
          }
          outv = make_uint4(h[0], h[1], h[2], h[3]);
        }
        *reinterpret_cast<uint4*>(vt + row * lay.vtile_stride + ch * 16) = outv;
      }
      vtile = vt;
      vstride = lay.vtile_stride;
      if constexpr (BITS == 3) {
        // Keys: re-pack 8 codes of 3 bits (3 bytes) as 8 nibbles, so the 4-bit MMA path applies.
        uint8_t* k4 = smem + lay.off_k4;
        const int groups = p.ksteps * 4;  // 4-byte groups per re-packed row
        for (int idx = tid; idx < T * groups; idx += NT) {
          const int row = idx / groups, grp = idx % groups;
          uint32_t out = 0;
          if (row < valid && grp * 8 < p.rank_k) {
            const uint8_t* src = sk + row * lay.k_sstride + grp * 3;
            const uint32_t w = src[0] | uint32_t{src[1]} << 8 | uint32_t{src[2]} << 16;
#pragma unroll
            for (int i = 0; i < 8; ++i) out |= ((w >> (3 * i)) & 7u) << (4 * i);
          }
          *reinterpret_cast<uint32_t*>(k4 + row * lay.k4_stride + grp * 4) = out;
        }
        ktile = k4;
        kstride = lay.k4_stride;
      }
      __syncthreads();
    }

    const float phi_f = static_cast<float>(phi);
    if constexpr (FOLD) {
      // ---- folded scores: per m16 token tile, [A|B] = H·W^T by mma.sync (tokens = rows), then
      // score partial = Σ over this thread's 2 pairs of cos·A + sin·B, summed over the quad.
      const float phi1_f = static_cast<float>(phi1);
      const uint8_t* arow =
          ktile + ((lane & 7) + ((lane >> 3) & 1) * 8) * kstride + (lane >> 4) * 16;
#pragma unroll 1
      for (int m = 0; m < T / 16; ++m) {
        const int tlo = 16 * m + r;
        float c0l, s0l, c0h, s0h, c1l, s1l, c1h, s1h;
        __sincosf(fmaf(static_cast<float>(tlo), theta_f, phi_f), &s0l, &c0l);
        __sincosf(fmaf(static_cast<float>(tlo + 8), theta_f, phi_f), &s0h, &c0h);
        __sincosf(fmaf(static_cast<float>(tlo), theta1_f, phi1_f), &s1l, &c1l);
        __sincosf(fmaf(static_cast<float>(tlo + 8), theta1_f, phi1_f), &s1h, &c1h);
        const uint8_t* am = arow + 16 * m * kstride;
        float x[2 * HPC];  // [head][token r / r+8]
        if constexpr (!kInt) {
          float acc[HPC][2][4];
#pragma unroll
          for (int j = 0; j < HPC; ++j)
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[j][i / 4][i % 4] = 0.0f;
#pragma unroll
          for (int s = 0; s < KS; ++s) {
            uint32_t a[4];
            ldmatrix_x4(a, am + 32 * min(s, p.ksteps - 1));
#pragma unroll
            for (int j = 0; j < HPC; ++j) {
              mma_f16(acc[j][0], a, bk[j][s][0], bk[j][s][1]);
              mma_f16(acc[j][1], a, bk[j][s][2], bk[j][s][3]);
            }
          }
#pragma unroll
          for (int j = 0; j < HPC; ++j) {
            x[2 * j] = fmaf(c0l, acc[j][0][0],
                            fmaf(s0l, acc[j][0][1], fmaf(c1l, acc[j][1][0], s1l * acc[j][1][1])));
            x[2 * j + 1] =
                fmaf(c0h, acc[j][0][2],
                     fmaf(s0h, acc[j][0][3], fmaf(c1h, acc[j][1][2], s1h * acc[j][1][3])));
          }
        } else {
          int acc[HPC][2][4];
#pragma unroll
          for (int j = 0; j < HPC; ++j)
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[j][i / 4][i % 4] = 0;
          // ldmatrix.x4: (rows r, segment s), (rows r+8, s), (r, s+1), (r+8, s+1).
          auto step = [&](int s, uint32_t wl, uint32_t wh, int sh, uint32_t mask) {
            const uint32_t a[4] = {
                centred_s8<kCodeOffset>((wl >> sh) & mask),
                centred_s8<kCodeOffset>((wh >> sh) & mask),
                centred_s8<kCodeOffset>((wl >> (sh + (BITS == 2 ? 2 : 4))) & mask),
                centred_s8<kCodeOffset>((wh >> (sh + (BITS == 2 ? 2 : 4))) & mask)};
#pragma unroll
            for (int j = 0; j < HPC; ++j) {
              mma_s8(acc[j][0], a, bk[j][s][0], bk[j][s][1]);
              mma_s8(acc[j][1], a, bk[j][s][2], bk[j][s][3]);
            }
          };
          if constexpr (BITS == 2) {
#pragma unroll
            for (int s4 = 0; s4 < KS; s4 += 4) {
              uint32_t w[4];
              // Segment s4/2 (+1 for lanes 16-31), clamped to the row's last one: steps past
              // p.ksteps have zero factor fragments, and an unclamped read would leave the row
              // (for the last token row, into the partial scores other warps are writing).
              const int seg = min(s4 / 2 + (lane >> 4), p.ksteps / 2 - 1) - (lane >> 4);
              ldmatrix_x4(w, am + 16 * seg);
#pragma unroll
              for (int h = 0; h < 4; ++h)
                if (s4 + h < KS)
                  step(s4 + h, w[2 * (h / 2)], w[2 * (h / 2) + 1], 4 * (h % 2), 0x03030303u);
            }
          } else {
#pragma unroll
            for (int s2 = 0; s2 < KS; s2 += 2) {
              uint32_t w[4];
              const int seg = min(s2 + (lane >> 4), p.ksteps - 1) - (lane >> 4);  // as above
              ldmatrix_x4(w, am + 16 * seg);
              step(s2, w[0], w[1], 0, 0x0F0F0F0Fu);
              if (s2 + 1 < KS) step(s2 + 1, w[2], w[3], 0, 0x0F0F0F0Fu);
            }
          }
#pragma unroll
          for (int j = 0; j < HPC; ++j) {
            x[2 * j] = fmaf(c0l, static_cast<float>(acc[j][0][0]),
                            fmaf(s0l, static_cast<float>(acc[j][0][1]),
                                 fmaf(c1l, static_cast<float>(acc[j][1][0]),
                                      s1l * static_cast<float>(acc[j][1][1]))));
            x[2 * j + 1] = fmaf(c0h, static_cast<float>(acc[j][0][2]),
                                fmaf(s0h, static_cast<float>(acc[j][0][3]),
                                     fmaf(c1h, static_cast<float>(acc[j][1][2]),
                                          s1h * static_cast<float>(acc[j][1][3]))));
          }
        }
        // Quad reduce-scatter: lane c ends with the values own() names.
        constexpr int NV = 2 * HPC;
        float own[NV >= 4 ? NV / 4 : 1];
        if constexpr (NV >= 4) {
          float y[NV / 2];
          const bool up2 = c & 2;
#pragma unroll
          for (int i = 0; i < NV / 2; ++i) {
            const float send = up2 ? x[i] : x[i + NV / 2];
            y[i] = (up2 ? x[i + NV / 2] : x[i]) + __shfl_xor_sync(~0u, send, 2);
          }
          const bool up1 = c & 1;
#pragma unroll
          for (int i = 0; i < NV / 4; ++i) {
            const float send = up1 ? y[i] : y[i + NV / 4];
            own[i] = (up1 ? y[i + NV / 4] : y[i]) + __shfl_xor_sync(~0u, send, 1);
          }
        } else {
          const bool up2 = c & 2;
          const float send = up2 ? x[0] : x[1];
          own[0] = (up2 ? x[1] : x[0]) + __shfl_xor_sync(~0u, send, 2);
          own[0] += __shfl_xor_sync(~0u, own[0], 1);
        }
        float zacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if constexpr (kInt) {
          const uint32_t za[4] = {pack_half2(c0l, s0l), pack_half2(c0h, s0h), pack_half2(c1l, s1l),
                                  pack_half2(c1h, s1h)};
          mma_f16(zacc, za, az[0], az[1]);
        }
        // Owned values: HPC 4 -> head c, tokens r and r+8; HPC 2 -> head c/2, token r + 8(c%2);
        // HPC 1 -> head 0, token r + 8(c/2), written by even lanes.
        if (HPC > 1 || (c & 1) == 0) {
#pragma unroll
          for (int i = 0; i < (NV >= 4 ? NV / 4 : 1); ++i) {
            const int hi8 = HPC == 4 ? i : HPC == 2 ? (c & 1) : (c >> 1);
            const int tok = tlo + 8 * hi8;
            float v = own[i];
            if constexpr (kInt) {
              const float2 sz = __half22float2(sz_k[tok]);
              v = fmaf(own_beta * sz.x, v,
                       fmaf(kCodeOffset, sz.x, sz.y) * (hi8 ? zacc[2] : zacc[0]));
            }
            s_part[(warp * kLatentMaxRows + own_head) * SROW + tok] = v;
          }
        }
      }
      phi1 += tile_step1;
      if (phi1 >= kTwoPi) phi1 -= kTwoPi;
    } else {
      // ---- key rebuild, RoPE, partial scores ----------------------------------------------------
      // Tokens are taken NB n8 tiles at a time: HPC·NB independent accumulators per warp.
#pragma unroll 1
      for (int n0 = 0; n0 < T; n0 += 8 * NB) {
        float kacc[HPC][NB][4];
        if constexpr (!kInt) {
#pragma unroll
          for (int j = 0; j < HPC; ++j)
#pragma unroll
            for (int n = 0; n < NB; ++n)
#pragma unroll
              for (int i = 0; i < 4; ++i) kacc[j][n][i] = 0.0f;
          // ldmatrix.x4: (tokens +0..7, k 0..7), (+0..7, k 8..15), (+8..15, k 0..7), (+8..15,
          // k 8..15)
          const uint8_t* arow =
              ktile + (n0 + (lane / 16) * 8 + lane % 8) * kstride + ((lane / 8) & 1) * 16;
#pragma unroll
          for (int s = 0; s < KS; ++s) {
#pragma unroll
            for (int h = 0; h < NB / 2; ++h) {
              uint32_t bf[4];
              ldmatrix_x4(bf, arow + 16 * h * kstride + 32 * min(s, p.ksteps - 1));
#pragma unroll
              for (int j = 0; j < HPC; ++j) {
                mma_f16(kacc[j][2 * h], bk[j][s], bf[0], bf[1]);
                mma_f16(kacc[j][2 * h + 1], bk[j][s], bf[2], bf[3]);
              }
            }
          }
        } else {
          int iacc[HPC][NB][4];
#pragma unroll
          for (int j = 0; j < HPC; ++j)
#pragma unroll
            for (int n = 0; n < NB; ++n)
#pragma unroll
              for (int i = 0; i < 4; ++i) iacc[j][n][i] = 0;
          // ldmatrix.x{NB}: matrix n = tokens n0+8n..+7 of one 16-byte code segment.
          const uint8_t* arow = ktile + (n0 + (lane / 8) % NB * 8 + lane % 8) * kstride;
          auto load_seg = [&](int seg, uint32_t(&w)[NB]) {
            if constexpr (NB == 4) {
              ldmatrix_x4(w, arow + 16 * seg);
            } else {
              ldmatrix_x2(w[0], w[1], arow + 16 * seg);
            }
          };
          if constexpr (BITS == 2) {
#pragma unroll
            for (int s2 = 0; s2 < KS / 2; ++s2) {
              {
                uint32_t w[NB];
                // Clamped to the row's last segment (steps past p.ksteps have zero fragments).
                load_seg(min(s2, p.ksteps / 2 - 1), w);
#pragma unroll
                for (int h = 0; h < 2; ++h)
#pragma unroll
                  for (int n = 0; n < NB; ++n) {
                    const uint32_t b0 = centred_s8<kCodeOffset>((w[n] >> (4 * h)) & 0x03030303u);
                    const uint32_t b1 =
                        centred_s8<kCodeOffset>((w[n] >> (4 * h + 2)) & 0x03030303u);
#pragma unroll
                    for (int j = 0; j < HPC; ++j) mma_s8(iacc[j][n], bk[j][2 * s2 + h], b0, b1);
                  }
              }
            }
          } else {
#pragma unroll
            for (int s = 0; s < KS; ++s) {
              {
                uint32_t w[NB];
                load_seg(min(s, p.ksteps - 1), w);  // clamped as above
#pragma unroll
                for (int n = 0; n < NB; ++n) {
                  const uint32_t b0 = centred_s8<kCodeOffset>(w[n] & 0x0F0F0F0Fu);
                  const uint32_t b1 = centred_s8<kCodeOffset>((w[n] >> 4) & 0x0F0F0F0Fu);
#pragma unroll
                  for (int j = 0; j < HPC; ++j) mma_s8(iacc[j][n], bk[j][s], b0, b1);
                }
              }
            }
          }
          // Raw integer products; scale/zero and β are applied on the scores (see the prologue).
#pragma unroll
          for (int n = 0; n < NB; ++n)
#pragma unroll
            for (int j = 0; j < HPC; ++j)
#pragma unroll
              for (int i = 0; i < 4; ++i) kacc[j][n][i] = static_cast<float>(iacc[j][n][i]);
        }
        // RoPE (pair dim_lo / dim_hi at tokens t0, t0+1) and the score MMA.
        // Two accumulators per n8 tile (even / odd heads) halve the dependent MMA chain.
        float sacc[NB][4], sacc2[NB][4];
#pragma unroll
        for (int n = 0; n < NB; ++n) {
#pragma unroll
          for (int i = 0; i < 4; ++i) sacc[n][i] = sacc2[n][i] = 0.0f;
          const int t0 = n0 + 8 * n + 2 * c;
          float sn0, cs0, sn1, cs1;
          __sincosf(fmaf(static_cast<float>(t0), theta_f, phi_f), &sn0, &cs0);
          __sincosf(fmaf(static_cast<float>(t0 + 1), theta_f, phi_f), &sn1, &cs1);
          const float gm = kInt ? p.key_gamma : 1.0f;
          const float c0 = cs0 * gm, s0 = sn0 * gm, c1 = cs1 * gm, s1 = sn1 * gm;
#pragma unroll
          for (int j = 0; j < HPC; ++j) {
            const float* k = kacc[j][n];
            const uint32_t klo = pack_half2(k[0] * c0 - k[2] * s0, k[1] * c1 - k[3] * s1);
            const uint32_t khi = pack_half2(k[2] * c0 + k[0] * s0, k[3] * c1 + k[1] * s1);
            mma_f16(j % 2 ? sacc2[n] : sacc[n], qa[j], movmatrix_trans(klo), movmatrix_trans(khi));
          }
#pragma unroll
          for (int i = 0; i < 4; ++i) sacc[n][i] += sacc2[n][i];
          if constexpr (kInt) {
            float zacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            mma_f16(zacc, az, movmatrix_trans(pack_half2(cs0, cs1)),
                    movmatrix_trans(pack_half2(sn0, sn1)));
            // Centred codes: zero' = zero + offset·scale.
            const float2 sz0 = __half22float2(sz_k[t0]), sz1 = __half22float2(sz_k[t0 + 1]);
            const float z0 = fmaf(kCodeOffset, sz0.x, sz0.y), z1 = fmaf(kCodeOffset, sz1.x, sz1.y);
            sacc[n][0] = fmaf(sacc[n][0], sz0.x, zacc[0] * z0);
            sacc[n][1] = fmaf(sacc[n][1], sz1.x, zacc[1] * z1);
            sacc[n][2] = fmaf(sacc[n][2], sz0.x, zacc[2] * z0);
            sacc[n][3] = fmaf(sacc[n][3], sz1.x, zacc[3] * z1);
          }
        }
        float* srow = s_part + (warp * kLatentMaxRows + r) * SROW + n0 + 2 * c;
#pragma unroll
        for (int n = 0; n < NB; ++n) {
          *reinterpret_cast<float2*>(srow + 8 * n) = make_float2(sacc[n][0], sacc[n][1]);
          *reinterpret_cast<float2*>(srow + 8 * SROW + 8 * n) = make_float2(sacc[n][2], sacc[n][3]);
        }
      }
    }
    phi += tile_step;
    if (phi >= kTwoPi) phi -= kTwoPi;
    __syncthreads();

    // ---- online softmax over the tile (exp2 domain; scores already scaled by log2 e) -------
    {
      float sv_[T / TPR];
      float mt = -INFINITY;
#pragma unroll
      for (int i = 0; i < T / TPR; ++i) {
        const int tok = stl + TPR * i;
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; ++w) s += s_part[(w * kLatentMaxRows + srow) * SROW + tok];
        if (tok >= valid || srow >= rows) s = -INFINITY;
        sv_[i] = s;
        mt = fmaxf(mt, s);
      }
#pragma unroll
      for (int off = TPR / 2; off > 0; off /= 2) mt = fmaxf(mt, __shfl_xor_sync(~0u, mt, off));
      const float m_new = fmaxf(m_run, mt);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = fast_exp2(m_run - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < T / TPR; ++i) {
        const float pv = fast_exp2(sv_[i] - m_use);
        p_tile[srow * PROW + stl + TPR * i] = __float2half_rn(pv);
        sum += pv;
      }
#pragma unroll
      for (int off = TPR / 2; off > 0; off /= 2) sum += __shfl_xor_sync(~0u, sum, off);
      l_run = l_run * alpha + sum;
      m_run = m_new;
      if (stl == 0) alpha_s[srow] = alpha;
    }
    __syncthreads();

    // ---- O = alpha·O + P·H_v (value columns split across warps) -----------------------------
    {
      const int pairs = p.rank_v / 16;
      const int ppw = (pairs + NW - 1) / NW;
      float o[kLatentMaxVPairs][2][4];
      const float a_lo = alpha_s[r], a_hi = alpha_s[r + 8];
#pragma unroll
      for (int vp = 0; vp < kLatentMaxVPairs; ++vp) {
        const int pair = warp * ppw + vp;
        if (vp < ppw && pair < pairs) {
#pragma unroll
          for (int n = 0; n < 2; ++n) {
            const float* orow = o_acc + r * lay.o_stride + pair * 16 + 8 * n + 2 * c;
            const float2 x = *reinterpret_cast<const float2*>(orow);
            const float2 y = *reinterpret_cast<const float2*>(orow + 8 * lay.o_stride);
            o[vp][n][0] = x.x * a_lo;
            o[vp][n][1] = x.y * a_lo;
            o[vp][n][2] = y.x * a_hi;
            o[vp][n][3] = y.y * a_hi;
          }
        }
      }
#pragma unroll
      for (int kc = 0; kc < T / 16; ++kc) {
        uint32_t pa[4];
        ldmatrix_x4(pa,
                    p_tile + (((lane / 8) & 1) * 8 + lane % 8) * PROW + kc * 16 + (lane / 16) * 8);
#pragma unroll
        for (int vp = 0; vp < kLatentMaxVPairs; ++vp) {
          const int pair = warp * ppw + vp;
          if (vp < ppw && pair < pairs) {
            uint32_t vb[4];
            ldmatrix_x4_trans(vb, vtile + (kc * 16 + ((lane / 8) & 1) * 8 + lane % 8) * vstride +
                                      (pair * 16 + (lane / 16) * 8) * 2);
            mma_f16(o[vp][0], pa, vb[0], vb[1]);
            mma_f16(o[vp][1], pa, vb[2], vb[3]);
          }
        }
      }
#pragma unroll
      for (int vp = 0; vp < kLatentMaxVPairs; ++vp) {
        const int pair = warp * ppw + vp;
        if (vp < ppw && pair < pairs) {
#pragma unroll
          for (int n = 0; n < 2; ++n) {
            float* orow = o_acc + r * lay.o_stride + pair * 16 + 8 * n + 2 * c;
            *reinterpret_cast<float2*>(orow) = make_float2(o[vp][n][0], o[vp][n][1]);
            *reinterpret_cast<float2*>(orow + 8 * lay.o_stride) =
                make_float2(o[vp][n][2], o[vp][n][3]);
          }
        }
      }
    }
  }
  cp_async_wait<0>();

  // ---- epilogue: normalized partial result (or the output itself) ---------------------------
  if (stl == 0) {
    m_s[srow] = m_run;
    l_s[srow] = l_run;
  }
  __syncthreads();
  for (int i = tid; i < rows * p.rank_v; i += NT) {
    const int row = i / p.rank_v, col = i % p.rank_v;
    const float inv_l = 1.0f / l_s[row];
    const float v = o_acc[row * lay.o_stride + col] * inv_l;
    const int h = qo_head(row);
    const int64_t bh = int64_t{b} * p.num_qo_heads + h;
    if (direct) {
      store_out(p.out, int64_t{b} * p.out_sb + h * p.out_sh + col, v, p.out_dtype);
      if (col == 0 && p.lse != nullptr)
        p.lse[bh] = (m_s[row] + __log2f(l_s[row])) * 0.69314718055994531f;
    } else {
      p.part_o[(bh * p.num_slots + slot) * p.rank_v + col] = v;
      if (col == 0) p.part_lse[bh * p.num_slots + slot] = m_s[row] + __log2f(l_s[row]);
    }
  }
}

template <int HD, int BITS, int HPC, bool FOLD, int KS, int MINB>
__global__ void __launch_bounds__(HD / 16 * 32, MINB)
    latent_decode_kernel(const LatentDecodeKernelParams p) {
  latent_decode_cta<HD, BITS, HPC, FOLD, KS>(p, GridBlock{});
}

}  // namespace latentkv::kernels
