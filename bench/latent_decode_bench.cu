// Benchmark of the fused latent decode kernel (plus split combine and, for quantized latents,
// the fp16 residual-window launch) at Llama-2-7B (MHA 32x128) and Llama-3-8B (GQA 32/8x128)
// shapes: group sizes 1/2/4, compression 50 % (rank = 64·group_size per group: half of the K and
// V widths kept) and 75 % (rank = 32·group_size), fp16 / 4-bit / 2-bit latents; one layer,
// page_size 16, residual window 128 (+ chunk 16) for quantized latents. Also the B_v
// up-projection (cuBLAS) at the target shapes.
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda_bench_util.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/attention/value_projection.h"
#include "latentkv/rope.h"

namespace latentkv::bench {
namespace {

struct LatentSetup {
  DeviceMem k_codes, k_sz, k_ring, v_codes, v_sz, v_ring, q, out, b_k, b_i8, b_scale, b_rowsum,
      inv_freq, group_heads, indptr, indices, lens, ws;
  LatentDecodeParams p;
  DecodePlan plan;
  double bytes = 0;  // latent bytes read per call (pages + ring)
  double flops = 0;  // key rebuild FLOPs per call
  double bytes_per_token = 0;
  Status status;
};

void setup(LatentSetup& s, int qo, int kv, int batch, int ctx, int gs, int rank, int bits) {
  const int hd = 128, page = 16, groups = kv / gs;
  QuantConfig q;
  q.bits = bits;
  LatentWindowPolicy w;
  if (bits < 16) {
    w.residual = 128;
    w.chunk = 16;
  }
  const int pages_per_seq = (ctx + page - 1) / page;
  const int64_t pages = int64_t{batch} * pages_per_seq;
  const LatentCacheLayout kl = make_latent_cache_layout(groups, rank, q, page, pages, w, batch);
  const LatentCacheLayout vl = kl;
  s.k_codes = DeviceMem(kl.codes_bytes);
  s.v_codes = DeviceMem(vl.codes_bytes);
  s.k_sz = DeviceMem(std::max<int64_t>(kl.scale_zero_bytes, 16));
  s.v_sz = DeviceMem(std::max<int64_t>(vl.scale_zero_bytes, 16));
  s.k_ring = DeviceMem(std::max<int64_t>(kl.ring_bytes, 16));
  s.v_ring = DeviceMem(std::max<int64_t>(vl.ring_bytes, 16));
  if (bits == 16) {
    fill_half(s.k_codes.get(), kl.codes_bytes / 2, 21, -1.0f, 1.0f);
    fill_half(s.v_codes.get(), vl.codes_bytes / 2, 22, -1.0f, 1.0f);
  } else {
    fill_bytes(s.k_codes.get(), kl.codes_bytes, 21);
    fill_bytes(s.v_codes.get(), vl.codes_bytes, 22);
    fill_half(s.k_sz.get(), kl.scale_zero_bytes / 2, 23, 0.02f, 0.2f);
    fill_half(s.v_sz.get(), vl.scale_zero_bytes / 2, 24, 0.02f, 0.2f);
    fill_half(s.k_ring.get(), kl.ring_bytes / 2, 25, -1.0f, 1.0f);
    fill_half(s.v_ring.get(), vl.ring_bytes / 2, 26, -1.0f, 1.0f);
  }
  s.q = DeviceMem(size_t{2} * batch * qo * hd);
  fill_half(s.q.get(), static_cast<size_t>(batch) * qo * hd, 27, -1.0f, 1.0f);
  s.out = DeviceMem(size_t{4} * batch * qo * rank);
  const int64_t brows = int64_t{kv} * hd;
  s.b_k = DeviceMem(brows * rank * 2);
  fill_half(s.b_k.get(), brows * rank, 28, -0.1f, 0.1f);
  s.b_i8 = DeviceMem(brows * rank);
  fill_bytes(s.b_i8.get(), brows * rank, 29);
  std::vector<float> scale(brows, 1e-3f);
  std::vector<int32_t> rowsum(brows, 3);
  s.b_scale = DeviceMem(brows * 4);
  s.b_scale.upload(scale);
  s.b_rowsum = DeviceMem(brows * 4);
  s.b_rowsum.upload(rowsum);
  RopeConfig rope;
  rope.theta = 10000.0;
  const std::vector<double> inv = rope_inv_freq(rope, hd);
  s.inv_freq = DeviceMem(inv.size() * 8);
  s.inv_freq.upload(inv);
  std::vector<int32_t> gh(kv);
  std::iota(gh.begin(), gh.end(), 0);
  s.group_heads = DeviceMem(kv * 4);
  s.group_heads.upload(gh);
  std::vector<int32_t> indptr(batch + 1), indices(pages), lens(batch, ctx);
  for (int b = 0; b <= batch; ++b) indptr[b] = b * pages_per_seq;
  std::iota(indices.begin(), indices.end(), 0);
  std::shuffle(indices.begin(), indices.end(), std::mt19937(3));
  s.indptr = DeviceMem(indptr.size() * 4);
  s.indptr.upload(indptr);
  s.indices = DeviceMem(indices.size() * 4);
  s.indices.upload(indices);
  s.lens = DeviceMem(lens.size() * 4);
  s.lens.upload(lens);

  LatentDecodeParams& p = s.p;
  p.batch_size = batch;
  p.num_qo_heads = qo;
  p.num_kv_heads = kv;
  p.head_dim = hd;
  p.group_size = gs;
  p.group_heads = s.group_heads.get<int32_t>();
  p.q = s.q.get();
  p.q_stride_batch = int64_t{qo} * hd;
  p.q_stride_head = hd;
  p.b_k = s.b_k.get<uint16_t>();
  p.b_k_i8 = s.b_i8.get<int8_t>();
  p.b_k_i8_scale = s.b_scale.get<float>();
  p.b_k_i8_rowsum = s.b_rowsum.get<int32_t>();
  p.inv_freq = s.inv_freq.get<double>();
  p.sm_scale = 1.0f / std::sqrt(128.0f);
  p.k = kl.view;
  p.k.codes = s.k_codes.get();
  p.k.scale_zero = s.k_sz.get();
  p.k.ring = s.k_ring.get();
  p.v = vl.view;
  p.v.codes = s.v_codes.get();
  p.v.scale_zero = s.v_sz.get();
  p.v.ring = s.v_ring.get();
  p.window = w;
  p.pages.indptr = s.indptr.get<int32_t>();
  p.pages.indices = s.indices.get<int32_t>();
  p.pages.seq_lens = s.lens.get<int32_t>();
  p.pages.page_size = page;
  p.out = s.out.get();
  p.out_dtype = DType::kF32;
  p.out_stride_batch = int64_t{qo} * rank;
  p.out_stride_head = rank;
  s.status = latent_decode_plan(p, ctx, sm_count(), &s.plan);
  if (!s.status.ok()) return;
  s.ws = DeviceMem(std::max<int64_t>(s.plan.workspace_bytes, 16));
  const int64_t qlen = w.quantized_len(ctx), ring = ctx - qlen;
  s.bytes_per_token = 2.0 * kl.bytes_per_token;  // K + V, exact (codes + scale/zero)
  s.bytes = double(batch) * (qlen * s.bytes_per_token + ring * 2.0 * groups * 2 * rank);
  s.flops = 2.0 * batch * ctx * kv * hd * rank;
}

void BM_LatentDecode(benchmark::State& state, int qo, int kv, int batch, int ctx, int gs, int rank,
                     int bits) {
  LatentSetup s;
  setup(s, qo, kv, batch, ctx, gs, rank, bits);
  if (!s.status.ok()) {
    state.SkipWithError(s.status.to_string().c_str());
    return;
  }
  time_op(state, [&] {
    const Status st = latent_decode_run(s.p, s.plan, s.ws.get(), s.plan.workspace_bytes, nullptr);
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.to_string().c_str());
  });
  set_rate_counters(state, s.bytes, s.flops);
  state.counters["kv_bytes_per_token"] = s.bytes_per_token;
  state.counters["splits"] = s.plan.num_splits;
  state.counters["heads_per_cta"] = s.plan.heads_per_cta;
}

void BM_ValueUpProjection(benchmark::State& state, int qo, int kv, int batch, int gs, int rank) {
  const int hd = 128;
  DeviceMem z(size_t{2} * batch * qo * rank), o(size_t{2} * batch * qo * hd),
      bv(size_t{2} * kv * hd * rank), gh(kv * 4);
  fill_half(z.get(), static_cast<size_t>(batch) * qo * rank, 31, -1.0f, 1.0f);
  fill_half(bv.get(), static_cast<size_t>(kv) * hd * rank, 32, -0.1f, 0.1f);
  std::vector<int32_t> heads(kv);
  std::iota(heads.begin(), heads.end(), 0);
  gh.upload(heads);
  ValueUpProjectionParams p;
  p.batch_size = batch;
  p.num_qo_heads = qo;
  p.num_kv_heads = kv;
  p.head_dim = hd;
  p.group_size = gs;
  p.rank_v = rank;
  p.group_heads = gh.get<int32_t>();
  p.b_v = bv.get<uint16_t>();
  p.z = z.get<uint16_t>();
  p.z_stride_batch = int64_t{qo} * rank;
  p.o = o.get<uint16_t>();
  p.o_stride_batch = int64_t{qo} * hd;
  DeviceMem ws(value_up_projection_workspace_bytes(p));
  cublasHandle_t cublas;
  cublasCreate(&cublas);
  time_op(state, [&] {
    const Status st = value_up_projection_run(p, cublas, ws.get(), ws.bytes(), nullptr);
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.to_string().c_str());
  });
  set_rate_counters(state, 2.0 * kv * hd * rank, 2.0 * batch * qo * hd * rank);
  cublasDestroy(cublas);
}

}  // namespace
}  // namespace latentkv::bench

int main(int argc, char** argv) {
  using namespace latentkv::bench;
  struct Model {
    const char* name;
    int qo, kv;
  };
  for (const Model m : {Model{"llama2", 32, 32}, Model{"llama3", 32, 8}})
    for (int batch : {1, 8, 64})
      for (int ctx : {4096, 16384, 65536, 131072}) {
        if (ctx == 131072 && batch != 1) continue;
        if (4.0 * m.kv * 128 * double(batch) * ctx / 1e9 > 24.0) continue;  // as the fp16 baseline
        for (int comp : {50, 75})
          for (int gs : {1, 2, 4})
            for (int bits : {16, 4, 2}) {
              const int rank = (comp == 50 ? 64 : 32) * gs;
              const std::string name = std::string("latent/") + m.name + "/b" +
                                       std::to_string(batch) + "/ctx" + std::to_string(ctx) + "/c" +
                                       std::to_string(comp) + "/g" + std::to_string(gs) + "/bits" +
                                       std::to_string(bits);
              benchmark::RegisterBenchmark(name.c_str(), BM_LatentDecode, m.qo, m.kv, batch, ctx,
                                           gs, rank, bits)
                  ->UseManualTime()
                  ->Iterations(30)
                  ->Unit(benchmark::kMicrosecond);
            }
      }
  for (int batch : {1, 8})
    for (int rank : {256, 128}) {
      const std::string name =
          "value_up_projection/llama2/b" + std::to_string(batch) + "/g4/r" + std::to_string(rank);
      benchmark::RegisterBenchmark(name.c_str(), BM_ValueUpProjection, 32, 32, batch, 4, rank)
          ->UseManualTime()
          ->Iterations(30)
          ->Unit(benchmark::kMicrosecond);
    }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
