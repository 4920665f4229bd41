#include "latentkv/reference/latent_store.h"

#include <cmath>
#include <cstring>

#include "latentkv/status.h"

namespace latentkv {

namespace {
// Smallest magnitude that fp16 rounds to infinity (65504 is the largest finite half).
constexpr float kHalfOverflow = 65520.0f;
// Values dequantized per OpenMP region at least (see kParallelWork in cache/attention_core.h).
constexpr int64_t kParallelValues = int64_t{1} << 16;
}  // namespace

void validate_latent_store_config(const QuantConfig& config, int rank, int chunk) {
  LKV_CHECK_ARG(chunk >= 1, "latent cache chunk must be >= 1 token, got ", chunk);
  if (config.bits == kExactLatentBits) {
    LKV_CHECK_ARG(rank >= 1, "latent rank must be >= 1, got ", rank);
    LKV_CHECK_ARG(config.quant_group == 0, "exact (32-bit) latents take no quant_group, got ",
                  config.quant_group);
    LKV_CHECK_ARG(config.residual >= 0, "residual window must be >= 0, got ", config.residual);
    return;
  }
  validate_quant_config(config, rank);
}

LatentStore::LatentStore(int rank, const QuantConfig& config, int chunk)
    : rank_(rank), config_(config), chunk_(chunk) {
  validate_latent_store_config(config, rank, chunk);
  if (config.bits == kExactLatentBits) {
    quant_row_bytes_ = window_row_bytes_ = 4 * int64_t{rank};
  } else {
    quant_row_bytes_ = latent_code_bytes(rank, config.bits);
    num_qgroups_ = latent_num_quant_groups(rank, config);
    window_row_bytes_ = 2 * int64_t{rank};
  }
}

void LatentStore::check(const float* h, int64_t n, int64_t stride) const {
  LKV_CHECK_ARG(n >= 0 && (n == 0 || stride >= rank_), "latent append of ", n,
                " tokens with row stride ", stride, " < rank ", rank_);
  const bool exact = config_.bits == kExactLatentBits;
  for (int64_t t = 0; t < n; ++t)
    for (int c = 0; c < rank_; ++c) {
      const float v = h[t * stride + c];
      if (!std::isfinite(v) || (!exact && std::fabs(v) >= kHalfOverflow))
        LKV_THROW(StatusCode::kNumericalError, "latent value ", v, " of token ", size() + t,
                  ", channel ", c, " is ",
                  std::isfinite(v) ? "outside the fp16 range" : "not finite");
    }
}

void LatentStore::append(const float* h, int64_t n, int64_t stride) {
  check(h, n, stride);
  const bool exact = config_.bits == kExactLatentBits;
  window_.resize(static_cast<size_t>((window_tokens_ + n) * window_row_bytes_));
  for (int64_t t = 0; t < n; ++t) {
    uint8_t* row = window_.data() + (window_tokens_ + t) * window_row_bytes_;
    if (exact) {
      std::memcpy(row, h + t * stride, static_cast<size_t>(window_row_bytes_));
    } else {
      for (int c = 0; c < rank_; ++c) {
        const uint16_t half = float_to_half_bits(h[t * stride + c]);
        std::memcpy(row + 2 * c, &half, 2);
      }
    }
  }
  window_tokens_ += n;
  const int64_t over = window_tokens_ - config_.residual;
  if (over >= chunk_) quantize_oldest(over / chunk_ * chunk_);
}

void LatentStore::quantize_oldest(int64_t count) {
  codes_.resize(static_cast<size_t>((quantized_ + count) * quant_row_bytes_));
  scale_.resize(static_cast<size_t>((quantized_ + count) * num_qgroups_));
  zero_.resize(static_cast<size_t>((quantized_ + count) * num_qgroups_));
  std::vector<float> latent(rank_);
  for (int64_t t = 0; t < count; ++t) {
    const uint8_t* row = window_.data() + t * window_row_bytes_;
    uint8_t* dst = codes_.data() + (quantized_ + t) * quant_row_bytes_;
    if (config_.bits == kExactLatentBits || config_.bits == 16) {
      std::memcpy(dst, row, static_cast<size_t>(quant_row_bytes_));  // same format both sides
      continue;
    }
    for (int c = 0; c < rank_; ++c) {
      uint16_t half;
      std::memcpy(&half, row + 2 * c, 2);
      latent[c] = half_bits_to_float(half);
    }
    quantize_latent(latent.data(), rank_, config_, dst,
                    scale_.data() + (quantized_ + t) * num_qgroups_,
                    zero_.data() + (quantized_ + t) * num_qgroups_);
  }
  window_.erase(window_.begin(), window_.begin() + count * window_row_bytes_);
  window_tokens_ -= count;
  quantized_ += count;
}

void LatentStore::dequantize(float* out, int64_t stride) const {
  const bool exact = config_.bits == kExactLatentBits;
  const int64_t total = size();
#pragma omp parallel for schedule(static) if (total * rank_ >= kParallelValues)
  for (int64_t t = 0; t < total; ++t) {
    float* dst = out + t * stride;
    if (t < quantized_ && !exact) {
      dequantize_latent(codes(t), scales(t), zeros(t), rank_, config_, dst);
      continue;
    }
    const uint8_t* src =
        t < quantized_ ? codes(t) : window_.data() + (t - quantized_) * window_row_bytes_;
    if (exact) {
      std::memcpy(dst, src, static_cast<size_t>(window_row_bytes_));
    } else {
      for (int c = 0; c < rank_; ++c) {
        uint16_t half;
        std::memcpy(&half, src + 2 * c, 2);
        dst[c] = half_bits_to_float(half);
      }
    }
  }
}

void LatentStore::clear() {
  quantized_ = window_tokens_ = 0;
  codes_.clear();
  scale_.clear();
  zero_.clear();
  window_.clear();
}

void LatentStore::reserve(int64_t tokens) {
  codes_.reserve(static_cast<size_t>(tokens * quant_row_bytes_));
  scale_.reserve(static_cast<size_t>(tokens * num_qgroups_));
  zero_.reserve(static_cast<size_t>(tokens * num_qgroups_));
  window_.reserve(static_cast<size_t>((config_.residual + chunk_) * window_row_bytes_));
}

int64_t LatentStore::bytes_held() const {
  return static_cast<int64_t>(codes_.size() + 2 * scale_.size() + 2 * zero_.size()) +
         window_tokens_ * window_row_bytes_;
}

}  // namespace latentkv
