// C API: append, decode and value projection over a latent cache (thin conversions to the C++
// engine API of include/latentkv/attention/, which validates every field itself).
#include <algorithm>
#include <vector>

#include "c_api/c_api_internal.h"
#include "c_api/latent_arena.h"
#include "latentkv/attention/latent_append.h"
#include "latentkv/attention/latent_decode.h"
#include "latentkv/attention/value_projection.h"
#include "latentkv/rope.h"

namespace latentkv::capi {
namespace {

#if defined(LATENTKV_WITH_CUDA)
GpuStream to_stream(void* stream) { return static_cast<GpuStream>(stream); }
cublasContext* to_cublas(void* handle) { return static_cast<cublasContext*>(handle); }
#endif

void check_batch(int batch_size, const lkv_latent_cache_desc& d) {
  LKV_CHECK_ARG(batch_size >= 1 && batch_size <= d.max_batch, "batch_size ", batch_size,
                " outside [1, max_batch = ", d.max_batch, "]");
}

/// The shape and factor fields of a decode call; pointers of the per-call arguments are set by
/// the caller of this function.
LatentDecodeParams decode_params(const lkv_latent_layer& L, const LatentCacheView& k,
                                 const LatentCacheView& v, const LatentWindowPolicy& window) {
  LatentDecodeParams p;
  p.num_qo_heads = L.num_qo_heads;
  p.num_kv_heads = L.num_kv_heads;
  p.head_dim = L.head_dim;
  p.group_size = L.group_size;
  p.group_heads = L.group_heads;
  p.b_k = L.b_k;
  p.b_k_i8 = L.b_k_i8;
  p.b_k_i8_scale = L.b_k_i8_scale;
  p.b_k_i8_rowsum = L.b_k_i8_rowsum;
  p.inv_freq = L.inv_freq;
  p.sm_scale = L.sm_scale;
  p.k = k;
  p.v = v;
  p.window = window;
  return p;
}

LatentAppendParams append_params(const lkv_latent_cache& c, const lkv_latent_append_args& a,
                                 int d_model) {
  check_batch(a.batch_size, c.desc);
  LatentAppendParams p;
  p.batch_size = a.batch_size;
  p.num_groups = c.desc.num_groups;
  p.d_model = d_model;
  p.num_tokens = a.num_tokens;
  p.append_indptr = a.append_indptr;
  p.x = a.x;
  p.x_stride = a.x_stride;
  p.k = c.k;
  p.v = c.v;
  p.window = c.window;
  p.pages = to_pages(a.pages, c.desc.page_size);
  p.seq_lens_out = a.seq_lens_out;
  return p;
}

ValueUpProjectionParams value_params(const lkv_latent_cache_desc& d, const lkv_latent_layer& L,
                                     const lkv_value_projection_args* a) {
  ValueUpProjectionParams p;
  p.batch_size = a ? a->batch_size : 1;
  p.num_qo_heads = L.num_qo_heads;
  p.num_kv_heads = L.num_kv_heads;
  p.head_dim = L.head_dim;
  p.group_size = L.group_size;
  p.rank_v = d.rank_v;
  p.group_heads = L.group_heads;
  p.b_v = L.b_v;
  if (a) {
    p.z = a->z;
    p.z_stride_batch = a->z_stride_batch;
    p.o = a->o;
    p.o_stride_batch = a->o_stride_batch;
  }
  return p;
}

}  // namespace
}  // namespace latentkv::capi

using latentkv::Status;
using latentkv::StatusCode;
using namespace latentkv::capi;  // NOLINT(build/namespaces): this file only implements capi

extern "C" {

lkv_status lkv_latent_append_workspace_size(const lkv_latent_cache_desc* desc, int32_t max_tokens,
                                            int64_t* bytes) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(bytes, "bytes");
    LKV_CHECK_ARG(max_tokens >= 0, "max_tokens ", max_tokens, " < 0");
    const auto a = latent_arena(*desc, desc->num_pages);
    latentkv::LatentAppendParams p;
    p.num_groups = desc->num_groups;
    p.k = a.k.view;
    p.v = a.v.view;
    *bytes = latentkv::latent_append_workspace_bytes(p, max_tokens);
    return LKV_OK;
  });
}

lkv_status lkv_latent_append_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                 const lkv_latent_append_args* args, void* cublas_handle,
                                 void* workspace, int64_t workspace_bytes, void* stream) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(layer, "layer");
    require_non_null(args, "args");
    auto p = append_params(*cache, *args, layer->d_model);
    p.a_cat = layer->a_cat;
    LKV_RETURN_IF_LKV_ERROR(from_status(fn, latentkv::latent_append_gemm_is_supported(p)));
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    return from_status(fn, latentkv::latent_append_run(p, to_cublas(cublas_handle), workspace,
                                                       workspace_bytes, to_stream(stream)));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

lkv_status lkv_latent_append_store_run(const lkv_latent_cache* cache,
                                       const lkv_latent_append_args* args, const float* latents,
                                       int64_t latents_stride, void* stream) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(args, "args");
    const auto p = append_params(*cache, *args, 1);
    LKV_RETURN_IF_LKV_ERROR(from_status(fn, latentkv::latent_append_is_supported(p)));
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    return from_status(
        fn, latentkv::latent_append_store_run(p, latents, latents_stride, to_stream(stream)));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

lkv_status lkv_latent_decode_plan(const lkv_latent_cache_desc* desc, const lkv_latent_layer* layer,
                                  int32_t batch_size, int32_t max_seq_len, int32_t num_sms,
                                  lkv_decode_plan* plan) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(layer, "layer");
    require_non_null(plan, "plan");
    const auto a = latent_arena(*desc, desc->num_pages);
    check_batch(batch_size, *desc);
    LKV_CHECK_ARG(max_seq_len >= 1, "max_seq_len ", max_seq_len, " < 1");
    const int64_t need =
        (a.window.quantized_len(max_seq_len) + desc->page_size - 1) / desc->page_size;
    LKV_CHECK_ARG(need <= desc->num_pages, "a sequence of ", max_seq_len, " tokens needs ", need,
                  " pages of ", desc->page_size, " tokens; the cache has ", desc->num_pages);
    // Plans are made before memory exists: every pointer is a stand-in (see probe_address()).
    auto with_probe = [](latentkv::LatentCacheView v) {
      v.codes = v.scale_zero = v.ring = probe_address();
      return v;
    };
    lkv_latent_layer shapes = *layer;
    void* probe = probe_address();
    shapes.group_heads = static_cast<const int32_t*>(probe);
    shapes.b_k = static_cast<const uint16_t*>(probe);
    shapes.b_k_i8 = static_cast<const int8_t*>(probe);
    shapes.b_k_i8_scale = static_cast<const float*>(probe);
    shapes.b_k_i8_rowsum = static_cast<const int32_t*>(probe);
    shapes.inv_freq = static_cast<const double*>(probe);
    auto p = decode_params(shapes, with_probe(a.k.view), with_probe(a.v.view), a.window);
    p.batch_size = batch_size;
    p.q = p.out = probe;
    p.pages.indptr = p.pages.indices = p.pages.seq_lens = static_cast<const int32_t*>(probe);
    p.pages.page_size = desc->page_size;
    // A layer with value up-projections gets a plan that also serves fused runs (up_project),
    // where the shape allows them. b_v only adds conditions, so a shape that fails with it is
    // planned (and its own errors reported) without it.
    if (layer->b_v != nullptr) {
      p.b_v = static_cast<const uint16_t*>(probe);
      if (!latentkv::latent_decode_is_supported(p).ok()) p.b_v = nullptr;
    }
    latentkv::DecodePlan out;
    LKV_RETURN_IF_LKV_ERROR(
        from_status(fn, latentkv::latent_decode_plan(p, max_seq_len, num_sms, &out)));
    *plan = from_plan(out, batch_size, layer->num_qo_heads, desc->rank_v);
    return LKV_OK;
  });
}

lkv_status lkv_latent_decode_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                 const lkv_latent_decode_args* args, const lkv_decode_plan* plan,
                                 void* workspace, int64_t workspace_bytes, void* stream) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(layer, "layer");
    require_non_null(args, "args");
    require_non_null(plan, "plan");
    check_batch(args->batch_size, cache->desc);
    check_plan(*plan, args->batch_size, layer->num_qo_heads, cache->desc.rank_v);
    auto p = decode_params(*layer, cache->k, cache->v, cache->window);
    p.batch_size = args->batch_size;
    p.q = args->q;
    p.q_dtype = to_dtype(args->q_dtype, "q_dtype");
    p.q_stride_batch = args->q_stride_batch;
    p.q_stride_head = args->q_stride_head;
    p.pages = to_pages(args->pages, cache->desc.page_size);
    p.out = args->out;
    p.out_dtype = to_dtype(args->out_dtype, "out_dtype");
    p.out_stride_batch = args->out_stride_batch;
    p.out_stride_head = args->out_stride_head;
    p.lse = args->lse;
    if (args->up_project) {
      LKV_CHECK_ARG(layer->b_v != nullptr, "up_project needs layer->b_v");
      p.b_v = layer->b_v;
    }
    LKV_RETURN_IF_LKV_ERROR(from_status(fn, latentkv::latent_decode_is_supported(p)));
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    return from_status(fn, latentkv::latent_decode_run(p, to_plan(*plan), workspace,
                                                       workspace_bytes, to_stream(stream)));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

lkv_status lkv_value_projection_workspace_size(const lkv_latent_cache_desc* desc,
                                               const lkv_latent_layer* layer, int64_t* bytes) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(desc, "desc");
    require_non_null(layer, "layer");
    require_non_null(bytes, "bytes");
    *bytes = latentkv::value_up_projection_workspace_bytes(value_params(*desc, *layer, nullptr));
    return LKV_OK;
  });
}

lkv_status lkv_value_projection_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                    const lkv_value_projection_args* args, void* cublas_handle,
                                    void* workspace, int64_t workspace_bytes, void* stream) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(layer, "layer");
    require_non_null(args, "args");
    const auto p = value_params(cache->desc, *layer, args);
    LKV_RETURN_IF_LKV_ERROR(from_status(fn, latentkv::value_up_projection_is_supported(p)));
    const int64_t need = latentkv::value_up_projection_workspace_bytes(p);
    if (workspace_bytes < need || !workspace)
      LKV_THROW(StatusCode::kOutOfMemory, "workspace of ", workspace_bytes, " bytes, need ", need);
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    return from_status(fn, latentkv::value_up_projection_run(p, to_cublas(cublas_handle), workspace,
                                                             workspace_bytes, to_stream(stream)));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

lkv_status lkv_folded_output_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                 const lkv_value_projection_args* args, void* cublas_handle,
                                 void* stream) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(cache, "cache");
    require_non_null(layer, "layer");
    require_non_null(args, "args");
    latentkv::FoldedOutputParams p;
    p.batch_size = args->batch_size;
    p.d_model = layer->d_model;
    p.num_qo_heads = layer->num_qo_heads;
    p.rank_v = cache->desc.rank_v;
    p.w_o_folded = layer->w_o_folded;
    p.z = args->z;
    p.z_stride_batch = args->z_stride_batch;
    p.out = args->o;
    p.out_stride_batch = args->o_stride_batch;
    LKV_RETURN_IF_LKV_ERROR(from_status(fn, latentkv::folded_output_is_supported(p)));
    LKV_RETURN_IF_LKV_ERROR(require_gpu(fn));
#if defined(LATENTKV_WITH_CUDA)
    return from_status(fn,
                       latentkv::folded_output_run(p, to_cublas(cublas_handle), to_stream(stream)));
#else
    return LKV_ERR_NO_GPU;
#endif
  });
}

lkv_status lkv_make_key_factors_i8(const float* b, int32_t num_groups, int32_t group_size,
                                   int32_t head_dim, int32_t rank, int8_t* values, float* scale,
                                   int32_t* rowsum) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(b, "b");
    require_non_null(values, "values");
    require_non_null(scale, "scale");
    require_non_null(rowsum, "rowsum");
    LKV_CHECK_ARG(num_groups > 0 && group_size > 0 && head_dim > 0 && rank > 0,
                  "sizes must be positive");
    const int64_t rows = int64_t{num_groups} * group_size * head_dim;
    const std::vector<float> host(b, b + rows * rank);
    const auto f = latentkv::make_key_factors_i8(host, num_groups, group_size, head_dim, rank);
    std::copy(f.values.begin(), f.values.end(), values);
    std::copy(f.scale.begin(), f.scale.end(), scale);
    std::copy(f.rowsum.begin(), f.rowsum.end(), rowsum);
    return LKV_OK;
  });
}

lkv_status lkv_rope_inv_freq(double theta, double linear_factor, const float* freq_factors,
                             int32_t head_dim, double* inv_freq) {
  return guarded(__func__, [&](const char* fn) {
    require_non_null(inv_freq, "inv_freq");
    LKV_CHECK_ARG(head_dim > 0 && head_dim % 2 == 0, "head_dim ", head_dim,
                  " must be positive and even");
    latentkv::RopeConfig rope;
    rope.theta = theta;
    rope.linear_factor = linear_factor;
    if (freq_factors) rope.freq_factors.assign(freq_factors, freq_factors + head_dim / 2);
    const auto inv = latentkv::rope_inv_freq(rope, head_dim);
    std::copy(inv.begin(), inv.end(), inv_freq);
    return LKV_OK;
  });
}

}  // extern "C"
