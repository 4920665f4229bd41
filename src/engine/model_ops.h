// Small GPU ops of the Llama forward pass of the GPU engine: embedding lookup, RMSNorm, RoPE,
// SwiGLU, residual add, argmax / NLL / nucleus sampling over logits, synthetic weights and the
// decode step's positions. Compiles without nvcc.
//
// Every call takes device pointers (fp16 tensors as uint16_t IEEE half bits), checks its scalar
// arguments (kInvalidArgument naming the bad one), returns Ok at once when there is no row or
// element to process, launches on `stream` and returns. None allocates, synchronizes or reads
// device memory on the host, so all can be captured in a CUDA graph. Defined in CUDA builds only
// (src/engine/model_ops.cu).
#pragma once

#include <cstdint>

#include "latentkv/attention/decode_common.h"
#include "latentkv/status.h"

namespace latentkv::engine {

/// out[i, :] = table[tokens[i], :] widened to fp32.
/// table: fp16 [vocab_size, d_model]; tokens: [n]; out: fp32 [n, d_model].
/// An id outside [0, vocab_size) gives a row of NaN (the host validates ids; NaN makes a bug loud).
Status embed_tokens_run(const uint16_t* table, int vocab_size, int d_model, const int32_t* tokens,
                        int n, float* out, GpuStream stream);

/// out[i, :] = fp16(x[i, :] * inv_i * weight[:]), inv_i = 1 / sqrt(mean_j x[i, j]² + eps), with
/// the formula and rounding order of the CPU forward pass (sum of squares in double, the rest in
/// float). x: fp32 [n, d]; weight: fp32 [d]; out: fp16 [n, d].
Status rms_norm_run(const float* x, const float* weight, int n, int d, float eps, uint16_t* out,
                    GpuStream stream);

/// Rotary embedding in place, half-split convention of latentkv/rope.h: in every head, element j
/// and element j + head_dim/2 are rotated by positions[i] * inv_freq[j].
/// x: fp16, head h of row i at x + i * row_stride + h * head_dim (row_stride >= num_heads *
/// head_dim, e.g. the q or k part of a fused qkv row); positions: [n]; inv_freq: fp64
/// [head_dim / 2]. The angle is reduced modulo 2π in double before sincosf, so that positions up
/// to 131072 keep float accuracy.
Status rope_run(uint16_t* x, int n, int num_heads, int head_dim, int64_t row_stride,
                const int32_t* positions, const double* inv_freq, GpuStream stream);

/// Whether decode_gemv_run takes x [m, ldx] · w [n, ldw]ᵀ: 1 <= m <= 8, k % 32 == 0, ldx and
/// ldw multiples of 8 and >= k, x and w 16-byte aligned.
bool decode_gemv_takes(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int m,
                       int k);

/// y[i, j] = beta * y[i, j] + Σ_k x[i, k] * w[j, k] for a decode step's few rows, on tensor
/// cores, streaming w once (kernels/decode_gemv.cuh). x: fp16 [m, ldx]; w: fp16 [n, ldw];
/// y: fp32 (y_f32) or fp16 [m, ldy], ldy >= n; beta 0 ignores y's contents. kInvalidArgument
/// unless decode_gemv_takes() and the pointers are non-null. w is a weight: the kernel starts
/// reading it before the previous kernel on the stream has finished (programmatic dependent
/// launch), so w must not be written by work still in flight on the stream; x and y are safe.
Status decode_gemv_run(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, void* y,
                       int64_t ldy, bool y_f32, int m, int n, int k, float beta, GpuStream stream);

/// One product of decode_gemv_pair_run: y = beta * y + x * wᵀ, w fp16 [n, ldw], y fp32 (y_f32)
/// or fp16 [m, ldy], ldy >= n.
struct DecodeGemvProduct {
  const uint16_t* w = nullptr;
  int64_t ldw = 0;
  void* y = nullptr;
  int64_t ldy = 0;
  bool y_f32 = false;
  int n = 0;
  float beta = 0.0f;
};

/// decode_gemv_run for two products of the same x in one launch (the latent decode step: W_q
/// and the stacked latent down-projection). kInvalidArgument unless decode_gemv_takes() holds
/// for each w and the pointers of each product with n > 0 are non-null.
Status decode_gemv_pair_run(const uint16_t* x, int64_t ldx, int m, int k,
                            const DecodeGemvProduct& a, const DecodeGemvProduct& b,
                            GpuStream stream);

/// out[i, c] = fp16(silu(gate[i, c]) * up[i, c]) in fp32, silu(g) = g / (1 + exp(-g)).
/// gate_up: fp16 [n, 2 * ffn_dim], gate = columns [0, ffn_dim), up = [ffn_dim, 2 * ffn_dim);
/// out: fp16 [n, ffn_dim].
Status swiglu_run(const uint16_t* gate_up, int n, int ffn_dim, uint16_t* out, GpuStream stream);

/// out[i] = argmax_j logits[i, j]: ties go to the lowest id, NaN entries are ignored (a row of
/// NaN gives 0). logits: fp32, row i at logits + i * row_stride (row_stride >= vocab), [n, vocab];
/// out: [n].
Status argmax_rows_run(const float* logits, int n, int vocab, int64_t row_stride, int32_t* out,
                       GpuStream stream);

/// Samples one token per row. temperature <= 0: out[i] = argmax as argmax_rows_run (top_p is then
/// ignored). Otherwise p = softmax(logits[i, :] / temperature) (NaN logits get probability 0); the
/// nucleus is {j : p_j >= tau}, tau the largest threshold whose nucleus holds at least top_p of
/// the mass (top_p = 1 keeps every token); out[i] is the first id, ascending, whose cumulative
/// nucleus probability exceeds uniforms[i] * (nucleus mass), else the last nucleus id. A row
/// whose largest logit is infinite, or all of whose logits are NaN, gives its argmax. The
/// probabilities are summed in fixed point (a unit of 2^-45 of the largest one for a 128K
/// vocabulary), exactly and so independently of the reduction order.
/// logits: fp32 [n, vocab], row stride row_stride >= vocab; uniforms: [n] in [0, 1); out: [n].
Status sample_rows_run(const float* logits, int n, int vocab, int64_t row_stride, float temperature,
                       float top_p, const float* uniforms, int32_t* out, GpuStream stream);

/// out[i] = fp16(scale * v_i), v_i uniform in [-1, 1) from a counter-based hash of (seed, i):
/// deterministic synthetic weights for speed benchmarks. out: fp16 [count].
Status fill_random_fp16_run(uint16_t* out, int64_t count, uint64_t seed, float scale,
                            GpuStream stream);

/// positions[b] = seq_lens[b]: the decode step's query positions, computed on the device so that
/// a captured CUDA graph replays with new lengths. seq_lens, positions: [n].
Status copy_positions_run(const int32_t* seq_lens, int n, int32_t* positions, GpuStream stream);

}  // namespace latentkv::engine
