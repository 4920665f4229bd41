/* latentkv C API: the engine-facing interface to the paged latent KV cache (design §4, §7) and to
 * the fp16 paged baseline cache, for inference engines written in any language.
 *
 * Conventions
 *  - Every function returns an lkv_status; LKV_OK is 0. On failure, lkv_last_error_message()
 *    returns a one-line message for the calling thread. Every entry point clears that message
 *    first, catches every C++ exception and converts it, so no exception crosses this boundary.
 *  - Memory: the library never allocates device memory. The caller asks for sizes
 *    (lkv_*_cache_size, lkv_*_workspace_size, lkv_*_decode_plan), allocates, and passes pointers.
 *    Cache handles are small host objects that describe the caller's arena; destroying a handle
 *    does not free the arena.
 *  - Device pointers are marked "device". Sizes, plans and checks are host code and work without
 *    a GPU; functions named *_run launch work on `stream` (a cudaStream_t passed as void*; NULL is
 *    the legacy default stream), never synchronize, never allocate and read no device memory on
 *    the host, so they can be captured in a CUDA graph. Without a usable GPU (library built with
 *    LATENTKV_WITH_CUDA=OFF, or no device at run time) they return LKV_ERR_NO_GPU.
 *  - Page tables (vLLM/FlashInfer CSR): sequence b of a batch holds seq_lens[b] tokens; its token t
 *    lives in page indices[indptr[b] + t / page_size], slot t % page_size. Pages are shared by K
 *    and V. Batch slot b also owns residual ring b of a latent cache: keep a sequence in the same
 *    batch slot for its whole life, or use a window with residual = 0 and chunk = 1 (no ring).
 *  - Shapes use the vocabulary of the design: num_qo_heads, num_kv_heads, head_dim, group_size
 *    (KV heads per group), num_groups = num_kv_heads / group_size, rank (latent width per group),
 *    bits, quant_group.
 * Prefill attention is not provided: latents of a whole prompt are written with one append (many
 * rows per sequence), and the prompt's own attention is computed by the engine's attention
 * kernel on the pre-compression K/V of that prompt.
 */
#ifndef LATENTKV_C_API_H_
#define LATENTKV_C_API_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status                                                                                      */

typedef enum lkv_status {
  LKV_OK = 0,
  LKV_ERR_INVALID_ARGUMENT = 1, /* a value is out of range, inconsistent, or a pointer is null */
  LKV_ERR_NOT_FOUND = 2,
  LKV_ERR_IO = 3,
  LKV_ERR_CORRUPT_DATA = 4,
  LKV_ERR_UNSUPPORTED = 5,   /* valid input this build cannot handle (shape, bits, GPU arch) */
  LKV_ERR_NUMERICAL = 6,     /* NaN/Inf where finite values are required */
  LKV_ERR_CUDA = 7,          /* a CUDA or cuBLAS call failed (message has the CUDA error) */
  LKV_ERR_OUT_OF_MEMORY = 8, /* an arena or workspace is smaller than required */
  LKV_ERR_INTERNAL = 9,      /* a bug in latentkv */
  LKV_ERR_NO_GPU = 10        /* built without CUDA, or no CUDA device is usable */
} lkv_status;

/** Stable lowercase name of a status ("ok", "invalid_argument", ..., "no_gpu"). */
const char* lkv_status_name(lkv_status status);
/** Message of the last failed call on this thread; "" when the last call succeeded. The pointer
 *  stays valid until the next latentkv call on this thread. */
const char* lkv_last_error_message(void);
/** Library version, "MAJOR.MINOR.PATCH". */
const char* lkv_version(void);

/** Element types crossing the API (values stored in int32_t fields). */
typedef enum lkv_dtype { LKV_DTYPE_F16 = 0, LKV_DTYPE_BF16 = 1, LKV_DTYPE_F32 = 2 } lkv_dtype;

/* ------------------------------------------------------------------------------------------ */
/* Device                                                                                      */

typedef struct lkv_device_info {
  int32_t compute_capability; /* major * 10 + minor, e.g. 90 */
  int32_t num_sms;            /* multiprocessors: the num_sms argument of the decode plans */
  int64_t total_bytes;        /* device memory */
  int64_t free_bytes;         /* free device memory now (cudaMemGetInfo) */
} lkv_device_info;

/** Describes the calling thread's current CUDA device and checks that this build has kernels for
 *  it. LKV_ERR_NO_GPU without CUDA or device; LKV_ERR_UNSUPPORTED when the GPU's architecture is
 *  not among those the library was compiled for (the message names both). */
lkv_status lkv_device_query(lkv_device_info* info);

/* ------------------------------------------------------------------------------------------ */
/* Shared types                                                                                */

/** Arena sizes of a cache description. */
typedef struct lkv_cache_sizes {
  int64_t arena_bytes;     /* bytes the arena must hold (16-byte aligned base) */
  int64_t bytes_per_page;  /* arena bytes that scale with num_pages, per page (K + V, padded) */
  int64_t fixed_bytes;     /* arena bytes independent of num_pages (residual rings, alignment) */
  int64_t bytes_per_token; /* exact cache bytes per token, K + V, all groups/heads, no padding */
} lkv_cache_sizes;

/** Page table of a batch in device memory (see the file comment). */
typedef struct lkv_page_table {
  const int32_t* indptr;   /* device [batch_size + 1] */
  const int32_t* indices;  /* device [indptr[batch_size]] */
  const int32_t* seq_lens; /* device [batch_size]: tokens cached per sequence */
} lkv_page_table;

/** Split-KV plan of a decode call, from lkv_*_decode_plan(); pass it unchanged to the run. */
typedef struct lkv_decode_plan {
  int32_t batch_size;   /* largest batch the run may use with this plan */
  int32_t num_qo_heads; /* shapes the plan was made for (checked by the run) ... */
  int32_t value_dim;    /* ... rank_v (latent) or head_dim (paged) */
  int32_t max_seq_len;  /* longest sequence the run may see */
  int32_t num_splits;   /* token ranges per (sequence, head block) */
  int32_t tokens_per_split;
  int32_t heads_per_cta;
  int32_t extra_splits;    /* partial results of the residual window's CTAs */
  int64_t workspace_bytes; /* device workspace the run needs (may be 0) */
} lkv_decode_plan;

/* ------------------------------------------------------------------------------------------ */
/* Latent cache of one layer (K and V latents, paged, with an fp16 residual window)            */

typedef struct lkv_latent_cache_desc {
  int32_t num_groups;  /* KV-head groups; K and V share the grouping */
  int32_t rank_k;      /* key latent width per group: multiple of 16 */
  int32_t rank_v;      /* value latent width per group: multiple of 16 */
  int32_t bits;        /* 16 = fp16 latents; 4, 3, 2 = packed codes (8: append only) */
  int32_t quant_group; /* channels per (scale, zero); 0 = whole latent (what decode supports) */
  int32_t page_size;   /* tokens per page, >= 1 */
  int64_t num_pages;   /* pages in the pool, shared by all sequences */
  int32_t residual;    /* window: newest tokens kept in fp16 (>= 0) ... */
  int32_t chunk;       /* ... and quantized `chunk` at a time (>= 1); 0/1 = every token in pages */
  int32_t max_batch;   /* batch slots (one residual ring each), 1..256 */
} lkv_latent_cache_desc;

typedef struct lkv_latent_cache lkv_latent_cache;

/** Where one of K / V lives inside the arena (byte strides; see attention/latent_cache.h). */
typedef struct lkv_latent_view {
  void*
      codes; /* codes of token slot t of group g in page p: p*page_stride + g*group_stride + ... */
  int64_t page_stride, group_stride, token_stride;
  void* scale_zero; /* fp16 (scale, zero) pairs; NULL for fp16 latents */
  int64_t sz_page_stride, sz_group_stride, sz_token_stride;
  void* ring; /* fp16 residual window; NULL when the window keeps no token */
  int64_t ring_seq_stride, ring_group_stride, ring_token_stride;
} lkv_latent_view;

/** Arena size and bytes per token of a description (host only). */
lkv_status lkv_latent_cache_size(const lkv_latent_cache_desc* desc, lkv_cache_sizes* sizes);
/** Largest num_pages whose arena fits in `budget_bytes` (desc->num_pages is ignored): size a
 *  cache to the free device memory. LKV_ERR_OUT_OF_MEMORY when not even one page fits. */
lkv_status lkv_latent_cache_max_pages(const lkv_latent_cache_desc* desc, int64_t budget_bytes,
                                      int64_t* num_pages);
/** Creates a handle over the caller's device arena (>= sizes.arena_bytes, 16-byte aligned). The
 *  arena is not touched (no initialization is needed: only written tokens are read). */
lkv_status lkv_latent_cache_create(const lkv_latent_cache_desc* desc, void* arena,
                                   int64_t arena_bytes, lkv_latent_cache** cache);
/** Frees the handle (not the arena). NULL is allowed. */
void lkv_latent_cache_destroy(lkv_latent_cache* cache);
/** The K and V views inside the arena (for engines with their own kernels); either may be NULL. */
lkv_status lkv_latent_cache_views(const lkv_latent_cache* cache, lkv_latent_view* k,
                                  lkv_latent_view* v);
/** Checks a host copy of a page table before it is used (e.g. before uploading it): indptr
 *  non-decreasing, page ids in [0, num_pages) and not shared between sequences, and every sequence
 *  b, after `new_tokens[b]` more tokens (new_tokens may be NULL = 0), has the pages its quantized
 *  tokens need. The kernels cannot report a sequence that exceeds its pages, so an engine should
 *  run this check whenever it changes a page table. O(batch + pages). */
lkv_status lkv_latent_cache_check_pages(const lkv_latent_cache* cache, int32_t batch_size,
                                        const int32_t* indptr, const int32_t* indices,
                                        const int32_t* seq_lens, const int32_t* new_tokens);

/** Per-layer attention shapes and factors (device pointers, caller-owned, as ProjectionFactors of
 *  the compressed model). Plans read only the shape fields; runs read the pointers they need. */
typedef struct lkv_latent_layer {
  int32_t d_model;
  int32_t num_qo_heads;
  int32_t num_kv_heads;
  int32_t head_dim;           /* 64 or 128 for decode */
  int32_t group_size;         /* 1 to 8 for decode */
  float sm_scale;             /* softmax scale, usually 1/sqrt(head_dim) */
  const int32_t* group_heads; /* device [num_kv_heads]: KV head at (group g, slot s) = [g*gs+s] */
  const uint16_t* a_cat; /* device fp16 [num_groups*(rank_k+rank_v)][d_model]: K then V (append) */
  const uint16_t* b_k;   /* device fp16 [num_groups][group_size*head_dim][rank_k] */
  const int8_t* b_k_i8;  /* device, bits < 16: int8 key factors (lkv_make_key_factors_i8) ... */
  const float* b_k_i8_scale;    /* ... [num_groups*group_size*head_dim] */
  const int32_t* b_k_i8_rowsum; /* ... [num_groups*group_size*head_dim] */
  const uint16_t* b_v;          /* device fp16 [num_groups][group_size*head_dim][rank_v] */
  const uint16_t* w_o_folded;   /* device fp16 [d_model][num_qo_heads*rank_v] (folded output) */
  const double* inv_freq;       /* device [head_dim/2], lkv_rope_inv_freq() */
} lkv_latent_layer;

/** New tokens of an append. */
typedef struct lkv_latent_append_args {
  int32_t batch_size;           /* <= desc.max_batch */
  int32_t num_tokens;           /* rows of x over all sequences (>= 0) */
  const int32_t* append_indptr; /* device [batch_size + 1]: rows of sequence b in x */
  const uint16_t* x;            /* device fp16 [num_tokens][d_model], row stride x_stride */
  int64_t x_stride;             /* elements */
  lkv_page_table pages;         /* seq_lens = lengths before the append */
  int32_t* seq_lens_out;        /* device [batch_size]; may equal pages.seq_lens */
} lkv_latent_append_args;

/** Device workspace bytes for appends of up to max_tokens rows (the fp32 latents). */
lkv_status lkv_latent_append_workspace_size(const lkv_latent_cache_desc* desc, int32_t max_tokens,
                                            int64_t* bytes);
/** latents = x · a_catᵀ (cuBLAS, on the caller's cublasHandle_t passed as void*; its stream is
 *  set to `stream` and restored), then quantize/pack into pages and ring. */
lkv_status lkv_latent_append_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                 const lkv_latent_append_args* args, void* cublas_handle,
                                 void* workspace, int64_t workspace_bytes, void* stream);
/** The store half only, for engines that compute the projection themselves: `latents` is device
 *  fp32 [num_tokens][num_groups*(rank_k+rank_v)] (key groups first), row stride in elements.
 *  args->x is not read. */
lkv_status lkv_latent_append_store_run(const lkv_latent_cache* cache,
                                       const lkv_latent_append_args* args, const float* latents,
                                       int64_t latents_stride, void* stream);

/** One decode step: one query token per sequence. */
typedef struct lkv_latent_decode_args {
  int32_t batch_size;   /* <= plan.batch_size */
  lkv_page_table pages; /* every seq_lens[b] <= plan.max_seq_len */
  const void* q;        /* device: post-RoPE queries q[b*q_stride_batch + h*q_stride_head + d] */
  int32_t q_dtype;      /* LKV_DTYPE_F16 or LKV_DTYPE_BF16 */
  int64_t q_stride_batch, q_stride_head;
  void* out;         /* device: latent-space values out[b*sb + h*sh + c], c < rank_v (head-space
                        out[b*sb + h*sh + d], d < head_dim, with up_project) */
  int32_t out_dtype; /* LKV_DTYPE_F32, F16 or BF16 */
  int64_t out_stride_batch, out_stride_head;
  float* lse; /* optional device [batch_size][num_qo_heads] log-sum-exp, or NULL */
  /* Nonzero: the split combine also applies layer->b_v (the value up-projection), so `out`
   * receives head-space outputs out[b*sb + h*sh + d], d < head_dim, instead of the latent-space
   * result (one kernel less than lkv_value_projection_run afterwards). Needs layer->b_v (16-byte
   * aligned), rank_v <= 512 and (num_qo_heads/num_kv_heads)*rank_v <= 2048, and a plan made with
   * layer->b_v set. Zero-initialized args keep the latent-space output. */
  int32_t up_project;
} lkv_latent_decode_args;

/** Plans decode for batches of up to batch_size sequences of up to max_seq_len tokens on a GPU
 *  with num_sms multiprocessors (lkv_device_query), and sizes the workspace. Host only. Rejects a
 *  max_seq_len the pool cannot hold. Plan once (per layer shape) and reuse every step. With
 *  layer->b_v set (any non-null value: plans read no memory) and a shape the fused value
 *  up-projection supports, the plan also serves runs with args.up_project. */
lkv_status lkv_latent_decode_plan(const lkv_latent_cache_desc* desc, const lkv_latent_layer* layer,
                                  int32_t batch_size, int32_t max_seq_len, int32_t num_sms,
                                  lkv_decode_plan* plan);
lkv_status lkv_latent_decode_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                 const lkv_latent_decode_args* args, const lkv_decode_plan* plan,
                                 void* workspace, int64_t workspace_bytes, void* stream);

/** Value up-projection o[b, h, :] = B_v · z[b, h, :] (then the engine's W_o GEMM). */
typedef struct lkv_value_projection_args {
  int32_t batch_size;
  const uint16_t* z; /* device fp16 [batch][num_qo_heads*rank_v] (decode output in F16) */
  int64_t z_stride_batch;
  uint16_t* o; /* device fp16 [batch][num_qo_heads*head_dim] */
  int64_t o_stride_batch;
} lkv_value_projection_args;

lkv_status lkv_value_projection_workspace_size(const lkv_latent_cache_desc* desc,
                                               const lkv_latent_layer* layer, int64_t* bytes);
lkv_status lkv_value_projection_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                    const lkv_value_projection_args* args, void* cublas_handle,
                                    void* workspace, int64_t workspace_bytes, void* stream);
/** Folded output instead: out[b, :d_model] = z[b] · layer->w_o_foldedᵀ (o is the output, fp16
 *  [batch][d_model] with row stride o_stride_batch). No workspace. */
lkv_status lkv_folded_output_run(const lkv_latent_cache* cache, const lkv_latent_layer* layer,
                                 const lkv_value_projection_args* args, void* cublas_handle,
                                 void* stream);

/* Host helpers for preparing a layer's device factors. */

/** int8 key factors for bits < 16 from fp32 key factors b [num_groups][group_size*head_dim][rank]
 *  (host memory): values [same shape], scale and rowsum [num_groups*group_size*head_dim]. */
lkv_status lkv_make_key_factors_i8(const float* b, int32_t num_groups, int32_t group_size,
                                   int32_t head_dim, int32_t rank, int8_t* values, float* scale,
                                   int32_t* rowsum);
/** RoPE inverse frequencies (half-split convention) into inv_freq[head_dim/2] (host):
 *  theta^(-2i/head_dim) / linear_factor / freq_factors[i]; freq_factors may be NULL. */
lkv_status lkv_rope_inv_freq(double theta, double linear_factor, const float* freq_factors,
                             int32_t head_dim, double* inv_freq);

/* ------------------------------------------------------------------------------------------ */
/* fp16 paged KV cache of one layer: the uncompressed baseline                                 */

typedef struct lkv_paged_cache_desc {
  int32_t num_kv_heads;
  int32_t head_dim;  /* 64 or 128 for decode */
  int32_t page_size; /* tokens per page */
  int64_t num_pages;
} lkv_paged_cache_desc;

typedef struct lkv_paged_cache lkv_paged_cache;

/** Pages are "HND": element d of token slot t of KV head h in page p is at
 *  k[p*page_stride + h*head_stride + t*token_stride + d] (fp16 elements); v alike. */
typedef struct lkv_paged_view {
  void* k;
  void* v;
  int64_t page_stride, head_stride, token_stride;
} lkv_paged_view;

lkv_status lkv_paged_cache_size(const lkv_paged_cache_desc* desc, lkv_cache_sizes* sizes);
lkv_status lkv_paged_cache_create(const lkv_paged_cache_desc* desc, void* arena,
                                  int64_t arena_bytes, lkv_paged_cache** cache);
void lkv_paged_cache_destroy(lkv_paged_cache* cache);
lkv_status lkv_paged_cache_view(const lkv_paged_cache* cache, lkv_paged_view* view);
/** As lkv_latent_cache_check_pages: every sequence needs ceil((seq_lens[b] + new_tokens[b]) /
 *  page_size) pages. */
lkv_status lkv_paged_cache_check_pages(const lkv_paged_cache* cache, int32_t batch_size,
                                       const int32_t* indptr, const int32_t* indices,
                                       const int32_t* seq_lens, const int32_t* new_tokens);

typedef struct lkv_paged_append_args {
  int32_t batch_size;
  int32_t num_tokens;
  const int32_t* append_indptr; /* device [batch_size + 1] */
  const uint16_t* k;            /* device fp16 post-RoPE keys k[row*k_stride + h*head_dim + d] */
  const uint16_t* v;            /* device fp16 values, same layout with v_stride */
  int64_t k_stride, v_stride;   /* elements per row, >= num_kv_heads*head_dim */
  lkv_page_table pages;         /* seq_lens = lengths before the append */
  int32_t* seq_lens_out;        /* device [batch_size]; may equal pages.seq_lens */
} lkv_paged_append_args;

/** Copies new K/V rows into their pages (positions seq_lens[b] ...). Writes to a position beyond
 *  a sequence's pages are dropped: check page tables with lkv_paged_cache_check_pages. */
lkv_status lkv_paged_append_run(const lkv_paged_cache* cache, const lkv_paged_append_args* args,
                                void* stream);

typedef struct lkv_paged_decode_args {
  int32_t batch_size;
  int32_t num_qo_heads;
  float sm_scale;
  lkv_page_table pages;
  const void* q; /* device fp16 q[b*q_stride_batch + h*q_stride_head + d] */
  int64_t q_stride_batch, q_stride_head;
  void* out; /* device fp16 out[b*out_stride_batch + h*out_stride_head + d] */
  int64_t out_stride_batch, out_stride_head;
  float* lse; /* optional */
} lkv_paged_decode_args;

lkv_status lkv_paged_decode_plan(const lkv_paged_cache_desc* desc, int32_t num_qo_heads,
                                 int32_t batch_size, int32_t max_seq_len, int32_t num_sms,
                                 lkv_decode_plan* plan);
lkv_status lkv_paged_decode_run(const lkv_paged_cache* cache, const lkv_paged_decode_args* args,
                                const lkv_decode_plan* plan, void* workspace,
                                int64_t workspace_bytes, void* stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LATENTKV_C_API_H_ */
