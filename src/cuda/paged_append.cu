// fp16 paged-cache append (paged_append.h): a copy of new K/V rows into their pages, 16 bytes
// per thread.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/cuda_status.h"
#include "cuda/launch_dependent.h"
#include "latentkv/attention/paged_append.h"
#include "mma_utils.cuh"

namespace latentkv {
namespace {

struct PagedAppendKernelParams {
  const int32_t* append_indptr;
  const uint4* k;  // rows of new keys, 16-byte chunks
  const uint4* v;
  int64_t k_stride, v_stride;  // in 16-byte chunks
  uint4* k_cache;
  uint4* v_cache;
  int64_t page_stride, head_stride, token_stride;  // in 16-byte chunks
  int64_t num_pages;
  const int32_t* indptr;
  const int32_t* indices;
  const int32_t* seq_lens;
  int32_t* seq_lens_out;
  int page_size;
  int num_kv_heads;
  int chunks_per_head;
};

// Block (b, y) copies every gridDim.y-th element of sequence b's new rows; element e is
// (row, head, chunk) in row-major order. Positions past the sequence's pages are skipped: the
// host-side check (lkv_paged_cache_check_pages) is where they are reported.
__global__ void paged_append_kernel(PagedAppendKernelParams p) {
  kernels::grid_dependency_wait();  // launched as a programmatic dependent (launch_dependent)
  kernels::grid_dependents_launch();
  const int b = blockIdx.x;
  const int first = p.append_indptr[b];
  const int rows = p.append_indptr[b + 1] - first;
  const int64_t len = p.seq_lens[b];
  const int32_t* pages = p.indices + p.indptr[b];
  const int64_t num_listed = p.indptr[b + 1] - p.indptr[b];
  const int64_t per_row = int64_t{p.num_kv_heads} * p.chunks_per_head;
  const int64_t total = rows * per_row;
  const int64_t step = int64_t{gridDim.y} * blockDim.x;
  for (int64_t e = int64_t{blockIdx.y} * blockDim.x + threadIdx.x; e < total; e += step) {
    const int64_t row = e / per_row;
    const int64_t rem = e - row * per_row;
    const int64_t head = rem / p.chunks_per_head;
    const int64_t chunk = rem - head * p.chunks_per_head;
    const int64_t pos = len + row;
    const int64_t slot = pos / p.page_size;
    if (slot >= num_listed) continue;
    const int64_t page = pages[slot];
    if (page < 0 || page >= p.num_pages) continue;
    const int64_t dst = page * p.page_stride + head * p.head_stride +
                        (pos - slot * p.page_size) * p.token_stride + chunk;
    const int64_t src_off = head * p.chunks_per_head + chunk;
    p.k_cache[dst] = p.k[(first + row) * p.k_stride + src_off];
    p.v_cache[dst] = p.v[(first + row) * p.v_stride + src_off];
  }
}

// A separate launch: seq_lens_out may alias seq_lens, which the copy kernel reads.
__global__ void paged_lengths_kernel(PagedAppendKernelParams p, int batch_size) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b < batch_size)
    p.seq_lens_out[b] = p.seq_lens[b] + (p.append_indptr[b + 1] - p.append_indptr[b]);
}

}  // namespace

Status paged_append_run(const PagedAppendParams& a, GpuStream stream) {
  PagedAppendKernelParams p{};
  p.append_indptr = a.append_indptr;
  p.k = reinterpret_cast<const uint4*>(a.k);
  p.v = reinterpret_cast<const uint4*>(a.v);
  p.k_stride = a.k_stride / 8;
  p.v_stride = a.v_stride / 8;
  p.k_cache = static_cast<uint4*>(a.k_cache);
  p.v_cache = static_cast<uint4*>(a.v_cache);
  p.page_stride = a.page_stride / 8;
  p.head_stride = a.head_stride / 8;
  p.token_stride = a.token_stride / 8;
  p.num_pages = a.num_pages;
  p.indptr = a.pages.indptr;
  p.indices = a.pages.indices;
  p.seq_lens = a.pages.seq_lens;
  p.seq_lens_out = a.seq_lens_out;
  p.page_size = a.pages.page_size;
  p.num_kv_heads = a.num_kv_heads;
  p.chunks_per_head = a.head_dim / 8;
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  constexpr int kThreads = 256;
  if (a.num_tokens > 0) {
    // Enough blocks per sequence for the average share of rows; a fixed function of the host
    // arguments, so a captured graph replays the same grid.
    const int64_t elems = int64_t{a.num_tokens} * p.num_kv_heads * p.chunks_per_head;
    const int64_t per_seq = (elems / a.batch_size + kThreads - 1) / kThreads;
    const dim3 grid(a.batch_size, static_cast<unsigned>(std::clamp<int64_t>(per_seq, 1, 64)));
    LKV_CUDA_RETURN(detail::launch_dependent(paged_append_kernel, grid, dim3(kThreads), 0, s, p));
  }
  paged_lengths_kernel<<<(a.batch_size + 127) / 128, 128, 0, s>>>(p, a.batch_size);
  LKV_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

}  // namespace latentkv
