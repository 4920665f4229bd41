// GpuLatentFactors: per layer one device block with A_cat, B_k, B_v (fp16), the int8 key factors
// of quantized latents and the grouping, from a compressed model or random for benchmarks.
#include "latentkv/engine/gpu_latent_factors.h"

#include <cmath>
#include <random>

#include "latentkv/attention/latent_decode.h"
#include "latentkv/pipeline/compressed_model.h"

#if defined(LATENTKV_WITH_CUDA)
#include <cuda_runtime.h>

#include "engine/device_memory.h"
#include "engine/model_ops.h"
#endif

namespace latentkv {

struct GpuLatentFactors::HostLayer {
  int group_size = 0, num_groups = 0, rank_k = 0, rank_v = 0;
  std::vector<float> a_k, a_v;  // empty: random on the device
  std::vector<float> b_k, b_v;
  std::vector<int> group_heads;
};

int64_t GpuLatentFactors::bytes_per_token() const {
  int64_t total = 0;
  for (const GpuLatentLayer& l : layers_)
    total += int64_t{l.num_groups} *
             (latent_bytes_per_token(l.rank_k, quant_) + latent_bytes_per_token(l.rank_v, quant_));
  return total;
}

#if defined(LATENTKV_WITH_CUDA)

namespace {

constexpr int64_t kAlign = 256;
int64_t align_up(int64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

std::vector<uint16_t> to_half(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!(std::isfinite(v[i]) && std::fabs(v[i]) <= 65504.0f))
      LKV_THROW(StatusCode::kNumericalError, "latent factor value ", v[i], " does not fit fp16");
    h[i] = float_to_half_bits(v[i]);
  }
  return h;
}

void copy_to(void* dst, const void* src, int64_t bytes, const char* what) {
  if (bytes > 0) engine::check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), what);
}

}  // namespace

GpuLatentFactors::~GpuLatentFactors() {
  for (void* p : blocks_) cudaFree(p);
}

void GpuLatentFactors::build(const LlamaConfig& c, const std::vector<HostLayer>& host,
                             uint64_t seed) {
  engine::require_gpu();
  d_model_ = c.d_model;
  head_dim_ = c.head_dim;
  num_kv_heads_ = c.num_kv_heads;
  for (const HostLayer& h : host) {
    const int64_t rows_k = int64_t{h.num_groups} * h.rank_k,
                  rows_v = int64_t{h.num_groups} * h.rank_v;
    const int64_t b_rows = int64_t{h.group_size} * c.head_dim;
    const bool i8 = quant_.bits < 16;
    LatentKeyFactorsI8 kf;
    if (i8) kf = make_key_factors_i8(h.b_k, h.num_groups, h.group_size, c.head_dim, h.rank_k);
    const int64_t n_a = (rows_k + rows_v) * c.d_model;
    const int64_t n_scale = int64_t{h.num_groups} * b_rows;
    const int64_t sizes[] = {2 * n_a,
                             2 * static_cast<int64_t>(h.b_k.size()),
                             2 * static_cast<int64_t>(h.b_v.size()),
                             i8 ? static_cast<int64_t>(kf.values.size()) : 0,
                             i8 ? 4 * n_scale : 0,
                             i8 ? 4 * n_scale : 0,
                             4 * int64_t{c.num_kv_heads},
                             4 * int64_t{c.num_kv_heads}};
    int64_t total = 0;
    for (int64_t s : sizes) total += align_up(s);
    void* block = nullptr;
    if (cudaMalloc(&block, static_cast<size_t>(total)) != cudaSuccess) {
      cudaGetLastError();
      engine::throw_out_of_memory("latent factors", total);
    }
    blocks_.push_back(block);
    bytes_ += total;
    char* at = static_cast<char*>(block);
    char* ptr[8];
    for (int i = 0; i < 8; ++i) {
      ptr[i] = at;
      at += align_up(sizes[i]);
    }
    GpuLatentLayer l;
    l.group_size = h.group_size;
    l.num_groups = h.num_groups;
    l.rank_k = h.rank_k;
    l.rank_v = h.rank_v;
    l.a_cat = reinterpret_cast<const uint16_t*>(ptr[0]);
    l.b_k = reinterpret_cast<const uint16_t*>(ptr[1]);
    l.b_v = reinterpret_cast<const uint16_t*>(ptr[2]);
    if (h.a_k.empty()) {
      engine::check(engine::fill_random_fp16_run(reinterpret_cast<uint16_t*>(ptr[0]), n_a, seed++,
                                                 std::sqrt(3.0f / c.d_model), nullptr));
    } else {
      const std::vector<uint16_t> ak = to_half(h.a_k), av = to_half(h.a_v);
      copy_to(ptr[0], ak.data(), 2 * static_cast<int64_t>(ak.size()), "A_k");
      copy_to(ptr[0] + 2 * ak.size(), av.data(), 2 * static_cast<int64_t>(av.size()), "A_v");
    }
    const std::vector<uint16_t> bk = to_half(h.b_k), bv = to_half(h.b_v);
    copy_to(ptr[1], bk.data(), sizes[1], "B_k");
    copy_to(ptr[2], bv.data(), sizes[2], "B_v");
    if (i8) {
      l.b_k_i8 = reinterpret_cast<const int8_t*>(ptr[3]);
      l.b_k_i8_scale = reinterpret_cast<const float*>(ptr[4]);
      l.b_k_i8_rowsum = reinterpret_cast<const int32_t*>(ptr[5]);
      copy_to(ptr[3], kf.values.data(), sizes[3], "B_k int8");
      copy_to(ptr[4], kf.scale.data(), sizes[4], "B_k int8 scales");
      copy_to(ptr[5], kf.rowsum.data(), sizes[5], "B_k int8 row sums");
    }
    const std::vector<int32_t> heads(h.group_heads.begin(), h.group_heads.end());
    std::vector<int32_t> index(c.num_kv_heads);
    for (int i = 0; i < c.num_kv_heads; ++i) index[h.group_heads[i]] = i;
    l.group_heads = reinterpret_cast<const int32_t*>(ptr[6]);
    l.kv_head_index = reinterpret_cast<const int32_t*>(ptr[7]);
    copy_to(ptr[6], heads.data(), sizes[6], "group heads");
    copy_to(ptr[7], index.data(), sizes[7], "KV head index");
    layers_.push_back(std::move(l));
  }
  engine::check_cuda(cudaDeviceSynchronize(), "latent factors upload");
}

std::unique_ptr<GpuLatentFactors> GpuLatentFactors::upload(const CompressedModel& m) {
  m.validate();
  if (m.key_quant.bits != m.value_quant.bits ||
      m.key_quant.quant_group != m.value_quant.quant_group ||
      m.key_quant.residual != m.value_quant.residual)
    LKV_THROW(StatusCode::kUnsupported,
              "the GPU latent cache stores keys and values with the same bits, quant group and "
              "residual window; this model has keys ",
              m.key_quant.bits, "-bit / quant group ", m.key_quant.quant_group, " / residual ",
              m.key_quant.residual, ", values ", m.value_quant.bits, "-bit / quant group ",
              m.value_quant.quant_group, " / residual ", m.value_quant.residual);
  if (m.key_quant.bits != 16 && m.key_quant.quant_group != 0)
    LKV_THROW(StatusCode::kUnsupported,
              "the GPU latent cache quantizes each group's whole latent (quant_group 0); this "
              "model uses quant groups of ",
              m.key_quant.quant_group, " channels");
  LlamaConfig c;
  c.d_model = m.base.d_model;
  c.head_dim = m.base.head_dim;
  c.num_kv_heads = m.base.num_kv_heads;
  std::vector<HostLayer> host;
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const ProjectionFactors& k = m.layers[i].factors.key;
    const ProjectionFactors& v = m.layers[i].factors.value;
    const char* why = !k.uniform_rank() || !v.uniform_rank() ? "groups of different ranks"
                      : k.group_heads != v.group_heads       ? "keys and values grouped differently"
                      : k.ranks[0] % 16 || v.ranks[0] % 16   ? "a rank that is not a multiple of 16"
                      : !k.bias.empty() || !v.bias.empty()   ? "projection biases"
                                                             : nullptr;
    if (why)
      LKV_THROW(StatusCode::kUnsupported, "layer ", i, " of the compressed model has ", why,
                "; the GPU latent cache needs uniform ranks (multiples of 16) per layer and one "
                "grouping for keys and values");
    HostLayer h;
    h.group_size = k.group_size;
    h.num_groups = k.num_groups();
    h.rank_k = k.ranks[0];
    h.rank_v = v.ranks[0];
    h.a_k = k.a;
    h.a_v = v.a;
    h.b_k = k.b;
    h.b_v = v.b;
    h.group_heads = k.group_heads;
    host.push_back(std::move(h));
  }
  std::unique_ptr<GpuLatentFactors> g(new GpuLatentFactors());
  g->quant_ = m.key_quant;
  g->build(c, host, 0);
  return g;
}

std::unique_ptr<GpuLatentFactors> GpuLatentFactors::random(const LlamaConfig& c, int group_size,
                                                           int rank_k, int rank_v,
                                                           const QuantConfig& quant,
                                                           uint64_t seed) {
  LKV_CHECK_ARG(group_size >= 1 && c.num_kv_heads % group_size == 0, "group size ", group_size,
                " does not divide ", c.num_kv_heads, " KV heads");
  LKV_CHECK_ARG(rank_k >= 16 && rank_k % 16 == 0 && rank_v >= 16 && rank_v % 16 == 0 &&
                    rank_k <= group_size * c.head_dim && rank_v <= group_size * c.head_dim,
                "ranks ", rank_k, "/", rank_v, " must be multiples of 16 in [16, ",
                group_size * c.head_dim, "]");
  validate_quant_config(quant, rank_k);
  validate_quant_config(quant, rank_v);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<HostLayer> host(c.n_layers);
  for (HostLayer& h : host) {
    h.group_size = group_size;
    h.num_groups = c.num_kv_heads / group_size;
    h.rank_k = rank_k;
    h.rank_v = rank_v;
    const int64_t b_rows = int64_t{h.num_groups} * group_size * c.head_dim;
    std::uniform_real_distribution<float> uk(-std::sqrt(3.0f / rank_k), std::sqrt(3.0f / rank_k));
    std::uniform_real_distribution<float> uv(-std::sqrt(3.0f / rank_v), std::sqrt(3.0f / rank_v));
    h.b_k.resize(b_rows * rank_k);
    h.b_v.resize(b_rows * rank_v);
    for (float& x : h.b_k) x = uk(rng);
    for (float& x : h.b_v) x = uv(rng);
    h.group_heads = consecutive_group_heads(c.num_kv_heads);
  }
  std::unique_ptr<GpuLatentFactors> g(new GpuLatentFactors());
  g->quant_ = quant;
  g->build(c, host, seed + 1000);
  return g;
}

#else  // !LATENTKV_WITH_CUDA

GpuLatentFactors::~GpuLatentFactors() = default;

std::unique_ptr<GpuLatentFactors> GpuLatentFactors::upload(const CompressedModel&) {
  LKV_THROW(StatusCode::kUnsupported, "this latentkv build has no CUDA support");
}

std::unique_ptr<GpuLatentFactors> GpuLatentFactors::random(const LlamaConfig&, int, int, int,
                                                           const QuantConfig&, uint64_t) {
  LKV_THROW(StatusCode::kUnsupported, "this latentkv build has no CUDA support");
}

#endif

}  // namespace latentkv
