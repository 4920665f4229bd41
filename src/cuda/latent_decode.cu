#include <algorithm>

#include "attention/latent_decode_config.h"
#include "cuda/cuda_status.h"
#include "cuda/decode_combine.h"
#include "cuda/latent_combine_up.h"
#include "cuda/latent_decode_launch.cuh"
#include "cuda/latent_decode_wgmma.h"
#include "cuda/latent_query_fold.h"
#include "latentkv/attention/latent_decode.h"

namespace latentkv {
namespace {

template <bool FOLD>
cudaError_t launch_family(int head_dim, int bits, const kernels::LatentDecodeKernelParams& kp,
                          int hpc, dim3 grid, int smem, cudaStream_t s) {
  using detail::launch_latent_decode;
  if (head_dim == 128) {
    switch (bits) {
      case 16:
        return launch_latent_decode<128, 16, FOLD>(kp, hpc, grid, smem, s);
      case 4:
        return launch_latent_decode<128, 4, FOLD>(kp, hpc, grid, smem, s);
      case 3:
        return launch_latent_decode<128, 3, FOLD>(kp, hpc, grid, smem, s);
      case 2:
        return launch_latent_decode<128, 2, FOLD>(kp, hpc, grid, smem, s);
    }
  } else {
    switch (bits) {
      case 16:
        return launch_latent_decode<64, 16, FOLD>(kp, hpc, grid, smem, s);
      case 4:
        return launch_latent_decode<64, 4, FOLD>(kp, hpc, grid, smem, s);
      case 3:
        return launch_latent_decode<64, 3, FOLD>(kp, hpc, grid, smem, s);
      case 2:
        return launch_latent_decode<64, 2, FOLD>(kp, hpc, grid, smem, s);
    }
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_family(bool fold, int head_dim, int bits,
                          const kernels::LatentDecodeKernelParams& kp, int hpc, dim3 grid, int smem,
                          cudaStream_t s) {
  return fold ? launch_family<true>(head_dim, bits, kp, hpc, grid, smem, s)
              : launch_family<false>(head_dim, bits, kp, hpc, grid, smem, s);
}

}  // namespace

Status latent_decode_run(const LatentDecodeParams& p, const DecodePlan& plan, void* workspace,
                         int64_t workspace_bytes, GpuStream stream) {
  LKV_RETURN_IF_ERROR(latent_decode_is_supported(p));
  const int ratio = p.num_qo_heads / p.num_kv_heads;
  const int hpc = detail::latent_heads_per_cta(p.group_size, ratio, p.k.rank, p.k.bits);
  if (plan.num_splits < 1 || plan.tokens_per_split < 1 || plan.heads_per_cta != hpc ||
      (plan.extra_splits > 0) != detail::latent_has_residual_launch(p) ||
      plan.extra_splits > detail::latent_residual_max_slots(p))
    return Status(StatusCode::kInvalidArgument,
                  "latent_decode: plan does not match the parameters (re-run latent_decode_plan)");
  if (workspace_bytes < plan.workspace_bytes || (plan.workspace_bytes > 0 && workspace == nullptr))
    return Status(StatusCode::kOutOfMemory, str_cat("latent_decode: workspace of ", workspace_bytes,
                                                    " bytes, plan needs ", plan.workspace_bytes));
  const int slots = plan.num_splits + plan.extra_splits;
  const int64_t rows = int64_t{p.batch_size} * p.num_qo_heads;

  kernels::LatentDecodeKernelParams kp{};
  kp.num_qo_heads = p.num_qo_heads;
  kp.ratio = ratio;
  kp.group_size = p.group_size;
  kp.rank_k = p.k.rank;
  kp.rank_v = p.v.rank;
  kp.group_heads = p.group_heads;
  kp.q = p.q;
  kp.q_bf16 = p.q_dtype == DType::kBF16;
  kp.q_sb = p.q_stride_batch;
  kp.q_sh = p.q_stride_head;
  kp.b_k = p.b_k;
  kp.b_i8 = p.b_k_i8;
  kp.b_i8_scale = p.b_k_i8_scale;
  kp.b_i8_rowsum = p.b_k_i8_rowsum;
  kp.inv_freq = p.inv_freq;
  kp.q_scale = p.sm_scale * 1.4426950408889634f;
  // Keys of the int8 path enter the fp16 score MMA as γ·RoPE(B_i8·(c - o)): |B_i8| <= 127,
  // |c - o| <= o = 2^(bits-1), and the rotation can grow a component by sqrt(2); γ keeps the
  // worst case near 32768.
  if (p.k.bits < 16)
    kp.key_gamma = 32768.0f / (127.0f * static_cast<float>(1 << (p.k.bits - 1)) * p.k.rank * 1.5f);
  const auto bytes = [](const void* x) { return static_cast<const uint8_t*>(x); };
  kp.k_codes = bytes(p.k.codes);
  kp.v_codes = bytes(p.v.codes);
  kp.k_sz = bytes(p.k.scale_zero);
  kp.v_sz = bytes(p.v.scale_zero);
  kp.k_ring = bytes(p.k.ring);
  kp.v_ring = bytes(p.v.ring);
  kp.k_ps = p.k.page_stride;
  kp.k_gs = p.k.group_stride;
  kp.k_ts = p.k.token_stride;
  kp.v_ps = p.v.page_stride;
  kp.v_gs = p.v.group_stride;
  kp.v_ts = p.v.token_stride;
  kp.k_szps = p.k.sz_page_stride;
  kp.k_szgs = p.k.sz_group_stride;
  kp.k_szts = p.k.sz_token_stride;
  kp.v_szps = p.v.sz_page_stride;
  kp.v_szgs = p.v.sz_group_stride;
  kp.v_szts = p.v.sz_token_stride;
  kp.k_rs = p.k.ring_seq_stride;
  kp.k_rgs = p.k.ring_group_stride;
  kp.k_rts = p.k.ring_token_stride;
  kp.v_rs = p.v.ring_seq_stride;
  kp.v_rgs = p.v.ring_group_stride;
  kp.v_rts = p.v.ring_token_stride;
  kp.residual = p.window.residual;
  kp.chunk = p.window.chunk;
  kp.ring_cap = p.window.ring_capacity() > 0 ? p.window.ring_capacity() : 1;
  kp.indptr = p.pages.indptr;
  kp.indices = p.pages.indices;
  kp.seq_lens = p.pages.seq_lens;
  kp.page_size = p.pages.page_size;
  if ((p.pages.page_size & (p.pages.page_size - 1)) == 0) {  // a shift instead of a division
    kp.page_shift = 0;
    while ((1 << kp.page_shift) < p.pages.page_size) ++kp.page_shift;
  }
  kp.tokens_per_split = plan.tokens_per_split;
  kp.num_slots = slots;
  const detail::LatentWorkspaceLayout wl = detail::latent_workspace_layout(p, slots);
  // A plan made without b_v may have more splits than the fused combine keeps merge weights for,
  // and no room for a single split's fp32 result; a plan for a smaller batch has too small a
  // workspace (DecodePlan does not record its batch).
  if (wl.total > workspace_bytes || (p.b_v && int64_t{slots} * ratio > kernels::kUpWeightSlots))
    return Status(StatusCode::kInvalidArgument,
                  "latent_decode: the plan does not cover these parameters (made without b_v, or "
                  "for a smaller batch); re-run latent_decode_plan with them");
  const auto region = [&](int64_t off) {
    return off < 0 ? nullptr : static_cast<char*>(workspace) + off;
  };
  kp.part_o = reinterpret_cast<float*>(region(wl.part_o));
  kp.part_lse = reinterpret_cast<float*>(region(wl.part_lse));
  kp.w16 = reinterpret_cast<const uint16_t*>(region(wl.w16));
  kp.w8 = reinterpret_cast<const int8_t*>(region(wl.w8));
  kp.w8_zsum = reinterpret_cast<const float*>(region(wl.w8_zsum));
  kp.w8_beta = reinterpret_cast<const float*>(region(wl.w8_beta));
  kp.out = p.out;
  kp.out_dtype = static_cast<int>(p.out_dtype);
  kp.out_sb = p.out_stride_batch;
  kp.out_sh = p.out_stride_head;
  if (p.b_v && slots == 1) {  // the single split's latent result, in fp32, for the combine-up
    kp.out = kp.part_o;
    kp.out_dtype = static_cast<int>(DType::kF32);
    kp.out_sb = int64_t{p.num_qo_heads} * p.v.rank;
    kp.out_sh = p.v.rank;
  }
  kp.lse = p.lse;
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  const int nw = kernels::latent_num_warps(p.head_dim);
  const bool fold = detail::latent_uses_fold(p);

  if (fold) {
    kernels::QueryFoldParams fp{};
    fp.num_qo_heads = p.num_qo_heads;
    fp.group_size = p.group_size;
    fp.head_dim = p.head_dim;
    fp.rank = p.k.rank;
    fp.group_heads = p.group_heads;
    fp.q = p.q;
    fp.q_bf16 = kp.q_bf16;
    fp.q_sb = p.q_stride_batch;
    fp.q_sh = p.q_stride_head;
    fp.q_scale = kp.q_scale;
    fp.b_k = p.b_k;
    fp.w16 = reinterpret_cast<uint16_t*>(region(wl.w16));
    fp.w8 = reinterpret_cast<int8_t*>(region(wl.w8));
    fp.w8_zsum = reinterpret_cast<float*>(region(wl.w8_zsum));
    fp.w8_beta = reinterpret_cast<float*>(region(wl.w8_beta));
    fp.w8_e4m3 = detail::latent_uses_wgmma(p) ? 1 : 0;
    LKV_CUDA_RETURN(detail::launch_query_fold(fp, p.num_kv_heads, p.batch_size, s));
  }

  // Main kernel: pages (and the fp16 ring when bits = 16).
  kp.mode = 0;
  kp.slot_offset = 0;
  kp.ksteps = kernels::latent_key_steps(p.k.rank, p.k.bits);
  const dim3 grid(plan.num_splits, (p.num_kv_heads / p.group_size) * (p.group_size / hpc),
                  p.batch_size);
  // Residual window of quantized caches: the fp16 kernel over the ring only, in slots after the
  // page splits.
  kernels::LatentDecodeKernelParams kpw = kp;
  const int hpc16 = detail::latent_residual_heads_per_cta(p);
  const dim3 grid16(plan.extra_splits, (p.num_kv_heads / p.group_size) * (p.group_size / hpc16),
                    p.batch_size);
  const int smem16 = kernels::latent_smem_layout(16, p.k.rank, p.v.rank, nw).total;
  if (plan.extra_splits > 0) {
    kpw.mode = 1;
    kpw.slot_offset = plan.num_splits;
    kpw.tokens_per_split =
        detail::latent_residual_tiles_per_slot(p, plan.extra_splits) * kernels::kLatentTile;
    kpw.ksteps = kernels::latent_key_steps(p.k.rank, 16);
  }
  if (detail::latent_uses_wgmma(p)) {
    // One launch: the window CTAs run on the SMs the page CTAs leave free.
    if (plan.extra_splits > 0 &&
        hpc16 != kernels::latent_wg_window_heads(kernels::latent_key_step_bucket(kp.ksteps)))
      return Status(StatusCode::kInternal, "latent_decode: residual-window heads per CTA mismatch");
    const kernels::LatentWgGrid wg{static_cast<int>(grid.x), static_cast<int>(grid.y),
                                   static_cast<int>(grid16.x), static_cast<int>(grid16.y),
                                   p.batch_size};
    const int smem = std::max(kernels::latent_wg_smem_layout(p.k.rank, p.v.rank).total,
                              plan.extra_splits > 0 ? smem16 : 0);
    LKV_CUDA_RETURN(detail::launch_latent_decode_wgmma(kp, kpw, wg, smem, s));
  } else {
    const int smem = kernels::latent_smem_layout(p.k.bits, p.k.rank, p.v.rank, nw).total;
    LKV_CUDA_RETURN(launch_family(fold, p.head_dim, p.k.bits, kp, hpc, grid, smem, s));
    if (plan.extra_splits > 0)
      LKV_CUDA_RETURN(launch_family(fold, p.head_dim, 16, kpw, hpc16, grid16, smem16, s));
  }

  if (p.b_v) {
    kernels::CombineUpParams up{};
    up.part_o = kp.part_o;
    up.part_lse = kp.part_lse;
    up.num_slots = slots;
    up.rank_v = p.v.rank;
    up.head_dim = p.head_dim;
    up.batch_size = p.batch_size;
    up.num_qo_heads = p.num_qo_heads;
    up.num_kv_heads = p.num_kv_heads;
    up.ratio = ratio;
    up.seqs_per_cta = detail::combine_up_seqs_per_cta(p.batch_size, ratio, slots, p.v.rank);
    up.group_heads = p.group_heads;
    up.b_v = reinterpret_cast<const __half*>(p.b_v);
    up.out = p.out;
    up.out_dtype = static_cast<int>(p.out_dtype);
    up.out_sb = p.out_stride_batch;
    up.out_sh = p.out_stride_head;
    up.lse = p.lse;
    LKV_CUDA_RETURN(detail::launch_latent_combine_up(up, s));
  } else if (slots > 1) {
    kernels::DecodeCombineParams cp{};
    cp.part_o = kp.part_o;
    cp.part_lse = kp.part_lse;
    cp.num_slots = slots;
    cp.dim = p.v.rank;
    cp.num_heads = p.num_qo_heads;
    cp.out = p.out;
    cp.out_dtype = static_cast<int>(p.out_dtype);
    cp.out_sb = p.out_stride_batch;
    cp.out_sh = p.out_stride_head;
    cp.lse = p.lse;
    LKV_CUDA_RETURN(detail::launch_decode_combine(cp, rows, s));
  }
  return Status::Ok();
}

}  // namespace latentkv
