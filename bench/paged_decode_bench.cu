// Benchmark of the fp16 paged decode kernel (the in-repo baseline) and of the HBM ceiling
// (device-to-device copy) in the same process. Shapes: Llama-2-7B attention (MHA 32x128) and
// Llama-3-8B (GQA 32/8x128), batch x context as in bench/run_gpu.sh; one layer, page_size 16.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cuda_bench_util.h"
#include "latentkv/attention/paged_decode.h"

namespace latentkv::bench {
namespace {

void BM_HbmCopy(benchmark::State& state) {
  const size_t bytes = size_t{2} << 30;
  DeviceMem a(bytes), b(bytes);
  fill_bytes(a.get(), bytes, 1);
  time_op(state, [&] {
    LKV_BENCH_CUDA(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice));
  });
  set_rate_counters(state, 2.0 * bytes, 0.0);  // bytes read + bytes written
}

/// `page` tokens per page; `shuffled`: page ids in random order (a long-running server's pool),
/// else each sequence's pages are consecutive in memory.
void BM_PagedDecode(benchmark::State& state, int qo, int kv, int batch, int ctx, int page,
                    bool shuffled) {
  const int hd = 128;
  const int pages_per_seq = (ctx + page - 1) / page;
  const int64_t pages = int64_t{batch} * pages_per_seq;
  const int64_t token_stride = hd, head_stride = hd * page, page_stride = head_stride * kv;
  DeviceMem k(pages * page_stride * 2), v(pages * page_stride * 2), q(size_t{2} * batch * qo * hd),
      out(size_t{2} * batch * qo * hd);
  fill_half(k.get(), pages * page_stride, 11, -1.0f, 1.0f);
  fill_half(v.get(), pages * page_stride, 12, -1.0f, 1.0f);
  fill_half(q.get(), static_cast<size_t>(batch) * qo * hd, 13, -1.0f, 1.0f);
  std::vector<int32_t> indptr(batch + 1), indices(pages), lens(batch, ctx);
  for (int b = 0; b <= batch; ++b) indptr[b] = b * pages_per_seq;
  std::iota(indices.begin(), indices.end(), 0);
  if (shuffled) std::shuffle(indices.begin(), indices.end(), std::mt19937(3));
  DeviceMem d_indptr(indptr.size() * 4), d_indices(indices.size() * 4), d_lens(lens.size() * 4);
  d_indptr.upload(indptr);
  d_indices.upload(indices);
  d_lens.upload(lens);
  PagedDecodeParams p;
  p.batch_size = batch;
  p.num_qo_heads = qo;
  p.num_kv_heads = kv;
  p.head_dim = hd;
  p.q = q.get();
  p.q_stride_batch = int64_t{qo} * hd;
  p.q_stride_head = hd;
  p.k_cache = k.get();
  p.v_cache = v.get();
  p.page_stride = page_stride;
  p.head_stride = head_stride;
  p.token_stride = token_stride;
  p.pages.indptr = d_indptr.get<int32_t>();
  p.pages.indices = d_indices.get<int32_t>();
  p.pages.seq_lens = d_lens.get<int32_t>();
  p.pages.page_size = page;
  p.sm_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  p.out = out.get();
  p.out_stride_batch = int64_t{qo} * hd;
  p.out_stride_head = hd;
  DecodePlan plan;
  Status st = paged_decode_plan(p, ctx, sm_count(), &plan);
  if (!st.ok()) {
    state.SkipWithError(st.to_string().c_str());
    return;
  }
  DeviceMem ws(std::max<int64_t>(plan.workspace_bytes, 16));
  time_op(state, [&] {
    const Status s = paged_decode_run(p, plan, ws.get(), plan.workspace_bytes, nullptr);
    if (!s.ok()) std::fprintf(stderr, "%s\n", s.to_string().c_str());
  });
  const double kv_bytes_per_token = 4.0 * kv * hd;
  set_rate_counters(state, kv_bytes_per_token * batch * ctx, 4.0 * batch * ctx * qo * hd);
  state.counters["kv_bytes_per_token"] = kv_bytes_per_token;
  state.counters["splits"] = plan.num_splits;
}

}  // namespace
}  // namespace latentkv::bench

int main(int argc, char** argv) {
  using namespace latentkv::bench;
  benchmark::RegisterBenchmark("hbm_copy/2GiB", BM_HbmCopy)
      ->UseManualTime()
      ->Iterations(30)
      ->Unit(benchmark::kMicrosecond);
  struct Model {
    const char* name;
    int qo, kv;
  };
  for (const Model m : {Model{"llama2", 32, 32}, Model{"llama3", 32, 8}})
    for (int batch : {1, 8, 64})
      for (int ctx : {4096, 16384, 65536, 131072}) {
        if (ctx == 131072 && batch != 1) continue;
        const double cache_gb = 4.0 * m.kv * 128 * double(batch) * ctx / 1e9;
        if (cache_gb > 24.0) continue;  // 64 x 64K MHA: 69 GB, beyond one card with the baselines
        const std::string name = std::string("paged_fp16/") + m.name + "/b" +
                                 std::to_string(batch) + "/ctx" + std::to_string(ctx);
        benchmark::RegisterBenchmark(name.c_str(), BM_PagedDecode, m.qo, m.kv, batch, ctx, 16, true)
            ->UseManualTime()
            ->Iterations(30)
            ->Unit(benchmark::kMicrosecond);
      }
  // Page layout at the two target points (Llama-2): the default rows above use 16-token pages in
  // shuffled order; these isolate what the page order and size cost against contiguous SDPA.
  struct Layout {
    const char* tag;
    int page;
    bool shuffled;
  };
  for (const Layout l : {Layout{"page16_seq", 16, false}, Layout{"page64_shuf", 64, true},
                         Layout{"page256_shuf", 256, true}})
    for (const auto [batch, ctx] : {std::pair{1, 65536}, std::pair{8, 16384}}) {
      const std::string name = std::string("paged_fp16_layout/llama2/b") + std::to_string(batch) +
                               "/ctx" + std::to_string(ctx) + "/" + l.tag;
      benchmark::RegisterBenchmark(name.c_str(), BM_PagedDecode, 32, 32, batch, ctx, l.page,
                                   l.shuffled)
          ->UseManualTime()
          ->Iterations(30)
          ->Unit(benchmark::kMicrosecond);
    }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
