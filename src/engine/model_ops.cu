#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/cuda_status.h"
#include "cuda/decode_gemv.h"
#include "cuda/launch_dependent.h"
#include "engine/model_ops.h"
#include "model_ops.cuh"

/// Returns kInvalidArgument "<op>: <message>" from the enclosing function unless cond holds.
#define LKV_OP_CHECK(cond, op, ...)                                          \
  do {                                                                       \
    if (!(cond))                                                             \
      return ::latentkv::Status(::latentkv::StatusCode::kInvalidArgument,    \
                                ::latentkv::str_cat(op, ": ", __VA_ARGS__)); \
  } while (0)

namespace latentkv::engine {
namespace {

/// Grid-stride kernels use at most this many CTAs: enough to fill any GPU, and the loop takes
/// the rest.
constexpr int64_t kMaxGrid = 8192;

unsigned grid_for(int64_t work, int threads) {
  return static_cast<unsigned>(std::min<int64_t>((work + threads - 1) / threads, kMaxGrid));
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

/// Checks of the shape arguments shared by the three row ops over logits.
Status check_logits_shape(const char* op, int n, int vocab, int64_t row_stride) {
  LKV_OP_CHECK(n >= 0, op, "n must be >= 0, got ", n);
  LKV_OP_CHECK(vocab > 0, op, "vocab must be > 0, got ", vocab);
  LKV_OP_CHECK(row_stride >= vocab, op, "row_stride ", row_stride, " is below vocab ", vocab);
  return Status::Ok();
}

}  // namespace

Status embed_tokens_run(const uint16_t* table, int vocab_size, int d_model, const int32_t* tokens,
                        int n, float* out, GpuStream stream) {
  constexpr const char* kOp = "embed_tokens_run";
  LKV_OP_CHECK(vocab_size > 0, kOp, "vocab_size must be > 0, got ", vocab_size);
  LKV_OP_CHECK(d_model > 0, kOp, "d_model must be > 0, got ", d_model);
  LKV_OP_CHECK(n >= 0, kOp, "n must be >= 0, got ", n);
  if (n == 0) return Status::Ok();
  LKV_OP_CHECK(table && tokens && out, kOp, "table, tokens and out must not be null");
  if (d_model % 8 == 0 && aligned16(table) && aligned16(out)) {
    kernels::embed_tokens_kernel<8>
        <<<n, kernels::kElemThreads, 0, stream>>>(table, vocab_size, d_model, tokens, out);
  } else {
    kernels::embed_tokens_kernel<1>
        <<<n, kernels::kElemThreads, 0, stream>>>(table, vocab_size, d_model, tokens, out);
  }
  LKV_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

Status rms_norm_run(const float* x, const float* weight, int n, int d, float eps, uint16_t* out,
                    GpuStream stream) {
  constexpr const char* kOp = "rms_norm_run";
  LKV_OP_CHECK(n >= 0, kOp, "n must be >= 0, got ", n);
  LKV_OP_CHECK(d > 0, kOp, "d must be > 0, got ", d);
  LKV_OP_CHECK(std::isfinite(eps) && eps >= 0, kOp, "eps must be finite and >= 0, got ", eps);
  if (n == 0) return Status::Ok();
  LKV_OP_CHECK(x && weight && out, kOp, "x, weight and out must not be null");
  LKV_CUDA_RETURN(detail::launch_dependent(kernels::rms_norm_kernel, dim3(n),
                                           dim3(kernels::kNormThreads), 0, stream, x, weight, d,
                                           eps, out));
  return Status::Ok();
}

Status rope_run(uint16_t* x, int n, int num_heads, int head_dim, int64_t row_stride,
                const int32_t* positions, const double* inv_freq, GpuStream stream) {
  constexpr const char* kOp = "rope_run";
  LKV_OP_CHECK(n >= 0, kOp, "n must be >= 0, got ", n);
  LKV_OP_CHECK(num_heads > 0, kOp, "num_heads must be > 0, got ", num_heads);
  LKV_OP_CHECK(head_dim > 0 && head_dim % 2 == 0, kOp, "head_dim must be even and > 0, got ",
               head_dim);
  LKV_OP_CHECK(row_stride >= int64_t{num_heads} * head_dim, kOp, "row_stride ", row_stride,
               " is below num_heads * head_dim = ", int64_t{num_heads} * head_dim);
  if (n == 0) return Status::Ok();
  LKV_OP_CHECK(x && positions && inv_freq, kOp, "x, positions and inv_freq must not be null");
  const int half = head_dim / 2;
  const int64_t total = int64_t{n} * num_heads * half;
  LKV_CUDA_RETURN(detail::launch_dependent(kernels::rope_kernel,
                                           dim3(grid_for(total, kernels::kElemThreads)),
                                           dim3(kernels::kElemThreads), 0, stream, x, num_heads,
                                           half, row_stride, positions, inv_freq, total));
  return Status::Ok();
}

bool decode_gemv_takes(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int m,
                       int k) {
  return detail::decode_gemv_fits(x, ldx, w, ldw, m, k);
}

namespace {

// The checks of one product of x [m, ldx] (decode_gemv_run, decode_gemv_pair_run).
Status check_gemv_product(const char* op, const uint16_t* x, int64_t ldx, int m, int k,
                          const uint16_t* w, int64_t ldw, const void* y, int64_t ldy, bool y_f32,
                          int n, float beta) {
  LKV_OP_CHECK(n >= 0, op, "n must be >= 0, got ", n);
  LKV_OP_CHECK(decode_gemv_takes(x, ldx, w, ldw, m, k), op,
               "needs 1 <= m <= 8, k % 32 == 0, ldx / ldw multiples of 8 and >= k, 16-byte "
               "aligned x and w; got m ",
               m, ", k ", k, ", ldx ", ldx, ", ldw ", ldw);
  LKV_OP_CHECK(x != nullptr && w != nullptr, op, "x and w must not be null");
  LKV_OP_CHECK(y != nullptr && ldy >= n, op, "y must not be null and ldy >= n");
  LKV_OP_CHECK(reinterpret_cast<uintptr_t>(y) % (y_f32 ? 4 : 2) == 0, op,
               "y must be aligned to its element size");
  LKV_OP_CHECK(std::isfinite(beta), op, "beta must be finite");
  return Status::Ok();
}

kernels::DecodeGemvOutput gemv_output(const DecodeGemvProduct& q) {
  kernels::DecodeGemvOutput o;
  o.w = reinterpret_cast<const __half*>(q.w);
  o.ldw = q.ldw;
  o.y = q.y;
  o.ldy = q.ldy;
  o.y_f32 = q.y_f32 ? 1 : 0;
  o.n = q.n;
  o.beta = q.beta;
  return o;
}

// One launch of the products a and b (b.n == 0: a alone), already checked.
Status launch_gemv_products(const uint16_t* x, int64_t ldx, int m, int k,
                            const DecodeGemvProduct& a, const DecodeGemvProduct& b,
                            GpuStream stream) {
  kernels::DecodeGemvParams p;
  p.x = reinterpret_cast<const __half*>(x);
  p.ldx = ldx;
  p.m = m;
  p.k = k;
  p.out[0] = gemv_output(a);
  p.out[1] = gemv_output(b);
  LKV_CUDA_RETURN(detail::launch_decode_gemv(p, reinterpret_cast<cudaStream_t>(stream)));
  return Status::Ok();
}

}  // namespace

Status decode_gemv_run(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, void* y,
                       int64_t ldy, bool y_f32, int m, int n, int k, float beta, GpuStream stream) {
  LKV_RETURN_IF_ERROR(
      check_gemv_product("decode_gemv_run", x, ldx, m, k, w, ldw, y, ldy, y_f32, n, beta));
  return launch_gemv_products(x, ldx, m, k, DecodeGemvProduct{w, ldw, y, ldy, y_f32, n, beta},
                              DecodeGemvProduct{}, stream);
}

Status decode_gemv_pair_run(const uint16_t* x, int64_t ldx, int m, int k,
                            const DecodeGemvProduct& a, const DecodeGemvProduct& b,
                            GpuStream stream) {
  constexpr const char* kOp = "decode_gemv_pair_run";
  // b may be empty (n = 0, no pointers): then this is decode_gemv_run of a.
  for (const DecodeGemvProduct* q : {&a, &b})
    if (q == &a || q->n != 0)
      LKV_RETURN_IF_ERROR(check_gemv_product(kOp, x, ldx, m, k, q->w, q->ldw, q->y, q->ldy,
                                             q->y_f32, q->n, q->beta));
  return launch_gemv_products(x, ldx, m, k, a, b, stream);
}

Status swiglu_run(const uint16_t* gate_up, int n, int ffn_dim, uint16_t* out, GpuStream stream) {
  constexpr const char* kOp = "swiglu_run";
  LKV_OP_CHECK(n >= 0, kOp, "n must be >= 0, got ", n);
  LKV_OP_CHECK(ffn_dim > 0, kOp, "ffn_dim must be > 0, got ", ffn_dim);
  if (n == 0) return Status::Ok();
  LKV_OP_CHECK(gate_up && out, kOp, "gate_up and out must not be null");
  const int64_t count = int64_t{n} * ffn_dim;
  if (ffn_dim % 8 == 0 && aligned16(gate_up) && aligned16(out)) {
    const int64_t groups = count / 8;
    LKV_CUDA_RETURN(detail::launch_dependent(
        kernels::swiglu_kernel<8>, dim3(grid_for(groups, kernels::kElemThreads)),
        dim3(kernels::kElemThreads), 0, stream, gate_up, ffn_dim, out, groups));
  } else {
    LKV_CUDA_RETURN(detail::launch_dependent(
        kernels::swiglu_kernel<1>, dim3(grid_for(count, kernels::kElemThreads)),
        dim3(kernels::kElemThreads), 0, stream, gate_up, ffn_dim, out, count));
  }
  return Status::Ok();
}

Status argmax_rows_run(const float* logits, int n, int vocab, int64_t row_stride, int32_t* out,
                       GpuStream stream) {
  constexpr const char* kOp = "argmax_rows_run";
  LKV_RETURN_IF_ERROR(check_logits_shape(kOp, n, vocab, row_stride));
  if (n == 0) return Status::Ok();
  LKV_OP_CHECK(logits && out, kOp, "logits and out must not be null");
  kernels::argmax_rows_kernel<<<n, kernels::kVocabThreads, 0, stream>>>(logits, vocab, row_stride,
                                                                        out);
  LKV_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

Status sample_rows_run(const float* logits, int n, int vocab, int64_t row_stride, float temperature,
                       float top_p, const float* uniforms, int32_t* out, GpuStream stream) {
  constexpr const char* kOp = "sample_rows_run";
  LKV_RETURN_IF_ERROR(check_logits_shape(kOp, n, vocab, row_stride));
  LKV_OP_CHECK(std::isfinite(temperature), kOp, "temperature must be finite, got ", temperature);
  const bool greedy = temperature <= 0.0f;
  LKV_OP_CHECK(greedy || (top_p > 0.0f && top_p <= 1.0f), kOp, "top_p must be in (0, 1], got ",
               top_p);
  if (n == 0) return Status::Ok();
  LKV_OP_CHECK(logits && out, kOp, "logits and out must not be null");
  if (greedy) {
    kernels::argmax_rows_kernel<<<n, kernels::kVocabThreads, 0, stream>>>(logits, vocab, row_stride,
                                                                          out);
  } else {
    LKV_OP_CHECK(uniforms, kOp, "uniforms must not be null");
    // Fixed-point scale of the weights (<= 1): the sum over the vocabulary stays below 2^62.
    int vocab_bits = 0;
    while ((int64_t{1} << vocab_bits) <= vocab) ++vocab_bits;
    const float q_scale = std::ldexp(1.0f, 62 - vocab_bits);
    kernels::sample_rows_kernel<<<n, kernels::kVocabThreads, 0, stream>>>(
        logits, vocab, row_stride, temperature, top_p, q_scale, uniforms, out);
  }
  LKV_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

Status fill_random_fp16_run(uint16_t* out, int64_t count, uint64_t seed, float scale,
                            GpuStream stream) {
  constexpr const char* kOp = "fill_random_fp16_run";
  LKV_OP_CHECK(count >= 0, kOp, "count must be >= 0, got ", count);
  LKV_OP_CHECK(std::isfinite(scale), kOp, "scale must be finite, got ", scale);
  if (count == 0) return Status::Ok();
  LKV_OP_CHECK(out, kOp, "out must not be null");
  kernels::fill_random_fp16_kernel<<<grid_for(count, kernels::kElemThreads), kernels::kElemThreads,
                                     0, stream>>>(out, count, kernels::splitmix64_mix(seed), scale);
  LKV_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

Status copy_positions_run(const int32_t* seq_lens, int n, int32_t* positions, GpuStream stream) {
  constexpr const char* kOp = "copy_positions_run";
  LKV_OP_CHECK(n >= 0, kOp, "n must be >= 0, got ", n);
  if (n == 0) return Status::Ok();
  LKV_OP_CHECK(seq_lens && positions, kOp, "seq_lens and positions must not be null");
  kernels::copy_positions_kernel<<<grid_for(n, kernels::kElemThreads), kernels::kElemThreads, 0,
                                   stream>>>(seq_lens, n, positions);
  LKV_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

}  // namespace latentkv::engine
