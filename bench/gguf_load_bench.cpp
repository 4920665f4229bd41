// Model loading and dequantization speed.
//
//   BM_LoadLlama: GgufFile + load_llama of the default model (or $LATENTKV_MODEL), all tensors
//                 dequantized to fp32 with the default OpenMP threads. Run from the repo root.
//   BM_DequantizeRow/<type>: one thread decoding a 1024 × 4096 matrix of random blocks
//                 (elements/s; bytes/s counts the float32 output).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "latentkv/gguf/dequantize.h"
#include "latentkv/model/llama_loader.h"

namespace {

using namespace latentkv;

std::string model_path() {
  const char* env = std::getenv("LATENTKV_MODEL");
  return env ? env : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

void BM_LoadLlama(benchmark::State& state) {
  const std::string path = model_path();
  if (!GgufFile::open(path).ok()) {
    state.SkipWithError(("model not found: " + path).c_str());
    return;
  }
  int64_t params = 0;
  for (auto _ : state) {
    const LlamaWeights w = load_llama(path);
    params = w.tok_embeddings.size();
    benchmark::DoNotOptimize(w.layers.data());
  }
  state.counters["embedding_params"] = static_cast<double>(params);
}
BENCHMARK(BM_LoadLlama)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_DequantizeRow(benchmark::State& state) {
  const auto type = static_cast<GgmlType>(state.range(0));
  const int64_t rows = 1024, cols = 4096;
  const uint64_t row_bytes = ggml_row_bytes(type, cols);
  std::vector<uint8_t> data(rows * row_bytes);
  std::mt19937 rng(1);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  std::vector<float> out(rows * cols);
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(type, data.data() + r * row_bytes, out.data() + r * cols, cols);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(ggml_type_name(type));
  state.SetItemsProcessed(state.iterations() * rows * cols);
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
}
BENCHMARK(BM_DequantizeRow)
    ->Unit(benchmark::kMillisecond)
    ->ArgName("type")
    ->Arg(static_cast<int>(GgmlType::kF16))
    ->Arg(static_cast<int>(GgmlType::kBF16))
    ->Arg(static_cast<int>(GgmlType::kQ4_0))
    ->Arg(static_cast<int>(GgmlType::kQ4_1))
    ->Arg(static_cast<int>(GgmlType::kQ5_0))
    ->Arg(static_cast<int>(GgmlType::kQ5_1))
    ->Arg(static_cast<int>(GgmlType::kQ8_0))
    ->Arg(static_cast<int>(GgmlType::kQ2_K))
    ->Arg(static_cast<int>(GgmlType::kQ3_K))
    ->Arg(static_cast<int>(GgmlType::kQ4_K))
    ->Arg(static_cast<int>(GgmlType::kQ5_K))
    ->Arg(static_cast<int>(GgmlType::kQ6_K));

}  // namespace

BENCHMARK_MAIN();
