// Benchmark of the latent append for a decode step (one new token per sequence) and a prefill
// chunk: cuBLAS projection with the stacked A (Llama-2-7B: d_model 4096, 32 KV heads, group
// size 4, 50 %: 8 groups x rank 256 for K and for V) + quantize/pack/ring kernels.
#include <cublas_v2.h>

#include <numeric>
#include <string>
#include <vector>

#include "cuda_bench_util.h"
#include "latentkv/attention/latent_append.h"

namespace latentkv::bench {
namespace {

void BM_LatentAppend(benchmark::State& state, int batch, int new_tokens, int bits) {
  const int d_model = 4096, groups = 8, rank = 256, page = 16, start = 4096;
  QuantConfig q;
  q.bits = bits;
  LatentWindowPolicy w;
  if (bits < 16) {
    w.residual = 128;
    w.chunk = 16;
  }
  const int cap = start + new_tokens;
  const int pages_per_seq = (cap + page - 1) / page;
  const int64_t pages = int64_t{batch} * pages_per_seq;
  const LatentCacheLayout l = make_latent_cache_layout(groups, rank, q, page, pages, w, batch);
  DeviceMem kc(l.codes_bytes), vc(l.codes_bytes), ksz(std::max<int64_t>(l.scale_zero_bytes, 16)),
      vsz(std::max<int64_t>(l.scale_zero_bytes, 16)), kr(std::max<int64_t>(l.ring_bytes, 16)),
      vr(std::max<int64_t>(l.ring_bytes, 16));
  const int n = batch * new_tokens, total = 2 * groups * rank;
  DeviceMem x(size_t{2} * n * d_model), a(size_t{2} * total * d_model);
  fill_half(x.get(), static_cast<size_t>(n) * d_model, 41, -1.0f, 1.0f);
  fill_half(a.get(), static_cast<size_t>(total) * d_model, 42, -0.02f, 0.02f);
  fill_half(kr.get(), kr.bytes() / 2, 43, -1.0f, 1.0f);
  fill_half(vr.get(), vr.bytes() / 2, 44, -1.0f, 1.0f);
  std::vector<int32_t> indptr(batch + 1), indices(pages), lens(batch, start), app(batch + 1);
  for (int b = 0; b <= batch; ++b) {
    indptr[b] = b * pages_per_seq;
    app[b] = b * new_tokens;
  }
  std::iota(indices.begin(), indices.end(), 0);
  DeviceMem d_indptr(indptr.size() * 4), d_indices(indices.size() * 4), d_lens(lens.size() * 4),
      d_lens_out(lens.size() * 4), d_app(app.size() * 4);
  d_indptr.upload(indptr);
  d_indices.upload(indices);
  d_lens.upload(lens);
  d_app.upload(app);
  LatentAppendParams p;
  p.batch_size = batch;
  p.num_groups = groups;
  p.d_model = d_model;
  p.num_tokens = n;
  p.append_indptr = d_app.get<int32_t>();
  p.x = x.get<uint16_t>();
  p.x_stride = d_model;
  p.a_cat = a.get<uint16_t>();
  p.k = l.view;
  p.k.codes = kc.get();
  p.k.scale_zero = ksz.get();
  p.k.ring = kr.get();
  p.v = l.view;
  p.v.codes = vc.get();
  p.v.scale_zero = vsz.get();
  p.v.ring = vr.get();
  p.window = w;
  p.pages.indptr = d_indptr.get<int32_t>();
  p.pages.indices = d_indices.get<int32_t>();
  p.pages.seq_lens = d_lens.get<int32_t>();  // lengths stay at `start`: every call is the same step
  p.pages.page_size = page;
  p.seq_lens_out = d_lens_out.get<int32_t>();
  const int64_t ws_bytes = latent_append_workspace_bytes(p, n);
  DeviceMem ws(ws_bytes);
  cublasHandle_t cublas;
  cublasCreate(&cublas);
  time_op(state, [&] {
    const Status st = latent_append_run(p, cublas, ws.get(), ws_bytes, nullptr);
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.to_string().c_str());
  });
  set_rate_counters(state, 2.0 * total * d_model + 2.0 * n * d_model, 2.0 * n * total * d_model);
  cublasDestroy(cublas);
}

}  // namespace
}  // namespace latentkv::bench

int main(int argc, char** argv) {
  using namespace latentkv::bench;
  for (int bits : {16, 4})
    for (int batch : {1, 8, 64}) {
      const std::string name = "latent_append/llama2_g4_c50/decode/b" + std::to_string(batch) +
                               "/bits" + std::to_string(bits);
      benchmark::RegisterBenchmark(name.c_str(), BM_LatentAppend, batch, 1, bits)
          ->UseManualTime()
          ->Iterations(30)
          ->Unit(benchmark::kMicrosecond);
    }
  benchmark::RegisterBenchmark("latent_append/llama2_g4_c50/prefill512/b1/bits4", BM_LatentAppend,
                               1, 512, 4)
      ->UseManualTime()
      ->Iterations(30)
      ->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
