// KIVI's key layout (internal to src/cache): the newest tokens in an fp16 window; older tokens in
// blocks of `group` tokens quantized per channel — for every channel of a block, the `group`
// values of that channel are one quantize_latent() vector (one fp16 scale/zero pair, codes packed
// LSB-first). A block is formed when the window holds residual + group tokens (its oldest group),
// so quantized(T) = group * max(0, floor((T - residual) / group)), as in LatentStore with
// chunk = group. Quantization reads the fp16 window values.
#pragma once

#include <cstdint>
#include <vector>

#include "latentkv/quant/latent_quant.h"

namespace latentkv::detail {

class ChannelGroupStore {
 public:
  ChannelGroupStore() = default;
  /// bits in {2, 3, 4, 8, 16}, group >= 1, residual >= 0; throws Error(kInvalidArgument).
  ChannelGroupStore(int channels, int group, int bits, int residual);

  /// Throws Error(kNumericalError) unless the n rows (channels values each, row stride `stride`)
  /// are finite and inside the fp16 range.
  void check(const float* x, int64_t n, int64_t stride) const;
  /// Appends n rows (after check()).
  void append(const float* x, int64_t n, int64_t stride);
  /// out[t*stride + c] for every token t (oldest first) and channel c.
  void dequantize(float* out, int64_t stride) const;
  void clear();

  int64_t size() const { return blocks_ * group_ + window_tokens_; }
  int64_t quantized() const { return blocks_ * group_; }
  /// Bytes of one block per channel: codes of `group` values + fp16 scale and zero (16 bits: codes
  /// only).
  int64_t block_bytes_per_channel() const;
  int64_t bytes_held() const;

 private:
  int channels_ = 0, group_ = 1, residual_ = 0;
  QuantConfig block_config_;  // bits, quant_group 0 (whole group of tokens)
  int64_t code_bytes_ = 0;    // per channel per block
  int64_t blocks_ = 0, window_tokens_ = 0;
  std::vector<uint8_t> codes_;          // [block][channel][code_bytes_]
  std::vector<uint16_t> scale_, zero_;  // [block][channel] (empty for 16 bits)
  std::vector<uint16_t> window_;        // [window_tokens_][channels] fp16
};

}  // namespace latentkv::detail
