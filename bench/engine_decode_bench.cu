// End-to-end decode step of the GPU engine (issue 6): the whole model (all layers, LM head) for
// one new token per sequence, fp16 KV cache vs latent cache, on synthetic weights in real model
// shapes (Llama-2-7B: MHA 32 x 128, 32 layers; SmolLM2-135M: 9/3 x 64, 30 layers).
//
// Names: engine/<model>/<cache>/b<batch>/ctx<tokens>, model = llama2 (groups of 4 KV heads) |
// smollm2 (groups of 1) | smollm2_g3 (one joint group of 3), cache = fp16 | c50_f16 | c50_b4 |
// c75_f16 | c75_b4 (c50 / c75: latent ranks keep half / a quarter of a group's channels; f16 / b4:
// fp16 or 4-bit latents with a 128-token fp16 residual window). Every sequence of the batch holds
// `ctx` tokens (cache contents synthetic: the step time does not depend on them). A step is the
// CUDA graph replay of the engine's decode (token upload included); timing per cuda_bench_util.h.
// Counters: step_us (median), tok_per_s (batch / step), bytes (weights + KV read per step),
// GBps, bound_x = step time / (bytes / measured copy bandwidth): 1.0 = at the memory limit.
// capacity/<model>/<cache>/...: the largest context (batch 1) and the largest batch (ctx 32K)
// whose engine fits in the free GPU memory next to the weights, built and stepped once.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "cuda_bench_util.h"
#include "latentkv/engine/gpu_engine.h"
#include "model_shapes.h"

namespace latentkv::bench {
namespace {

// Model shapes with the context stretched to the 128K the decode kernels take (+ the timed steps).
LlamaConfig llama2_7b() {
  LlamaConfig c = llama2_7b_shape();
  c.context_length = 131072 + 256;
  return c;
}

LlamaConfig smollm2() {
  LlamaConfig c = smollm2_135m_shape();
  c.context_length = 131072 + 256;
  return c;
}

struct CacheSpec {
  const char* name;
  double kept;  // 0 = fp16 cache
  int bits;
};
const CacheSpec kCaches[] = {{"fp16", 0, 16},
                             {"c50_f16", 0.5, 16},
                             {"c50_b4", 0.5, 4},
                             {"c75_f16", 0.25, 16},
                             {"c75_b4", 0.25, 4}};

// Llama-2: groups of 4 KV heads (the kernel benchmark's target setting). SmolLM2: groups of 1
// ("smollm2"), or its 3 KV heads in one joint group ("smollm2_g3") as the compression pipeline
// makes for the default model: at the same bytes the joint group's rank is 3x a head's, and so
// is the key-rebuild work per head.
int group_size_of(const std::string& model) {
  return model == "llama2" ? 4 : model == "smollm2_g3" ? 3 : 1;
}

// One model's weights and the factors of the cache in use stay resident between benchmarks.
struct Resident {
  std::string model, cache;
  std::unique_ptr<GpuModelWeights> weights;
  std::unique_ptr<GpuLatentFactors> factors;
};
Resident& resident() {
  static Resident r;
  return r;
}

void load(const std::string& model, const CacheSpec& cache) {
  Resident& r = resident();
  const LlamaConfig c = model == "llama2" ? llama2_7b() : smollm2();
  if (r.model != model) {
    r.factors.reset();
    r.weights.reset();
    r.weights = GpuModelWeights::random(c, 1);
    r.model = model;
    r.cache.clear();
  }
  if (r.cache != cache.name) {
    r.factors.reset();
    if (cache.kept > 0) {
      const int g = group_size_of(model);
      const int rank = static_cast<int>(std::lround(cache.kept * g * c.head_dim));
      QuantConfig q;
      q.bits = cache.bits;
      q.residual = cache.bits == 16 ? 0 : 128;
      r.factors = GpuLatentFactors::random(c, g, rank, rank, q, 2);
    }
    r.cache = cache.name;
  }
}

// The decode kernels plan for sequences up to 128K tokens: the "128K" points hold 128K - 64
// tokens so that the timed steps (warm-up included) stay within that.
constexpr int64_t kMaxSeq = 131072;
int64_t context_of(int64_t ctx) { return ctx == kMaxSeq ? kMaxSeq - 64 : ctx; }

GpuEngineOptions options(int batch, int64_t ctx) {
  GpuEngineOptions o;
  o.max_batch = batch;
  o.max_seq_len = std::min(ctx + 128, kMaxSeq);  // room for the timed steps
  o.max_chunk = 1;                               // no prefill here
  return o;
}

bool fits(const LlamaConfig& c, const GpuLatentFactors* f, const GpuEngineOptions& o) {
  size_t free_bytes = 0, total = 0;
  LKV_BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total));
  return GpuEngine::memory_needed(c, f, o).total() + (int64_t{512} << 20) <
         static_cast<int64_t>(free_bytes);
}

void decode_point(benchmark::State& state, const std::string& model, const CacheSpec& cache,
                  int batch, int64_t ctx);
void capacity_point(benchmark::State& state, const std::string& model, const CacheSpec& cache,
                    bool by_batch);

// Runs `body`, turning a latentkv error into a skipped benchmark with its message.
template <typename F>
void guarded(benchmark::State& state, F body) {
  try {
    body();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void bm_decode(benchmark::State& state, std::string model, CacheSpec cache, int batch,
               int64_t ctx) {
  guarded(state, [&] { decode_point(state, model, cache, batch, ctx); });
}

void bm_capacity(benchmark::State& state, std::string model, CacheSpec cache, bool by_batch) {
  guarded(state, [&] { capacity_point(state, model, cache, by_batch); });
}

void decode_point(benchmark::State& state, const std::string& model, const CacheSpec& cache,
                  int batch, int64_t ctx) {
  load(model, cache);
  Resident& r = resident();
  const LlamaConfig& c = r.weights->config();
  ctx = context_of(ctx);
  const GpuEngineOptions o = options(batch, ctx);
  if (!fits(c, r.factors.get(), o)) {
    state.SkipWithError("does not fit in GPU memory");
    return;
  }
  GpuEngine engine(*r.weights, r.factors.get(), o);
  engine.set_lengths_for_benchmark(std::vector<int64_t>(batch, ctx));
  std::vector<TokenId> tokens(batch);
  for (int b = 0; b < batch; ++b) tokens[b] = (b * 7919 + 11) % c.vocab_size;
  time_op(
      state, [&] { engine.decode(tokens); }, static_cast<cudaStream_t>(engine.stream()));
  const double kv = static_cast<double>(engine.memory().kv_bytes_per_token) * batch * ctx;
  const double factor_bytes = r.factors ? static_cast<double>(r.factors->bytes()) : 0.0;
  const double bytes = static_cast<double>(r.weights->bytes()) + kv + factor_bytes;
  const double sec = state.counters["median_us"] * 1e-6;
  state.counters["step_us"] = state.counters["median_us"];
  state.counters["tok_per_s"] = batch / sec;
  state.counters["bytes"] = bytes;
  state.counters["GBps"] = bytes / sec * 1e-9;
  state.counters["copy_GBps"] = copy_bandwidth() * 1e-9;
  state.counters["bound_x"] = sec / (bytes / copy_bandwidth());
  state.counters["kv_bytes_per_token"] = static_cast<double>(engine.memory().kv_bytes_per_token);
  state.SetLabel(engine.describe());
}

// Largest max_seq_len (batch 1) or max_batch (at ctx) whose engine fits; then built and stepped.
void capacity_point(benchmark::State& state, const std::string& model, const CacheSpec& cache,
                    bool by_batch) {
  load(model, cache);
  Resident& r = resident();
  const LlamaConfig& c = r.weights->config();
  int64_t lo = 0, hi = by_batch ? 256 : kMaxSeq - 64;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (fits(c, r.factors.get(),
             by_batch ? options(static_cast<int>(mid), 32768) : options(1, mid)))
      lo = mid;
    else
      hi = mid - 1;
  }
  if (lo == 0) {
    state.SkipWithError("nothing fits");
    return;
  }
  const int batch = by_batch ? static_cast<int>(lo) : 1;
  const int64_t ctx = by_batch ? 32768 : lo;
  GpuEngine engine(*r.weights, r.factors.get(), options(batch, ctx));
  engine.set_lengths_for_benchmark(std::vector<int64_t>(batch, ctx));
  std::vector<TokenId> tokens(batch, 1);
  time_op(
      state, [&] { engine.decode(tokens); }, static_cast<cudaStream_t>(engine.stream()), 1);
  state.counters[by_batch ? "max_batch" : "max_ctx"] = static_cast<double>(lo);
  state.counters["step_us"] = state.counters["median_us"];
  state.counters["tok_per_s"] = batch / (state.counters["median_us"] * 1e-6);
  state.counters["engine_GiB"] = engine.memory().total() / double(1 << 30);
  state.SetLabel(engine.describe());
}

void register_all() {
  for (const char* model : {"smollm2", "smollm2_g3", "llama2"}) {
    for (const CacheSpec& cache : kCaches) {
      for (int batch : {1, 8, 32}) {
        for (int64_t ctx : {4096, 16384, 65536, 131072}) {
          if (ctx == 131072 && batch > 1) continue;
          benchmark::RegisterBenchmark((std::string("engine/") + model + "/" + cache.name + "/b" +
                                        std::to_string(batch) + "/ctx" + std::to_string(ctx))
                                           .c_str(),
                                       bm_decode, std::string(model), cache, batch, ctx)
              ->UseManualTime()
              ->Iterations(30)
              ->Unit(benchmark::kMicrosecond);
        }
      }
      if (std::string(model) == "smollm2_g3") continue;  // same capacity as smollm2
      for (bool by_batch : {false, true})
        benchmark::RegisterBenchmark((std::string("capacity/") + model + "/" + cache.name +
                                      (by_batch ? "/max_batch_ctx32768" : "/max_ctx_b1"))
                                         .c_str(),
                                     bm_capacity, std::string(model), cache, by_batch)
            ->UseManualTime()
            ->Iterations(5)
            ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace latentkv::bench

int main(int argc, char** argv) {
  // Measured before any engine holds most of the GPU memory (the copy needs 4 GiB).
  latentkv::bench::copy_bandwidth();
  latentkv::bench::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
