// Benchmark of the decode-step matrix-vector product (kernels/decode_gemv.cuh) on the Llama-2-7B
// projection shapes, against cuBLAS (cublasGemmEx, as the engine called it before) in the same
// run: GB/s of weights streamed and % of the measured device-to-device copy bandwidth.
#include <cublas_v2.h>

#include <string>

#include "cuda/decode_gemv.h"
#include "cuda_bench_util.h"

namespace latentkv::bench {
namespace {

struct Shape {
  const char* name;
  int n, k;
};
// Llama-2-7B decode products: W_q / W_o / the 50 % latent projection A_cat (4096 x 4096), W_q
// and A_cat in the latent step's one launch (8192 x 4096), W_qkv, W_gate_up, W_down, LM head.
constexpr Shape kShapes[] = {{"q_o_acat", 4096, 4096}, {"q_acat_pair", 8192, 4096},
                             {"qkv", 12288, 4096},     {"gate_up", 22016, 4096},
                             {"down", 4096, 11008},    {"lm_head", 32000, 4096}};

void BM_DecodeGemv(benchmark::State& state, Shape s, int m, bool ours) {
  DeviceMem x(size_t{2} * m * s.k), w(size_t{2} * s.n * s.k), y(size_t{4} * m * s.n);
  fill_half(x.get(), size_t{1} * m * s.k, 1, -1.0f, 1.0f);
  fill_half(w.get(), size_t{1} * s.n * s.k, 2, -0.05f, 0.05f);
  cublasHandle_t h = nullptr;
  if (!ours && cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    state.SkipWithError("cublasCreate failed");
    return;
  }
  auto op = [&] {
    if (ours) {
      LKV_BENCH_CUDA(detail::launch_decode_gemv(x.get(), s.k, w.get(), s.k, y.get(), s.n, true, m,
                                                s.n, s.k, 0.0f, nullptr));
      return;
    }
    const float alpha = 1.0f, beta = 0.0f;
    if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s.n, m, s.k, &alpha, w.get(), CUDA_R_16F, s.k,
                     x.get(), CUDA_R_16F, s.k, &beta, y.get(), CUDA_R_32F, s.n, CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
      std::fprintf(stderr, "cublasGemmEx failed\n");
  };
  time_op(state, op);
  const double bytes = 2.0 * s.n * s.k;
  set_rate_counters(state, bytes, 2.0 * m * s.n * s.k);
  state.counters["pct_copy_bw"] =
      100.0 * bytes / (state.counters["median_us"] * 1e-6) / copy_bandwidth();
  if (h) cublasDestroy(h);
}

void register_all() {
  for (const Shape& s : kShapes)
    for (int m : {1, 4, 8})
      for (bool ours : {false, true})
        benchmark::RegisterBenchmark((std::string("gemv/") + s.name + "/m" + std::to_string(m) +
                                      (ours ? "/ours" : "/cublas"))
                                         .c_str(),
                                     BM_DecodeGemv, s, m, ours)
            ->UseManualTime()
            ->Iterations(30)
            ->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace latentkv::bench

int main(int argc, char** argv) {
  latentkv::bench::copy_bandwidth();
  latentkv::bench::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
