// Dequantizers of ggml's k-quant formats (256-element super-blocks: q2_K ... q8_K).
#include <cstring>

#include "gguf/dequant_blocks.h"
#include "latentkv/gguf/dequantize.h"

namespace latentkv::dequant {
namespace {

constexpr int kQK_K = 256;

inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return fp16_to_fp32(h);
}

// q4_K/q5_K pack eight 6-bit (scale, min) pairs into 12 bytes: pairs 0-3 sit in the low 6 bits
// of bytes 0-3 (scale) and 4-7 (min); pairs 4-7 take their low 4 bits from the nibbles of bytes
// 8-11 and their top 2 bits from the spare high bits of bytes 0-7.
inline void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// q3_K packs sixteen 6-bit scales (stored with a +32 bias) into 12 bytes: low 4 bits of scale i
// are the low nibble of byte i (i < 8) or the high nibble of byte i - 8; its top 2 bits are bits
// 2·(i/4) of byte 8 + i%4.
inline int scale_k3(int i, const uint8_t* s) {
  const int lo = i < 8 ? (s[i] & 0x0F) : (s[i - 8] >> 4);
  const int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

}  // namespace

void q2_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 84) {
    const uint8_t* scales = x;
    const uint8_t* q = x + 16;
    const float d = half_at(x + 80);
    const float dmin = half_at(x + 82);
    int is = 0;
    // Each 128-element half reads 32 bytes of qs four times (2-bit fields at shifts 0, 2, 4, 6);
    // each pass yields two 16-element groups with their own 4-bit scale and min.
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int g = 0; g < 2; ++g) {
          const uint8_t sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0x0F);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * static_cast<float>((q[16 * g + l] >> shift) & 3) - ml;
          }
        }
      }
    }
  }
}

void q3_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 110) {
    const uint8_t* hmask = x;
    const uint8_t* q = x + 32;
    const uint8_t* scales = x + 96;
    const float d = half_at(x + 108);
    int is = 0;
    uint8_t m = 1;  // hmask bit of the current pass
    // Same traversal as q2_K; the 3rd bit comes from hmask (bit clear means subtract 4).
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int g = 0; g < 2; ++g) {
          const float dl = d * static_cast<float>(scale_k3(is++, scales));
          for (int l = 0; l < 16; ++l) {
            const int low = (q[16 * g + l] >> shift) & 3;
            const int v = low - ((hmask[16 * g + l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void q4_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 144) {
    const float d = half_at(x);
    const float dmin = half_at(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 16;
    // Each 64-element chunk: 32 bytes, low nibbles then high nibbles, two (scale, min) pairs.
    for (int j = 0; j < kQK_K / 64; ++j, q += 32) {
      int sc, mn;
      scale_min_k4(2 * j, scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
      scale_min_k4(2 * j + 1, scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void q5_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 176) {
    const float d = half_at(x);
    const float dmin = half_at(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 48;
    // As q4_K; chunk j takes its 5th bits from bits 2j (low nibbles) and 2j+1 (high) of qh.
    for (int j = 0; j < kQK_K / 64; ++j, ql += 32) {
      int sc, mn;
      scale_min_k4(2 * j, scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
      scale_min_k4(2 * j + 1, scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(mn);
      const uint8_t u1 = static_cast<uint8_t>(1u << (2 * j));
      const uint8_t u2 = static_cast<uint8_t>(2u << (2 * j));
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
      }
    }
  }
}

void q6_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 210) {
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    const float d = half_at(x + 208);
    // Each 128-element half: 64 bytes of ql (low nibbles: elements 0-63, high: 64-127) and 32
    // bytes of qh holding the top 2 bits of four elements each; 16-element groups share a scale.
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void q8_k(const uint8_t* x, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 292, y += kQK_K) {
    float d;
    std::memcpy(&d, x, sizeof d);
    const int8_t* qs = reinterpret_cast<const int8_t*>(x + 4);
    for (int j = 0; j < kQK_K; ++j) y[j] = d * static_cast<float>(qs[j]);
  }
}

}  // namespace latentkv::dequant
