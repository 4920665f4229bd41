// latentkv engine demo: what an inference engine does with the C API (latentkv/c_api.h).
//
// One device arena holds the latent K/V caches of every layer and the shared workspaces; a host
// "block manager" hands out pages; four sequences of different prompt lengths are prefilled with
// one append per layer, then decoded token by token (append one token, decode, value
// up-projection per layer). Weights and hidden states are synthetic (Llama-3-8B attention
// shapes, one random weight set shared by all layers): the demo shows the call sequence and the
// memory figures, not model quality. Prints bytes per token of the latent cache vs an fp16 cache.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "latentkv/c_api.h"

#if defined(LATENTKV_WITH_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

namespace {

#define DEMO_CHECK(call)                                                  \
  do {                                                                    \
    const lkv_status st_ = (call);                                        \
    if (st_ != LKV_OK) {                                                  \
      std::fprintf(stderr, "engine_demo: %s: %s\n", lkv_status_name(st_), \
                   lkv_last_error_message());                             \
      return 1;                                                           \
    }                                                                     \
  } while (0)

#if defined(LATENTKV_WITH_CUDA)
#define CUDA_CHECK(call)                                                              \
  do {                                                                                \
    const cudaError_t err_ = (call);                                                  \
    if (err_ != cudaSuccess) {                                                        \
      std::fprintf(stderr, "engine_demo: %s: %s\n", #call, cudaGetErrorString(err_)); \
      return 1;                                                                       \
    }                                                                                 \
  } while (0)

constexpr int kLayers = 4;
constexpr int kDModel = 4096, kQoHeads = 32, kKvHeads = 8, kHeadDim = 128, kGroupSize = 4;
constexpr int kGroups = kKvHeads / kGroupSize;
constexpr int kRank = 256;  // per group of 4 heads x 128 dims = 512 -> 50 % kept
constexpr int kSteps = 16;
const std::vector<int> kPrompts = {1000, 37, 4000, 200};

/// fp16 bits of uniform values in [-scale, scale) from a xorshift generator (fast, no <random>).
std::vector<uint16_t> random_half(size_t n, float scale, uint64_t seed) {
  std::vector<uint16_t> out(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& h : out) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    const float u = static_cast<float>(s >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f;
    // fp32 -> fp16 by truncation is enough for synthetic data in (-1, 1) * scale.
    uint32_t b;
    const float f = u * scale;
    std::memcpy(&b, &f, 4);
    const int e = static_cast<int>((b >> 23) & 0xff) - 127 + 15;
    h = e <= 0 ? static_cast<uint16_t>((b >> 16) & 0x8000)
               : static_cast<uint16_t>(((b >> 16) & 0x8000) | (e << 10) | ((b >> 13) & 0x3ff));
  }
  return out;
}

/// Bump allocator over the one arena: 256-byte aligned slices.
struct Arena {
  uint8_t* base = nullptr;
  int64_t used = 0;
  void* take(int64_t bytes) {
    void* p = base + used;
    used += (bytes + 255) / 256 * 256;
    return p;
  }
};

int64_t align256(int64_t b) { return (b + 255) / 256 * 256; }

/// Device buffers of the engine itself (weights, page tables, activations), freed at exit.
std::vector<void*> g_device_buffers;

template <typename T>
T* upload(const std::vector<T>& host) {
  void* p = nullptr;
  if (cudaMalloc(&p, host.size() * sizeof(T)) != cudaSuccess) return nullptr;
  g_device_buffers.push_back(p);
  cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  return static_cast<T*>(p);
}

int run() {
  lkv_device_info dev{};
  const lkv_status found = lkv_device_query(&dev);
  if (found == LKV_ERR_NO_GPU) {
    std::fprintf(stderr, "engine_demo: this demo needs a CUDA GPU: %s\n", lkv_last_error_message());
    return 1;
  }
  DEMO_CHECK(found);
  std::printf("GPU: sm_%d, %d SMs, %.1f GiB free\n", dev.compute_capability, dev.num_sms,
              dev.free_bytes / 1073741824.0);

  // Host block manager: every sequence gets pages for its prompt and all decode steps.
  const int batch = static_cast<int>(kPrompts.size());
  lkv_latent_cache_desc desc{};
  desc.num_groups = kGroups;
  desc.rank_k = desc.rank_v = kRank;
  desc.bits = 4;
  desc.quant_group = 0;
  desc.page_size = 16;
  desc.residual = 64;
  desc.chunk = 32;
  desc.max_batch = batch;
  std::vector<int32_t> indptr(1, 0), indices, lens(batch, 0), prompt_rows(1, 0), capacity(batch);
  int max_len = 0;
  for (int b = 0; b < batch; ++b) {
    capacity[b] = kPrompts[b] + kSteps;
    max_len = capacity[b] > max_len ? capacity[b] : max_len;
    const int pages = (capacity[b] + desc.page_size - 1) / desc.page_size;
    for (int i = 0; i < pages; ++i) indices.push_back(static_cast<int32_t>(indices.size()));
    indptr.push_back(static_cast<int32_t>(indices.size()));
    prompt_rows.push_back(prompt_rows.back() + kPrompts[b]);
  }
  desc.num_pages = static_cast<int64_t>(indices.size());

  lkv_latent_layer layer{};
  layer.d_model = kDModel;
  layer.num_qo_heads = kQoHeads;
  layer.num_kv_heads = kKvHeads;
  layer.head_dim = kHeadDim;
  layer.group_size = kGroupSize;
  layer.sm_scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));

  // Sizes first, then one allocation.
  lkv_cache_sizes latent{}, fp16{};
  DEMO_CHECK(lkv_latent_cache_size(&desc, &latent));
  lkv_paged_cache_desc fp16_desc{kKvHeads, kHeadDim, desc.page_size, desc.num_pages};
  DEMO_CHECK(lkv_paged_cache_size(&fp16_desc, &fp16));
  lkv_decode_plan plan{};
  DEMO_CHECK(lkv_latent_decode_plan(&desc, &layer, batch, max_len, dev.num_sms, &plan));
  int64_t append_ws = 0, vp_ws = 0;
  DEMO_CHECK(lkv_latent_append_workspace_size(&desc, prompt_rows.back(), &append_ws));
  DEMO_CHECK(lkv_value_projection_workspace_size(&desc, &layer, &vp_ws));
  const int64_t arena_bytes = kLayers * align256(latent.arena_bytes) + align256(append_ws) +
                              align256(plan.workspace_bytes) + align256(vp_ws);
  Arena arena;
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&arena.base), arena_bytes));
  std::vector<lkv_latent_cache*> caches(kLayers, nullptr);
  for (int l = 0; l < kLayers; ++l)
    DEMO_CHECK(lkv_latent_cache_create(&desc, arena.take(latent.arena_bytes), latent.arena_bytes,
                                       &caches[l]));
  void* append_workspace = arena.take(append_ws);
  void* decode_workspace = arena.take(plan.workspace_bytes);
  void* vp_workspace = arena.take(vp_ws);

  // Synthetic factors (shared by the layers) and the page table; checked before upload.
  const int rows = kGroups * kGroupSize * kHeadDim;
  std::vector<float> b_k_f(static_cast<size_t>(rows) * kRank);
  const std::vector<uint16_t> b_k = random_half(b_k_f.size(), 0.1f, 2);
  for (size_t i = 0; i < b_k.size(); ++i) {
    // fp16 -> fp32 of the normal numbers random_half produces (zero for its flushed subnormals).
    const uint32_t h = b_k[i], e = (h >> 10) & 0x1f;
    const uint32_t bits = e == 0 ? (h & 0x8000) << 16
                                 : ((h & 0x8000) << 16) | ((e + 112) << 23) | ((h & 0x3ff) << 13);
    std::memcpy(&b_k_f[i], &bits, 4);
  }
  std::vector<int8_t> b_i8(b_k_f.size());
  std::vector<float> b_i8_scale(rows);
  std::vector<int32_t> b_i8_rowsum(rows);
  DEMO_CHECK(lkv_make_key_factors_i8(b_k_f.data(), kGroups, kGroupSize, kHeadDim, kRank,
                                     b_i8.data(), b_i8_scale.data(), b_i8_rowsum.data()));
  std::vector<double> inv_freq(kHeadDim / 2);
  DEMO_CHECK(lkv_rope_inv_freq(500000.0, 1.0, nullptr, kHeadDim, inv_freq.data()));
  std::vector<int32_t> group_heads(kKvHeads);
  for (int i = 0; i < kKvHeads; ++i) group_heads[i] = i;
  // The kernels cannot report a sequence that outgrows its pages: check the table on the host
  // for the whole run (prompt + every decode step) before it is uploaded.
  DEMO_CHECK(lkv_latent_cache_check_pages(caches[0], batch, indptr.data(), indices.data(),
                                          lens.data(), capacity.data()));
  layer.group_heads = upload(group_heads);
  layer.a_cat = upload(random_half(size_t{2} * kGroups * kRank * kDModel, 0.02f, 1));
  layer.b_k = upload(b_k);
  layer.b_k_i8 = upload(b_i8);
  layer.b_k_i8_scale = upload(b_i8_scale);
  layer.b_k_i8_rowsum = upload(b_i8_rowsum);
  layer.b_v = upload(random_half(static_cast<size_t>(rows) * kRank, 0.1f, 3));
  layer.inv_freq = upload(inv_freq);
  int32_t* d_indptr = upload(indptr);
  int32_t* d_indices = upload(indices);
  int32_t* d_lens = upload(lens);
  int32_t* d_lens_next = upload(lens);
  int32_t* d_prompt_rows = upload(prompt_rows);
  std::vector<int32_t> one_each(batch + 1);
  for (int b = 0; b <= batch; ++b) one_each[b] = b;
  int32_t* d_one_each = upload(one_each);
  uint16_t* d_prompt = upload(random_half(static_cast<size_t>(prompt_rows.back()) * kDModel, 1, 4));
  uint16_t* d_x = upload(random_half(static_cast<size_t>(batch) * kDModel, 1.0f, 5));
  uint16_t* d_q = upload(random_half(static_cast<size_t>(batch) * kQoHeads * kHeadDim, 1.0f, 6));
  uint16_t* d_z = upload(std::vector<uint16_t>(static_cast<size_t>(batch) * kQoHeads * kRank));
  uint16_t* d_o = upload(std::vector<uint16_t>(static_cast<size_t>(batch) * kQoHeads * kHeadDim));
  if (!layer.a_cat || !d_prompt || !d_o) {
    std::fprintf(stderr, "engine_demo: device allocation failed\n");
    return 1;
  }
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cublasHandle_t cublas;
  if (cublasCreate(&cublas) != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "engine_demo: cublasCreate failed\n");
    return 1;
  }

  // Appends read lengths from d_lens and write d_lens_next (every layer writes the same values);
  // decode reads d_lens_next; after the last layer the new lengths become the current ones.
  const auto append_args = [&](const int32_t* app, const uint16_t* x, int n) {
    lkv_latent_append_args a{};
    a.batch_size = batch;
    a.num_tokens = n;
    a.append_indptr = app;
    a.x = x;
    a.x_stride = kDModel;
    a.pages = {d_indptr, d_indices, d_lens};
    a.seq_lens_out = d_lens_next;
    return a;
  };
  const lkv_latent_append_args prefill = append_args(d_prompt_rows, d_prompt, prompt_rows.back());
  for (lkv_latent_cache* c : caches)
    DEMO_CHECK(
        lkv_latent_append_run(c, &layer, &prefill, cublas, append_workspace, append_ws, stream));
  CUDA_CHECK(cudaMemcpyAsync(d_lens, d_lens_next, sizeof(int32_t) * batch, cudaMemcpyDeviceToDevice,
                             stream));

  lkv_latent_decode_args dec{};
  dec.batch_size = batch;
  dec.pages = {d_indptr, d_indices, d_lens_next};
  dec.q = d_q;
  dec.q_dtype = LKV_DTYPE_F16;
  dec.q_stride_batch = int64_t{kQoHeads} * kHeadDim;
  dec.q_stride_head = kHeadDim;
  dec.out = d_z;
  dec.out_dtype = LKV_DTYPE_F16;
  dec.out_stride_batch = int64_t{kQoHeads} * kRank;
  dec.out_stride_head = kRank;
  lkv_value_projection_args vp{};
  vp.batch_size = batch;
  vp.z = d_z;
  vp.z_stride_batch = int64_t{kQoHeads} * kRank;
  vp.o = d_o;
  vp.o_stride_batch = int64_t{kQoHeads} * kHeadDim;
  const lkv_latent_append_args token = append_args(d_one_each, d_x, batch);
  for (int step = 0; step < kSteps; ++step) {
    for (lkv_latent_cache* c : caches) {
      DEMO_CHECK(
          lkv_latent_append_run(c, &layer, &token, cublas, append_workspace, append_ws, stream));
      DEMO_CHECK(lkv_latent_decode_run(c, &layer, &dec, &plan, decode_workspace,
                                       plan.workspace_bytes, stream));
      DEMO_CHECK(lkv_value_projection_run(c, &layer, &vp, cublas, vp_workspace, vp_ws, stream));
    }
    CUDA_CHECK(cudaMemcpyAsync(d_lens, d_lens_next, sizeof(int32_t) * batch,
                               cudaMemcpyDeviceToDevice, stream));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDA_CHECK(cudaMemcpy(lens.data(), d_lens, sizeof(int32_t) * batch, cudaMemcpyDeviceToHost));
  std::vector<uint16_t> o(static_cast<size_t>(batch) * kQoHeads * kHeadDim);
  CUDA_CHECK(cudaMemcpy(o.data(), d_o, o.size() * 2, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (uint16_t h : o) bad += ((h >> 10) & 0x1f) == 0x1f;  // Inf or NaN
  std::printf("sequences after %d decode steps:", kSteps);
  for (int32_t n : lens) std::printf(" %d", n);
  std::printf(" tokens; non-finite outputs: %d\n", bad);

  std::printf("layer: %d KV heads x %d dims, %d groups of %d, rank %d per group, %d-bit latents\n",
              kKvHeads, kHeadDim, kGroups, kGroupSize, kRank, desc.bits);
  std::printf("bytes per token and layer: latent %lld, fp16 %lld (%.2fx smaller)\n",
              static_cast<long long>(latent.bytes_per_token),
              static_cast<long long>(fp16.bytes_per_token),
              static_cast<double>(fp16.bytes_per_token) / latent.bytes_per_token);
  std::printf("bytes per token, %d layers: latent %lld, fp16 %lld\n", kLayers,
              static_cast<long long>(kLayers * latent.bytes_per_token),
              static_cast<long long>(kLayers * fp16.bytes_per_token));
  std::printf("cache arena per layer for %lld pages of %d tokens: latent %lld B, fp16 %lld B\n",
              static_cast<long long>(desc.num_pages), desc.page_size,
              static_cast<long long>(latent.arena_bytes), static_cast<long long>(fp16.arena_bytes));
  std::printf("one arena: %lld B (%d layer caches + workspaces)\n",
              static_cast<long long>(arena_bytes), kLayers);

  for (lkv_latent_cache* c : caches) lkv_latent_cache_destroy(c);  // handles only
  cudaFree(arena.base);
  for (void* p : g_device_buffers) cudaFree(p);
  cublasDestroy(cublas);
  cudaStreamDestroy(stream);
  return bad == 0 ? 0 : 1;
}
#endif

}  // namespace

int main() {
#if defined(LATENTKV_WITH_CUDA)
  return run();
#else
  std::fprintf(stderr, "engine_demo: latentkv was built without CUDA; this demo needs a GPU\n");
  return 1;
#endif
}
