// One stream of latents — the key or value latents of one group, one layer, one sequence — held
// exactly as a real cache holds them (design §3.7, §4): older tokens as packed codes with fp16
// scale/zero per quant group (or fp16 latents when bits = 16), the newest tokens in an fp16
// residual window.
//
// Policy (a pure function of the number of tokens T, so a paged GPU cache can follow it):
//   * every latent is first rounded to fp16 (the window format); quantization always reads that
//     fp16 value, so a token's codes do not depend on when it was quantized;
//   * after every append, while the window holds >= residual + chunk tokens, its oldest `chunk`
//     tokens are quantized with quantize_latent() and leave the window.
// Hence quantized(T) = chunk * max(0, floor((T - residual) / chunk)) and the window holds the
// rest: exactly the newest `residual` tokens when chunk = 1, whole pages of `chunk` tokens when a
// GPU cache uses chunk = page_size, and KIVI's "quantize the window when it is full" with
// residual = 0, chunk = R. With bits = 16 quantization is a copy (fp16 either way).
//
// bits = kExactLatentBits (32) is a reference-only mode used by identity tests: latents are kept
// in fp32 everywhere (window included) and nothing is rounded. It is not a kernel format.
#pragma once

#include <cstdint>
#include <vector>

#include "latentkv/quant/latent_quant.h"

namespace latentkv {

/// Reference-only storage width: fp32 latents, no rounding anywhere.
inline constexpr int kExactLatentBits = 32;

/// Throws Error(kInvalidArgument) unless `config` is a valid storage format for latents of width
/// `rank` (validate_quant_config(), or bits = kExactLatentBits with quant_group 0) and chunk >= 1.
void validate_latent_store_config(const QuantConfig& config, int rank, int chunk);

/// Latents of one group of one layer of one sequence (see the file comment for the policy).
class LatentStore {
 public:
  LatentStore() = default;
  /// Throws Error(kInvalidArgument) via validate_latent_store_config().
  LatentStore(int rank, const QuantConfig& config, int chunk);

  /// Appends n tokens; token i's latent is h[i*stride .. i*stride+rank). Values must pass
  /// check(); otherwise nothing is stored.
  void append(const float* h, int64_t n, int64_t stride);
  /// Throws Error(kNumericalError) unless every value of the n latents is finite and, unless
  /// bits = kExactLatentBits, inside the fp16 range (|h| < 65520: fp16 would store infinity).
  void check(const float* h, int64_t n, int64_t stride) const;
  /// Writes the latents of every token, oldest first, as attention reads them:
  /// out[t*stride .. t*stride+rank) for t in [0, size()).
  void dequantize(float* out, int64_t stride) const;
  /// Forgets every token (keeps the allocation).
  void clear();
  /// Pre-allocates room for `tokens` tokens.
  void reserve(int64_t tokens);

  int rank() const { return rank_; }
  const QuantConfig& config() const { return config_; }
  int chunk() const { return chunk_; }
  int64_t size() const { return quantized_ + window_tokens_; }
  /// Tokens held as codes (always a multiple of chunk()).
  int64_t quantized() const { return quantized_; }
  /// Tokens held in the fp16 (fp32 in exact mode) residual window.
  int64_t window() const { return window_tokens_; }

  /// Bytes of one quantized token: latent_bytes_per_token() (4·rank in exact mode).
  int64_t quantized_bytes_per_token() const { return quant_row_bytes_ + 4 * int64_t{num_qgroups_}; }
  /// Bytes of one window token: 2·rank (4·rank in exact mode).
  int64_t window_bytes_per_token() const { return window_row_bytes_; }
  /// Bytes held now, measured on the buffers: codes + scales + zeros + window.
  int64_t bytes_held() const;

  /// Packed codes (fp16/fp32 latents when bits is 16/32) of quantized token t.
  const uint8_t* codes(int64_t t) const { return codes_.data() + t * quant_row_bytes_; }
  /// fp16 scale / zero of quantized token t, latent_num_quant_groups() each (none for 16/32).
  const uint16_t* scales(int64_t t) const { return scale_.data() + t * num_qgroups_; }
  const uint16_t* zeros(int64_t t) const { return zero_.data() + t * num_qgroups_; }

 private:
  void quantize_oldest(int64_t count);

  int rank_ = 0;
  QuantConfig config_;
  int chunk_ = 1;
  int num_qgroups_ = 0;          // scale/zero pairs per quantized token
  int64_t quant_row_bytes_ = 0;  // code bytes per quantized token
  int64_t window_row_bytes_ = 0;
  int64_t quantized_ = 0, window_tokens_ = 0;
  std::vector<uint8_t> codes_;
  std::vector<uint16_t> scale_, zero_;
  std::vector<uint8_t> window_;  // [window_tokens_][window_row_bytes_], fp16 (or fp32) LE
};

}  // namespace latentkv
