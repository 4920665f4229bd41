// Per-token asymmetric round-to-nearest quantization of latents (design §3.7). This file is the
// bit-exact specification that the CPU reference and the CUDA kernels both implement.
//
// One token's latent of one group is `rank` floats. It is cut into quant groups of `quant_group`
// consecutive channels (default: the whole latent). For each quant group, in fp32:
//   zero  = fp16(min x)                         (round to nearest even)
//   scale = fp16((max x − min x) / (2^bits − 1)) (fp32 IEEE division, then to fp16 RNE)
//   code  = clamp(rint((x − zero) / scale), 0, 2^bits − 1)  with fp32 `zero`/`scale` read back from
//           their fp16 values, IEEE division and rint = round half to even; code = 0 when scale = 0
//   x̂     = fma(code, scale, zero)             (fp32)
// Codes are packed densely, LSB first: code i of a token occupies bits [i·bits, (i+1)·bits) of the
// token's code bytes, bit k living in bit k%8 of byte k/8 (3-bit codes straddle bytes). A token's
// codes take ceil(rank·bits/8) bytes; scale and zero are stored as fp16, one pair per quant group.
// bits = 16 means no quantization: the latent is stored as fp16 (RNE), no scale/zero.
#pragma once

#include <cstdint>

namespace latentkv {

/// How latents are stored in the cache.
struct QuantConfig {
  int bits = 16;        ///< 16 = fp16 latents; 2, 3, 4 or 8 = integer codes
  int quant_group = 0;  ///< channels sharing one scale/zero; 0 = the whole group latent (rank)
  int residual = 128;   ///< newest tokens kept in fp16 before being quantized in chunks (0 allowed)
};

/// 2, 3, 4, 8 or 16.
bool is_supported_bits(int bits);
/// Channels per quant group for a latent of width `rank` (resolves quant_group = 0).
int effective_quant_group(const QuantConfig& config, int rank);
/// Throws Error(kInvalidArgument) when bits is unsupported, quant_group does not divide rank, or
/// rank / residual are out of range.
void validate_quant_config(const QuantConfig& config, int rank);

/// Bytes of the packed codes of one token's latent of width `rank` (fp16: 2·rank).
int64_t latent_code_bytes(int rank, int bits);
/// Scale/zero pairs per token's latent of width `rank` (0 for fp16).
int latent_num_quant_groups(int rank, const QuantConfig& config);
/// Exact bytes per token of one group's latent: codes + 2 bytes scale + 2 bytes zero per quant
/// group (fp16: 2·rank). Summed over groups and K/V this is the cache's bytes per token.
int64_t latent_bytes_per_token(int rank, const QuantConfig& config);

/// fp32 -> fp16 bits, round to nearest even (as __float2half_rn); fp16 bits -> fp32 (exact).
uint16_t float_to_half_bits(float x);
float half_bits_to_float(uint16_t h);

/// Quantizes one token's latent x[rank]. Writes latent_code_bytes(rank, bits) bytes to `codes`
/// and latent_num_quant_groups() fp16 values to `scale` and `zero`. For bits = 16 writes the fp16
/// latent into `codes` (little-endian) and leaves scale/zero untouched. Throws
/// Error(kNumericalError) when a quantized group holds NaN or a value outside the fp16 range
/// (|x| >= 65520), where scale/zero would overflow; bits = 16 expects finite fp16-range input.
void quantize_latent(const float* x, int rank, const QuantConfig& config, uint8_t* codes,
                     uint16_t* scale, uint16_t* zero);
/// Inverse of quantize_latent: out[rank] = fma(code, scale, zero) (or the fp16 values).
void dequantize_latent(const uint8_t* codes, const uint16_t* scale, const uint16_t* zero, int rank,
                       const QuantConfig& config, float* out);

/// Writes `count` codes of `bits` bits LSB-first into `packed` (ceil(count·bits/8) bytes; the
/// unused high bits of the last byte are zero).
void pack_codes(const uint8_t* codes, int64_t count, int bits, uint8_t* packed);
/// Reads code `index` from a packed stream.
inline uint8_t unpack_code(const uint8_t* packed, int64_t index, int bits) {
  const int64_t bit = index * bits;
  const int64_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  // A code spans at most two bytes (bits <= 8); read the second only when needed so that the
  // last code of a buffer never reads past its end.
  uint32_t window = packed[byte];
  if (shift + bits > 8) window |= static_cast<uint32_t>(packed[byte + 1]) << 8;
  return static_cast<uint8_t>((window >> shift) & ((1u << bits) - 1u));
}

}  // namespace latentkv
