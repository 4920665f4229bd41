#include "cache/channel_group_store.h"

#include <cmath>

#include "latentkv/status.h"

namespace latentkv::detail {

namespace {
constexpr float kHalfOverflow = 65520.0f;  // fp16 rounds this and beyond to infinity
}  // namespace

ChannelGroupStore::ChannelGroupStore(int channels, int group, int bits, int residual)
    : channels_(channels), group_(group), residual_(residual) {
  LKV_CHECK_ARG(channels >= 1, "KIVI key store needs >= 1 channel, got ", channels);
  LKV_CHECK_ARG(group >= 1, "KIVI key_group must be >= 1 token, got ", group);
  block_config_.bits = bits;
  block_config_.quant_group = 0;
  block_config_.residual = residual;
  validate_quant_config(block_config_, group);
  code_bytes_ = latent_code_bytes(group, bits);
}

int64_t ChannelGroupStore::block_bytes_per_channel() const {
  return code_bytes_ + 4 * int64_t{latent_num_quant_groups(group_, block_config_)};
}

void ChannelGroupStore::check(const float* x, int64_t n, int64_t stride) const {
  for (int64_t t = 0; t < n; ++t)
    for (int c = 0; c < channels_; ++c) {
      const float v = x[t * stride + c];
      if (!std::isfinite(v) || std::fabs(v) >= kHalfOverflow)
        LKV_THROW(StatusCode::kNumericalError, "key value ", v, " of token ", size() + t,
                  ", channel ", c, " is ",
                  std::isfinite(v) ? "outside the fp16 range" : "not finite");
    }
}

void ChannelGroupStore::append(const float* x, int64_t n, int64_t stride) {
  check(x, n, stride);
  window_.resize(static_cast<size_t>((window_tokens_ + n) * channels_));
  for (int64_t t = 0; t < n; ++t)
    for (int c = 0; c < channels_; ++c)
      window_[(window_tokens_ + t) * channels_ + c] = float_to_half_bits(x[t * stride + c]);
  window_tokens_ += n;
  const int64_t new_blocks = std::max<int64_t>(0, (window_tokens_ - residual_) / group_);
  if (new_blocks == 0) return;
  const int64_t pairs = latent_num_quant_groups(group_, block_config_);
  codes_.resize(static_cast<size_t>((blocks_ + new_blocks) * channels_ * code_bytes_));
  scale_.resize(static_cast<size_t>((blocks_ + new_blocks) * channels_ * pairs));
  zero_.resize(scale_.size());
  std::vector<float> column(group_);
  for (int64_t b = 0; b < new_blocks; ++b)
    for (int c = 0; c < channels_; ++c) {
      for (int t = 0; t < group_; ++t)
        column[t] = half_bits_to_float(window_[(b * group_ + t) * channels_ + c]);
      const int64_t slot = (blocks_ + b) * channels_ + c;
      quantize_latent(column.data(), group_, block_config_, codes_.data() + slot * code_bytes_,
                      scale_.data() + slot * pairs, zero_.data() + slot * pairs);
    }
  const int64_t moved = new_blocks * group_;
  window_.erase(window_.begin(), window_.begin() + moved * channels_);
  window_tokens_ -= moved;
  blocks_ += new_blocks;
}

void ChannelGroupStore::dequantize(float* out, int64_t stride) const {
  const int64_t pairs = latent_num_quant_groups(group_, block_config_);
  std::vector<float> column(group_);
  for (int64_t b = 0; b < blocks_; ++b)
    for (int c = 0; c < channels_; ++c) {
      const int64_t slot = b * channels_ + c;
      dequantize_latent(codes_.data() + slot * code_bytes_, scale_.data() + slot * pairs,
                        zero_.data() + slot * pairs, group_, block_config_, column.data());
      for (int t = 0; t < group_; ++t) out[(b * group_ + t) * stride + c] = column[t];
    }
  for (int64_t t = 0; t < window_tokens_; ++t)
    for (int c = 0; c < channels_; ++c)
      out[(quantized() + t) * stride + c] = half_bits_to_float(window_[t * channels_ + c]);
}

void ChannelGroupStore::clear() {
  blocks_ = window_tokens_ = 0;
  codes_.clear();
  scale_.clear();
  zero_.clear();
  window_.clear();
}

int64_t ChannelGroupStore::bytes_held() const {
  return static_cast<int64_t>(codes_.size() + 2 * scale_.size() + 2 * zero_.size() +
                              2 * window_.size());
}

}  // namespace latentkv::detail
