// Warpgroup (wgmma) form of the query-folded latent decode kernel for 4-bit latents, head_dim
// 128, 4 KV heads per CTA (MHA; design §4, §5). Host side: src/cuda/latent_decode_wgmma.cu.
//
// Why a second form: the mma.sync kernel (latent_decode.cuh) keeps the folded factors in
// registers, so only 8 warps fit per SM and each warp unpacks every code of the tile for its own
// 16 head dims; it stays latency-bound. Here the folded factors W8 of the 4 heads live in shared
// memory as the wgmma B operand, and each warp only unpacks the codes of its own 16 tokens (the
// A operand of m64n64k32, in registers). Every accumulator element is then a (token, RoPE pair,
// cos|sin) product, so the whole score of a (token, head) is formed inside one warp.
//
// The key MMA is e4m3 x e4m3 -> fp32: W8 holds the factors in e4m3 (one scale β per 16 rows,
// latent_query_fold.cuh), and a 4-bit code n needs no conversion at all, because the byte n read
// as e4m3 is exactly n·2^-9 (n < 8 are the subnormals m·2^-9, 8..15 the first binade
// (1 + m/8)·2^-6). Against the int8 MMA this removes one int -> float conversion per
// accumulator element (256 of ~1500 instructions per tile and warp) at the same tensor rate.
//
// CTA = (sequence, 4 heads of a group, token split) = 2 warpgroups. Warpgroup q takes tiles
// q, q+2, ... of the split with its own 2-stage cp.async pipeline, scores, online softmax and
// value accumulator; the two states are merged at the end. Per 64-token tile a warpgroup:
//   1. unpacks its tile's key codes (the raw nibbles, read as e4m3) into A fragments;
//   2. per head: KS wgmma steps acc[token][128 cols] = H·W8^T (col 8n+2c+e is the cos (e = 0)
//      or sin (e = 1) weight of pair 4n+c), then score partial Σ_pairs β·(cos·acc + sin·acc')
//      in fp32 at the thread's tokens, summed over the quad;
//   3. zero-point term z·Σ_pairs (cos·Zc + sin·Zs) as 8 small fp16 MMAs of the thread's
//      cos/sin against the Z table (Z = β·Σ_r W8 per W row), and the per-token scale;
//   4. online softmax per head (one warp per head, exp2 domain); P' = p·s_v (value scale) in
//      fp16, and Σ p·z'_v kept apart (the value zero point adds it to every output column);
//   5. O^T[rank_v][head] += V^T·P'^T by mma.sync m16n8k16: V codes come through ldmatrix.trans
//      (4 consecutive codes of 2 tokens per register), each nibble becomes fp16 (code - 8) with
//      one LOP3 and one HSUB2; output rows are permuted to match (row r <-> code 4r + u).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "latent_decode.cuh"
#include "latent_decode_layout.h"
#include "mma_utils.cuh"
#include "wgmma_utils.cuh"

namespace latentkv::kernels {

/// Named barrier of one warpgroup (ids 1, 2; 0 is __syncthreads).
__device__ __forceinline__ void warpgroup_sync(int wg) {
  if (wg == 0) {
    asm volatile("bar.sync 1, 128;\n" ::: "memory");
  } else {
    asm volatile("bar.sync 2, 128;\n" ::: "memory");
  }
}

/// fp16x2 (code - 8) of nibble u of both 16-bit halves of x (codes 0..15). A nibble or'd into
/// the mantissa of 1024 gives 1024 + code (u even) or 1024 + 16·code (u odd, scaled back by the
/// fma); both are exact, and only nibbles 2 and 3 need a shift (x >> 8, shared by the two).
template <int U>
__device__ __forceinline__ uint32_t nibble_pair_f16(uint32_t x) {
  const uint32_t s = U >= 2 ? x >> 8 : x;
  const uint32_t y = (s & (U % 2 == 0 ? 0x000F000Fu : 0x00F000F0u)) | 0x64006400u;
  const __half2 yh = *reinterpret_cast<const __half2*>(&y);
  __half2 h;
  if (U % 2 == 0) {  // (1024 + code) - 1032
    h = __hsub2(yh, __halves2half2(__ushort_as_half(0x6408), __ushort_as_half(0x6408)));
  } else {  // (1024 + 16·code) / 16 - 72
    h = __hfma2(yh, __halves2half2(__ushort_as_half(0x2C00), __ushort_as_half(0x2C00)),
                __halves2half2(__ushort_as_half(0xD480), __ushort_as_half(0xD480)));
  }
  return *reinterpret_cast<const uint32_t*>(&h);
}

/// The four fp16x2 (code - 8) pairs of nibble U of the 4 registers of an A fragment.
template <int U>
__device__ __forceinline__ void nibble_fragment_f16(const uint32_t (&v)[4], uint32_t (&a)[4]) {
#pragma unroll
  for (int k = 0; k < 4; ++k) a[k] = nibble_pair_f16<U>(v[k]);
}

/// One warpgroup-form CTA (split blk.x(), block of 4 heads blk.y(), sequence blk.z()).
template <int KS, class Block>
__device__ __forceinline__ void latent_decode_wgmma_cta(const LatentDecodeKernelParams p,
                                                        Block blk) {
#if LKV_HAS_WGMMA
  constexpr int HD = 128;
  constexpr int HPC = kLatentWgHeads;
  constexpr int T = kLatentTile;
  constexpr int NT = kLatentWgThreads;
  constexpr int kVOffset = 8;  // value codes enter the P·V MMA centred: c - 8
  extern __shared__ __align__(128) uint8_t smem[];

  const LatentWgSmemLayout lay = latent_wg_smem_layout(p.rank_k, p.rank_v);
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int warp = wtid / 32, lane = tid % 32, r = lane / 4, c = lane % 4;
  const int b = blk.z();
  const int chunks = p.group_size / HPC;
  const int g = blk.y() / chunks;
  const int first_slot = (blk.y() % chunks) * HPC;
  const int slot = p.slot_offset + blk.x();
  const bool direct = p.num_slots == 1;
  const int seq_len = p.seq_lens[b];
  const int qlen = quantized_len_dev(seq_len, p.residual, p.chunk);
  const int lo = blk.x() * p.tokens_per_split;
  const int hi = min(lo + p.tokens_per_split, qlen);
  int kv_head[HPC];
#pragma unroll
  for (int j = 0; j < HPC; ++j) kv_head[j] = p.group_heads[g * p.group_size + first_slot + j];

  if (lo >= hi) {  // nothing to attend in this split
    grid_dependency_wait();
    write_empty_split(
        p, b, HPC, slot, [&](int row) { return kv_head[row]; }, tid, NT);
    return;
  }

  // ---- tile loader (per warpgroup): 2 threads per token row, one for the K codes and K
  // (scale, zero), one for the V side. Everything but the page and slot is fixed per thread.
  const int lrow = wtid / 2;
  const bool lv = wtid % 2;
  const int32_t* pages = p.indices + p.indptr[b];
  const int ntiles = (hi - lo + T - 1) / T;
  const int my_tiles = ntiles > wg ? (ntiles - wg + 1) / 2 : 0;  // tiles wg, wg+2, ...
  uint8_t* stages = smem + lay.off_stages + wg * kLatentWgStages * lay.stage_bytes;
  const uint8_t* code_src = lv ? p.v_codes + g * p.v_gs : p.k_codes + g * p.k_gs;
  const int64_t code_ps = lv ? p.v_ps : p.k_ps, code_ts = lv ? p.v_ts : p.k_ts;
  const uint8_t* sz_src = lv ? p.v_sz + g * p.v_szgs : p.k_sz + g * p.k_szgs;
  const int64_t sz_ps = lv ? p.v_szps : p.k_szps, sz_ts = lv ? p.v_szts : p.k_szts;
  const int code_chunks = (lv ? lay.v_copy : lay.k_copy) / 16;  // 2..8
  const int code_dst = lv ? T * lay.k_sstride + lrow * lay.v_sstride : lrow * lay.k_sstride;
  const int sz_dst = T * (lay.k_sstride + lay.v_sstride) + (lv ? T : 0) * 4 + lrow * 4;
  // Token of this thread's row in the warpgroup's i-th tile.
  auto row_pos = [&](int i) { return lo + (wg + 2 * i) * T + lrow; };
  // Page of that row (-1 past the end), loaded one tile ahead and kept 32-bit until load_tile
  // uses it, so that the load's latency is not waited out where it is issued.
  auto row_page = [&](int i) -> int {
    const int pos = row_pos(i);
    int page = -1;
    if (i < my_tiles && pos < hi) page = pages[page_of(pos, p)];
    return page;
  };
  // The copies of the warpgroup's i-th tile: its (scale, zero) when started, then its code
  // chunks one at a time (copy_chunk), so that the tile loop can spread them over its MMA chunks.
  struct TileCopy {
    uint8_t* dst;
    const uint8_t* src;
    int bytes;  // 16, or 0 to zero-fill a row past the end
  };
  auto start_tile = [&](int i, int page) {
    uint8_t* st = stages + (i % kLatentWgStages) * lay.stage_bytes;
    const bool in = page >= 0;
    // A row past the end is zero-filled from a valid address (page 0, slot 0).
    const int64_t sl = in ? slot_of(row_pos(i), p) : 0;
    const int64_t pg = in ? page : 0;
    const uint8_t* src = code_src + pg * code_ps + sl * code_ts;
    // Pinned: otherwise ptxas rebuilds the address from the kernel parameters for every copy.
    asm volatile("" : "+l"(src));
    cp_async_4(st + sz_dst, sz_src + pg * sz_ps + sl * sz_ts, in ? 4 : 0);
    return TileCopy{st + code_dst, src, in ? 16 : 0};
  };
  auto copy_chunk = [&](const TileCopy& t, int ch) {
    if (ch < code_chunks) cp_async_16(t.dst + 16 * ch, t.src + 16 * ch, t.bytes);
  };
  auto copy_chunks = [&](const TileCopy& t) {  // all of them, in one burst
#pragma unroll
    for (int ch = 0; ch < 8; ++ch) copy_chunk(t, ch);
  };
  if (my_tiles > 0) copy_chunks(start_tile(0, row_page(0)));
  cp_async_commit();
  int next_page = row_page(1);

  float* theta_s = reinterpret_cast<float*>(smem + lay.off_theta);
  if (tid < 64) theta_s[tid] = static_cast<float>(p.inv_freq[tid]);
  float* o_s = reinterpret_cast<float*>(smem + lay.off_o);
  for (int i = tid; i < HPC * p.rank_v; i += NT) o_s[i] = 0.0f;

  uint8_t* wgs = smem + lay.off_wg + wg * lay.wg_bytes;
  float* phi_s = reinterpret_cast<float*>(wgs);            // [64] tile phase of pair i
  float* s_s = phi_s + 64;                                 // [head][T] scores
  __half* p_s = reinterpret_cast<__half*>(s_s + HPC * T);  // [8][kLatentWgPStride]
  float* alpha_s = reinterpret_cast<float*>(p_s + 8 * kLatentWgPStride);  // [8]
  for (int i = wtid; i < 8 * kLatentWgPStride; i += 128) p_s[i] = __float2half_rn(0.0f);
  if (wtid < 8) alpha_s[wtid] = 1.0f;
  // RoPE phase of this warpgroup's tile start for pair wtid (threads 0..63), reduced mod 2π.
  // At the full rank bucket (KS = 8) it is kept in fixed point, 2^32 units per turn, where the
  // unsigned wrap-around is the reduction: the double form's fp64 adds stalled there behind the
  // wgmmas, as sm_90 issues FP64 on the pipe it shares with the tensor cores (c50 4-bit on an
  // H100: b1 64K 188 -> 184 us, b8 16K 355 -> 351 us). At the smaller buckets the double form
  // measured faster (c75 4-bit b8 16K: 243 us against 252 us in fixed point).
  constexpr bool kFixedPhase = KS == 8;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  double phi_d = 0.0, phi_d_step = 0.0;
  uint32_t phi_u = 0u, phi_u_step = 0u;
  if (wtid < 64) {
    const double th = p.inv_freq[wtid];
    if constexpr (kFixedPhase) {
      auto to_turn_units = [](double turns) {
        turns -= floor(turns);
        // A fraction within 2^-33 of a whole turn rounds to 2^32, which the uint32 cast makes 0.
        return static_cast<uint32_t>(static_cast<uint64_t>(llrint(turns * 4294967296.0)));
      };
      phi_u = to_turn_units(static_cast<double>(lo + wg * T) * (th / kTwoPi));
      phi_u_step = to_turn_units(2.0 * T * (th / kTwoPi));
    } else {
      phi_d = fmod(static_cast<double>(lo + wg * T) * th, kTwoPi);
      phi_d_step = fmod(2.0 * T * th, kTwoPi);
    }
  }

  // Launched as a programmatic dependent of the query fold: everything above overlaps the fold's
  // tail and this grid's launch. The fold waits for its own predecessors before it lets this grid
  // start (latent_query_fold_kernel), so the cache and page tables written before it were
  // complete above; the fold's W8, Z and β are read only from here on.
  grid_dependency_wait();

  // ---- CTA constants in shared memory: W8 (B operand), Z table, β, RoPE frequencies ---------
  const int ks = p.ksteps;
  const int rank = p.rank_k;
  int8_t* w8s = reinterpret_cast<int8_t*>(smem);
  for (int idx = tid; idx < HPC * HD * ks; idx += NT) {
    const int h = idx / (HD * ks), j = idx / ks % HD, s = idx % ks;
    const int8_t* src =
        p.w8 + ((int64_t{b} * p.num_qo_heads + kv_head[h]) * HD + j) * rank + 32 * s;
    const uint4 x0 = *reinterpret_cast<const uint4*>(src);
    const uint4 x1 = *reinterpret_cast<const uint4*>(src + 16);
    // MMA k 4c'+i of step s <-> code 32s + 8c' + 2i, k 16+4c'+i <-> that + 1 (the order the A
    // unpacking produces): even bytes of the segment, then odd bytes.
    const uint4 ev = make_uint4(prmt(x0.x, x0.y, 0x6420), prmt(x0.z, x0.w, 0x6420),
                                prmt(x1.x, x1.y, 0x6420), prmt(x1.z, x1.w, 0x6420));
    const uint4 od = make_uint4(prmt(x0.x, x0.y, 0x7531), prmt(x0.z, x0.w, 0x7531),
                                prmt(x1.x, x1.y, 0x7531), prmt(x1.z, x1.w, 0x7531));
    int8_t* dst = w8s + h * HD * rank + (j / 8) * (8 * rank) + 2 * s * 128 + (j % 8) * 16;
    *reinterpret_cast<uint4*>(dst) = ev;
    *reinterpret_cast<uint4*>(dst + 128) = od;
  }
  for (int i = tid; i < lay.w8_pad / 4; i += NT) reinterpret_cast<uint32_t*>(smem + lay.w8)[i] = 0u;
  __half* ztab = reinterpret_cast<__half*>(smem + lay.off_ztab);
  for (int i = tid; i < 8 * HD; i += NT) {
    const int row = i / HD, col = i % HD;
    float z = 0.0f;
    if (row % 2 == 0) z = p.w8_zsum[(int64_t{b} * p.num_qo_heads + kv_head[row / 2]) * HD + col];
    ztab[row * kLatentWgZStride + col] = __float2half_rn(z);
  }
  float* beta_s = reinterpret_cast<float*>(smem + lay.off_beta);
  // 2^9 undoes the code scale of the e4m3 reading of a nibble (n -> n·2^-9).
  if (tid < HPC * 8)
    beta_s[tid] =
        512.0f * p.w8_beta[(int64_t{b} * p.num_qo_heads + kv_head[tid / 8]) * 8 + tid % 8];
  fence_proxy_async_smem();
  __syncthreads();

  // Z-table B fragments are re-read per tile; the softmax state lives in warp `head`'s lanes.
  float m_run = -INFINITY, l_lane = 0.0f, zv_lane = 0.0f;
  // Value accumulator O^T: warp covers 64 value columns (block vblk) over a share of the tokens.
  const int nvb = p.rank_v / 64;  // 1, 2 or 4 blocks of 64 columns
  const int vblk = warp % nvb, vphase = warp / nvb, vstep = 4 / nvb;
  float o[4][4];
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int i = 0; i < 4; ++i) o[u][i] = 0.0f;

  const uint64_t desc0 = wgmma_desc(w8s, 128, 8 * rank);
  const int tok_lo = 16 * warp + r;  // this thread's tokens in the tile: tok_lo, tok_lo + 8

  for (int i = 0; i < my_tiles; ++i) {
    const int it = wg + 2 * i;
    cp_async_wait<0>();
    if (wtid < 64)
      phi_s[wtid] = kFixedPhase ? __uint2float_rn(phi_u) * static_cast<float>(kTwoPi / 4294967296.0)
                                : static_cast<float>(phi_d);
    warpgroup_sync(wg);
    // The next tile's copies. At the full rank bucket (KS = 8) they go out one 16-byte chunk
    // per MMA chunk below: a burst of 9 copies here kept the warps waiting for the copies to
    // release their address registers (b1 64K c50 4-bit: 205 -> 194 us on an H100). At smaller
    // buckets the MMA chunks are too short to cover them (c75: 132 -> 138 us spread), so they go
    // out here.
    constexpr bool kSpread = KS == 8;
    const bool more = i + 1 < my_tiles;
    TileCopy next{nullptr, nullptr, 0};
    if (more) next = start_tile(i + 1, next_page);
    if (!kSpread && more) copy_chunks(next);
    next_page = row_page(i + 2);
    if (wtid < 64) {
      if constexpr (kFixedPhase) {
        phi_u += phi_u_step;
      } else {
        phi_d += phi_d_step;
        if (phi_d >= kTwoPi) phi_d -= kTwoPi;
      }
    }
    const uint8_t* sk = stages + (i % kLatentWgStages) * lay.stage_bytes;
    const uint8_t* sv = sk + T * lay.k_sstride;
    const __half2* sz_k = reinterpret_cast<const __half2*>(sv + T * lay.v_sstride);
    const __half2* sz_v = sz_k + T;
    const int valid = min(T, hi - (lo + it * T));

    // 1. A fragments of this warp's 16 tokens (ldmatrix.x4: rows r / r+8, 2 segments).
    uint32_t a[KS][4];
    {
      const uint8_t* arow =
          sk + (16 * warp + (lane & 7) + ((lane >> 3) & 1) * 8) * lay.k_sstride + (lane >> 4) * 16;
#pragma unroll
      for (int s2 = 0; s2 < KS; s2 += 2) {
        uint32_t w[4];
        const int seg = min(s2 + (lane >> 4), ks - 1) - (lane >> 4);
        ldmatrix_x4(w, arow + 16 * seg);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint32_t wl = w[2 * h], wh = w[2 * h + 1];
          a[s2 + h][0] = wl & 0x0F0F0F0Fu;
          a[s2 + h][1] = wh & 0x0F0F0F0Fu;
          a[s2 + h][2] = (wl >> 4) & 0x0F0F0F0Fu;
          a[s2 + h][3] = (wh >> 4) & 0x0F0F0F0Fu;
          // Steps past the rank run with zero codes (no branch around a wgmma: a conditional
          // wgmma makes ptxas serialize all of them).
          if (s2 + h >= ks) a[s2 + h][0] = a[s2 + h][1] = a[s2 + h][2] = a[s2 + h][3] = 0;
        }
      }
    }

    // 2-3. Eight chunks (head h, half e: W rows 64e..64e+63, pairs 4n + c for n = 8e..8e+7),
    // each KS wgmma steps into one of two accumulator sets, so that chunk i+1 runs on the tensor
    // cores while the threads reduce chunk i. Per half, the cos / sin of the thread's 8 pairs at
    // its two tokens, and the zero-point term's MMAs over them (zacc[0] / zacc[2]: head c at
    // tok_lo / tok_lo + 8).
    float x[2 * HPC];  // [head][token lo / hi]
#pragma unroll
    for (int k = 0; k < 2 * HPC; ++k) x[k] = 0.0f;
    float zacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float cs[8][2][2];  // [n - 8e][token lo / hi][cos / sin]
    float acc[2][32];
    auto issue = [&](int chunk, float(&d)[32]) {
      const int h = chunk % HPC, e = chunk / HPC;
      // The descriptor is re-derived here (opaque to the optimizer) so that the 8·KS descriptors
      // of a tile are not hoisted out of the tile loop into 2·8·KS live registers.
      uint64_t dh = desc0;
      asm volatile("" : "+l"(dh));
      dh = wgmma_desc_advance(dh, h * HD * rank + e * 64 * rank);
      wgmma_fence();
#pragma unroll
      for (int s = 0; s < KS; ++s)
        wgmma_m64n64k32_e4m3(d, a[s], wgmma_desc_advance(dh, 256 * s), s > 0);
      wgmma_commit();
    };
    issue(0, acc[0]);
#pragma unroll
    for (int chunk = 0; chunk < 2 * HPC; ++chunk) {
      const int h = chunk % HPC, e = chunk / HPC;
      if (kSpread && more) copy_chunk(next, chunk);
      if (chunk + 1 < 2 * HPC) {
        issue(chunk + 1, acc[(chunk + 1) % 2]);
        wgmma_wait<1>();
      } else {
        wgmma_wait<0>();
      }
      float(&d)[32] = acc[chunk % 2];
      wgmma_pin(d);
      if (h == 0) {
#pragma unroll
        for (int nn = 0; nn < 8; ++nn) {
          const int pair = 4 * (8 * e + nn) + c;
          const float th = theta_s[pair], ph = phi_s[pair];
          __sincosf(fmaf(static_cast<float>(tok_lo), th, ph), &cs[nn][0][1], &cs[nn][0][0]);
          __sincosf(fmaf(static_cast<float>(tok_lo + 8), th, ph), &cs[nn][1][1], &cs[nn][1][0]);
        }
#pragma unroll
        for (int q = 0; q < 4; q += 2) {
          uint32_t zb[4];
          ldmatrix_x4(zb,
                      ztab + (lane & 7) * kLatentWgZStride + 16 * (4 * e + q) + (lane >> 3) * 8);
#pragma unroll
          for (int k = 0; k < 2; ++k) {
            const int nn = 2 * (q + k);
            const uint32_t za[4] = {pack_half2(cs[nn][0][0], cs[nn][0][1]),
                                    pack_half2(cs[nn][1][0], cs[nn][1][1]),
                                    pack_half2(cs[nn + 1][0][0], cs[nn + 1][0][1]),
                                    pack_half2(cs[nn + 1][1][0], cs[nn + 1][1][1])};
            mma_f16(zacc, za, zb[2 * k], zb[2 * k + 1]);
          }
        }
      }
      float xl = x[2 * h], xh = x[2 * h + 1];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float pl = 0.0f, ph = 0.0f;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const int nn = 2 * q + k;
          pl = fmaf(cs[nn][0][0], d[4 * nn], pl);
          pl = fmaf(cs[nn][0][1], d[4 * nn + 1], pl);
          ph = fmaf(cs[nn][1][0], d[4 * nn + 2], ph);
          ph = fmaf(cs[nn][1][1], d[4 * nn + 3], ph);
        }
        const float bq = beta_s[h * 8 + 4 * e + q];
        xl = fmaf(bq, pl, xl);
        xh = fmaf(bq, ph, xh);
      }
      x[2 * h] = xl;
      x[2 * h + 1] = xh;
    }
    cp_async_commit();
    // Quad reduce-scatter: lane c ends with head c at tokens tok_lo (own[0]) and tok_lo+8.
    float own[2];
    {
      float y[4];
      const bool up2 = c & 2;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float send = up2 ? x[k] : x[k + 4];
        y[k] = (up2 ? x[k + 4] : x[k]) + __shfl_xor_sync(~0u, send, 2);
      }
      const bool up1 = c & 1;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const float send = up1 ? y[k] : y[k + 2];
        own[k] = (up1 ? y[k + 2] : y[k]) + __shfl_xor_sync(~0u, send, 1);
      }
    }
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int tok = tok_lo + 8 * k;
      const float2 sz = __half22float2(sz_k[tok]);
      s_s[c * T + tok] = fmaf(sz.x, own[k], sz.y * zacc[2 * k]);
    }
    warpgroup_sync(wg);

    // 4. online softmax of head `warp` over the tile; P' = p·s_v to shared memory.
    {
      float sc[2], mt = -INFINITY;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int tok = lane + 32 * k;
        sc[k] = tok < valid ? s_s[warp * T + tok] : -INFINITY;
        mt = fmaxf(mt, sc[k]);
      }
#pragma unroll
      for (int off = 16; off > 0; off /= 2) mt = fmaxf(mt, __shfl_xor_sync(~0u, mt, off));
      const float m_new = fmaxf(m_run, mt);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = fast_exp2(m_run - m_use);
      l_lane *= alpha;
      zv_lane *= alpha;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int tok = lane + 32 * k;
        const float pv = fast_exp2(sc[k] - m_use);
        const float2 sz = __half22float2(sz_v[tok]);
        l_lane += pv;
        zv_lane = fmaf(pv, fmaf(kVOffset, sz.x, sz.y), zv_lane);
        p_s[warp * kLatentWgPStride + tok] = __float2half_rn(pv * sz.x);
      }
      m_run = m_new;
      if (lane == 0) alpha_s[warp] = alpha;
    }
    warpgroup_sync(wg);

    // 5. O^T = alpha·O^T + V^T·P'^T over this warp's token chunks of value block vblk.
    {
      const float a0 = alpha_s[2 * c], a1 = alpha_s[2 * c + 1];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        o[u][0] *= a0;
        o[u][1] *= a1;
        o[u][2] *= a0;
        o[u][3] *= a1;
      }
      for (int kc = vphase; kc < T / 16; kc += vstep) {
        uint32_t vr[4], pb[2];
        ldmatrix_x4_trans(vr, sv + (16 * kc + (lane & 7) + ((lane >> 4) & 1) * 8) * lay.v_sstride +
                                  32 * vblk + ((lane >> 3) & 1) * 16);
        ldmatrix_x2(pb[0], pb[1],
                    p_s + (lane & 7) * kLatentWgPStride + 16 * kc + ((lane >> 3) & 1) * 8);
        uint32_t va[4];
        nibble_fragment_f16<0>(vr, va);
        mma_f16(o[0], va, pb[0], pb[1]);
        nibble_fragment_f16<1>(vr, va);
        mma_f16(o[1], va, pb[0], pb[1]);
        nibble_fragment_f16<2>(vr, va);
        mma_f16(o[2], va, pb[0], pb[1]);
        nibble_fragment_f16<3>(vr, va);
        mma_f16(o[3], va, pb[0], pb[1]);
      }
    }
  }
  cp_async_wait<0>();

  // The combine (a programmatic dependent) may launch now: it waits for this grid to complete
  // before it reads, and its launch latency overlaps the CTAs' epilogues.
  grid_dependents_launch();

  // ---- merge the two warpgroups and write the split's result -------------------------------
  float* stats = reinterpret_cast<float*>(smem + lay.off_stats);  // [wg][head][m, l, zv]
  {
    float l = l_lane, zv = zv_lane;
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
      l += __shfl_xor_sync(~0u, l, off);
      zv += __shfl_xor_sync(~0u, zv, off);
    }
    if (lane == 0) {
      float* st = stats + (wg * HPC + warp) * 3;
      st[0] = m_run;
      st[1] = l;
      st[2] = zv;
    }
  }
  __syncthreads();
  auto merged_max = [&](int h) { return fmaxf(stats[h * 3], stats[(HPC + h) * 3]); };
  if (c < 2) {
    // Columns 2c, 2c+1 are heads 2c, 2c+1; row r of m-tile u is value column 64·vblk + 4r + u,
    // row r + 8 is that + 32.
    float f[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int h = 2 * c + e;
      const float m = merged_max(h), mw = stats[(wg * HPC + h) * 3];
      f[e] = mw == -INFINITY ? 0.0f : fast_exp2(mw - m);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int col = 64 * vblk + 4 * r + u;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float* orow = o_s + (2 * c + e) * p.rank_v;
        atomicAdd(orow + col, o[u][e] * f[e]);
        atomicAdd(orow + col + 32, o[u][2 + e] * f[e]);
      }
    }
  }
  __syncthreads();
  for (int i = tid; i < HPC * p.rank_v; i += NT) {
    const int h = i / p.rank_v, col = i % p.rank_v;
    const float m = merged_max(h);
    float l = 0.0f, zv = 0.0f;
#pragma unroll
    for (int q = 0; q < kLatentWgGroups; ++q) {
      const float* st = stats + (q * HPC + h) * 3;
      const float f = st[0] == -INFINITY ? 0.0f : fast_exp2(st[0] - m);
      l = fmaf(f, st[1], l);
      zv = fmaf(f, st[2], zv);
    }
    const float v = (o_s[i] + zv) / l;
    const int64_t bh = int64_t{b} * p.num_qo_heads + kv_head[h];
    if (direct) {
      store_out(p.out, int64_t{b} * p.out_sb + kv_head[h] * p.out_sh + col, v, p.out_dtype);
      if (col == 0 && p.lse != nullptr) p.lse[bh] = (m + __log2f(l)) * 0.69314718055994531f;
    } else {
      p.part_o[(bh * p.num_slots + slot) * p.rank_v + col] = v;
      if (col == 0) p.part_lse[bh * p.num_slots + slot] = m + __log2f(l);
    }
  }
#endif
}

/// The warpgroup form over the pages, with the residual window's fp16 CTAs (latent_decode_cta,
/// latent_wg_window_heads per CTA) in the same grid: they run on the SMs the page CTAs leave
/// free instead of in a launch of their own after them.
template <int KS>
__global__ void __launch_bounds__(kLatentWgThreads, 1)
    latent_decode_wgmma_kernel(const LatentDecodeKernelParams p, const LatentDecodeKernelParams pw,
                               const LatentWgGrid grid) {
  const int id = blockIdx.x, main_xy = grid.main_x * grid.main_y;
  if (id < main_xy * grid.batch) {
    latent_decode_wgmma_cta<KS>(
        p, GivenBlock{id % grid.main_x, id % main_xy / grid.main_x, id / main_xy});
  } else {
    grid_dependency_wait();  // the window's CTAs read the folded query from the start
    const int w = id - main_xy * grid.batch, win_xy = grid.win_x * grid.win_y;
    latent_decode_cta<128, 16, latent_wg_window_heads(KS), true, 2 * KS>(
        pw, GivenBlock{w % grid.win_x, w % win_xy / grid.win_x, w / win_xy});
  }
}

}  // namespace latentkv::kernels
