// GPU tests of the engine's forward-pass ops against straightforward CPU loops. fp16 outputs
// must lie within one fp16 ulp of the CPU value (the kernels compute in fp32 and round once),
// fp32 outputs within fp32 accumulation error.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "attention/gpu_buffer.h"
#include "engine/model_ops.h"
#include "latentkv/rope.h"
#include "support/test_support.h"

namespace latentkv::engine {
namespace {

using testing::DeviceBuffer;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

float h2f(uint16_t bits) {
  __half_raw r;
  r.x = bits;
  return __half2float(__half(r));
}

uint16_t f2h(float f) {
  const __half_raw r = __float2half_rn(f);
  return r.x;
}

/// |fp16 result - CPU value| allowed when the fp32 computation is accurate to ~1e-6 relative:
/// one fp16 ulp of the value (half an ulp of rounding plus the fp32 error, with room).
double fp16_tol(double value) { return std::fabs(value) * 0x1p-10 + 0x1p-24; }

std::vector<uint16_t> random_half(size_t n, std::mt19937& rng, float sigma) {
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f2h(nd(rng));
  return v;
}

std::vector<float> random_float(size_t n, std::mt19937& rng, float mean, float sigma) {
  std::normal_distribution<float> nd(mean, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

TEST(ModelOpsGpu, EmbedTokens) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(1);
  const int vocab = 37;
  for (int d : {576, 4096, 64, 6}) {
    for (int n : {1, 3, 17}) {
      for (int offset : {0, 1}) {  // offset 1: unaligned table, scalar path
        SCOPED_TRACE(::testing::Message() << "d=" << d << " n=" << n << " offset=" << offset);
        const std::vector<uint16_t> table = random_half(size_t{vocab} * d + 1, rng, 1.0f);
        std::uniform_int_distribution<int32_t> pick(0, vocab - 1);
        std::vector<int32_t> tokens(n);
        for (auto& t : tokens) t = pick(rng);
        if (n > 1) tokens[1] = -1;
        if (n > 2) tokens[n - 1] = vocab;
        DeviceBuffer<uint16_t> dtable(table);
        DeviceBuffer<int32_t> dtokens(tokens);
        DeviceBuffer<float> dout(size_t{1} * n * d);
        dout.fill_bytes(0);
        LKV_ASSERT_OK(embed_tokens_run(dtable.get() + offset, vocab, d, dtokens.get(), n,
                                       dout.get(), nullptr));
        LKV_ASSERT_CUDA(cudaDeviceSynchronize());
        const std::vector<float> out = dout.download();
        for (int i = 0; i < n; ++i) {
          const bool bad = tokens[i] < 0 || tokens[i] >= vocab;
          for (int c = 0; c < d; ++c) {
            const float got = out[size_t{1} * i * d + c];
            if (bad) {
              ASSERT_TRUE(std::isnan(got)) << "row " << i << " col " << c;
            } else {
              ASSERT_EQ(got, h2f(table[offset + size_t{1} * tokens[i] * d + c]))
                  << "row " << i << " col " << c;
            }
          }
        }
      }
    }
  }
}

TEST(ModelOpsGpu, RmsNorm) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(2);
  const float eps = 1e-5f;
  for (int d : {576, 4096, 64, 5}) {
    for (int n : {1, 3, 17}) {
      const int off = n == 3 ? 1 : 0;
      SCOPED_TRACE(::testing::Message() << "d=" << d << " n=" << n << " offset=" << off);
      std::vector<float> x = random_float(size_t{1} * n * d, rng, 0.0f, 1.0f);
      for (int i = 0; i < n; ++i)  // rows of different scales: 0.1, 1, 10
        for (int c = 0; c < d; ++c) x[size_t{1} * i * d + c] *= std::pow(10.0f, i % 3 - 1);
      const std::vector<float> w = random_float(d, rng, 1.0f, 0.2f);
      // Offset 1 (n = 3): rows of a multiple of 4 floats that are not 16-byte aligned take the
      // scalar path.
      std::vector<float> xo(x.size() + off), wo(w.size() + off);
      std::copy(x.begin(), x.end(), xo.begin() + off);
      std::copy(w.begin(), w.end(), wo.begin() + off);
      DeviceBuffer<float> dx(xo), dw(wo);
      DeviceBuffer<uint16_t> dout(size_t{1} * n * d);
      dout.fill_bytes(0xFF);
      LKV_ASSERT_OK(rms_norm_run(dx.get() + off, dw.get() + off, n, d, eps, dout.get(), nullptr));
      LKV_ASSERT_CUDA(cudaDeviceSynchronize());
      const std::vector<uint16_t> out = dout.download();
      for (int i = 0; i < n; ++i) {
        // detail::rms_norm() of src/model/forward_ops.cpp, with eps as the engine passes it.
        const float* xi = &x[size_t{1} * i * d];
        double ss = 0.0;
        for (int c = 0; c < d; ++c) ss += static_cast<double>(xi[c]) * xi[c];
        const float inv = static_cast<float>(
            1.0 / std::sqrt(static_cast<float>(ss / d) + static_cast<double>(eps)));
        for (int c = 0; c < d; ++c) {
          const float ref = (xi[c] * inv) * w[c];
          const float got = h2f(out[size_t{1} * i * d + c]);
          ASSERT_NEAR(got, ref, fp16_tol(ref)) << "row " << i << " col " << c;
        }
      }
    }
  }
}

struct RopeCase {
  int n, num_heads, head_dim, pad;  // pad: extra elements per row beyond the heads
  double theta;
  bool llama3;
};

TEST(ModelOpsGpu, Rope) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(3);
  for (const RopeCase& c :
       {RopeCase{1, 9, 64, 0, 10000.0, false}, RopeCase{3, 4, 128, 64, 500000.0, true},
        RopeCase{17, 2, 64, 192, 10000.0, false}, RopeCase{17, 3, 128, 0, 500000.0, true}}) {
    SCOPED_TRACE(::testing::Message() << "n=" << c.n << " heads=" << c.num_heads
                                      << " head_dim=" << c.head_dim << " pad=" << c.pad);
    RopeConfig cfg;
    cfg.theta = c.theta;
    if (c.llama3) cfg.freq_factors = llama3_freq_factors(c.head_dim, c.theta, 8.0, 1.0, 4.0, 8192);
    const std::vector<double> inv_freq = rope_inv_freq(cfg, c.head_dim);
    const int64_t row_stride = int64_t{c.num_heads} * c.head_dim + c.pad;
    const std::vector<uint16_t> x = random_half(static_cast<size_t>(c.n * row_stride), rng, 1.0f);
    std::uniform_int_distribution<int32_t> pick(0, 131072);
    std::vector<int32_t> pos(c.n);
    for (auto& p : pos) p = pick(rng);
    pos[0] = 131072;
    if (c.n > 1) pos[1] = 0;
    if (c.n > 2) pos[2] = 131071;
    DeviceBuffer<uint16_t> dx(x);
    DeviceBuffer<int32_t> dpos(pos);
    DeviceBuffer<double> dfreq(inv_freq);
    LKV_ASSERT_OK(rope_run(dx.get(), c.n, c.num_heads, c.head_dim, row_stride, dpos.get(),
                           dfreq.get(), nullptr));
    LKV_ASSERT_CUDA(cudaDeviceSynchronize());
    const std::vector<uint16_t> got = dx.download();
    for (int i = 0; i < c.n; ++i) {
      for (int h = 0; h < c.num_heads; ++h) {
        const size_t base = static_cast<size_t>(i * row_stride + int64_t{h} * c.head_dim);
        std::vector<double> ref(c.head_dim);
        for (int j = 0; j < c.head_dim; ++j) ref[j] = h2f(x[base + j]);
        apply_rope(ref.data(), c.head_dim, pos[i], inv_freq.data());
        for (int j = 0; j < c.head_dim; ++j) {
          // Inputs are ~N(0, 1): fp32 sin/cos and products add < 1e-5 absolute.
          ASSERT_NEAR(h2f(got[base + j]), ref[j], fp16_tol(ref[j]) + 2e-5)
              << "row " << i << " head " << h << " j " << j << " pos " << pos[i];
        }
      }
      for (int j = c.num_heads * c.head_dim; j < row_stride; ++j)
        ASSERT_EQ(got[i * row_stride + j], x[i * row_stride + j]) << "padding changed, row " << i;
    }
  }
}

TEST(ModelOpsGpu, SwiGlu) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(4);
  for (int ffn : {576, 4096, 64, 7}) {
    for (int n : {1, 3, 17}) {
      for (int offset : {0, 1}) {  // offset 1: unaligned buffers, scalar path
        SCOPED_TRACE(::testing::Message() << "ffn=" << ffn << " n=" << n << " offset=" << offset);
        const size_t row = size_t{2} * ffn;
        std::vector<uint16_t> gate_up = random_half(n * row + 1, rng, 1.0f);
        std::normal_distribution<float> gate(0.0f, 3.0f);
        for (int i = 0; i < n; ++i)
          for (int c = 0; c < ffn; ++c) gate_up[offset + i * row + c] = f2h(gate(rng));
        DeviceBuffer<uint16_t> dgu(gate_up), dout(size_t{1} * n * ffn + 1);
        dout.fill_bytes(0xFF);
        LKV_ASSERT_OK(swiglu_run(dgu.get() + offset, n, ffn, dout.get() + offset, nullptr));
        LKV_ASSERT_CUDA(cudaDeviceSynchronize());
        const std::vector<uint16_t> out = dout.download();
        for (int i = 0; i < n; ++i) {
          for (int c = 0; c < ffn; ++c) {
            const double g = h2f(gate_up[offset + i * row + c]);
            const double u = h2f(gate_up[offset + i * row + ffn + c]);
            const double ref = g / (1.0 + std::exp(-g)) * u;
            ASSERT_NEAR(h2f(out[offset + size_t{1} * i * ffn + c]), ref, fp16_tol(ref))
                << "row " << i << " col " << c;
          }
        }
      }
    }
  }
}

/// Argmax with ties to the lowest id, NaN ignored, 0 for a row of NaN.
int32_t argmax_reference(const float* row, int vocab) {
  int32_t best = -1;
  for (int j = 0; j < vocab; ++j)
    if (!std::isnan(row[j]) && (best < 0 || row[j] > row[best])) best = j;
  return best < 0 ? 0 : best;
}

/// Rows of normal logits with special rows by i % 6: 1 a tie of the max, 2 NaNs (one at id 0),
/// 3 all NaN, 4 all -inf, 5 -inf and NaN but one finite value at the last id.
std::vector<float> special_logits(int n, int vocab, int64_t stride, std::mt19937& rng) {
  std::vector<float> x = random_float(static_cast<size_t>(n * stride), rng, 0.0f, 3.0f);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  for (int i = 0; i < n; ++i) {
    float* row = &x[static_cast<size_t>(i * stride)];
    switch (i % 6) {
      case 1: {
        const int a = pick(rng), b = pick(rng);
        row[a] = row[b] = 100.0f;
        break;
      }
      case 2:
        for (int k = 0; k < 5; ++k) row[pick(rng)] = kNaN;
        row[0] = kNaN;
        break;
      case 3:
        std::fill(row, row + vocab, kNaN);
        break;
      case 4:
        std::fill(row, row + vocab, -kInf);
        break;
      case 5:
        for (int j = 0; j < vocab; ++j) row[j] = j % 2 ? kNaN : -kInf;
        row[vocab - 1] = -3.0f;
        break;
    }
  }
  return x;
}

// The decode step's projections: activation-row counts 1-5 and 8 (the kernel takes up to 8), fp32
// and fp16 outputs, overwrite and accumulate (the residual adds), row counts that are not a
// multiple of 16, k with fewer 32-wide blocks than warps, and padded leading dimensions.
TEST(ModelOpsGpu, DecodeGemv) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(9);
  struct Shape {
    int m, n, k;
    int64_t pad;
  };
  for (const Shape sh : {Shape{1, 4096, 4096, 0}, Shape{2, 64, 4096, 0}, Shape{3, 37, 96, 8},
                         Shape{4, 300, 1056, 0}, Shape{5, 16, 32, 16}, Shape{8, 300, 1056, 0}}) {
    for (bool y_f32 : {true, false}) {
      for (float beta : {0.0f, 1.0f}) {
        SCOPED_TRACE(::testing::Message() << "m=" << sh.m << " n=" << sh.n << " k=" << sh.k
                                          << " f32=" << y_f32 << " beta=" << beta);
        const int64_t ldx = sh.k + sh.pad, ldw = sh.k + sh.pad, ldy = sh.n + 3;
        const std::vector<uint16_t> x = random_half(sh.m * ldx, rng, 1.0f);
        const std::vector<uint16_t> w = random_half(sh.n * ldw, rng, 0.05f);
        std::vector<float> y0(sh.m * ldy);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (float& v : y0) v = y_f32 ? nd(rng) : h2f(f2h(nd(rng)));
        DeviceBuffer<uint16_t> dx(x), dw(w);
        DeviceBuffer<float> dyf(y0);
        std::vector<uint16_t> y0h(y0.size());
        for (size_t i = 0; i < y0.size(); ++i) y0h[i] = f2h(y0[i]);
        DeviceBuffer<uint16_t> dyh(y0h);
        void* y = y_f32 ? static_cast<void*>(dyf.get()) : static_cast<void*>(dyh.get());
        ASSERT_TRUE(decode_gemv_takes(dx.get(), ldx, dw.get(), ldw, sh.m, sh.k));
        LKV_ASSERT_OK(decode_gemv_run(dx.get(), ldx, dw.get(), ldw, y, ldy, y_f32, sh.m, sh.n, sh.k,
                                      beta, nullptr));
        LKV_ASSERT_CUDA(cudaDeviceSynchronize());
        const std::vector<float> yf = dyf.download();
        const std::vector<uint16_t> yh = dyh.download();
        double worst = 0.0;
        for (int i = 0; i < sh.m; ++i)
          for (int j = 0; j < ldy; ++j) {
            const size_t at = size_t{1} * i * ldy + j;
            const double got = y_f32 ? yf[at] : h2f(yh[at]);
            if (j >= sh.n) {  // past n: untouched
              ASSERT_EQ(got, static_cast<double>(y0[at])) << "i=" << i << " j=" << j;
              continue;
            }
            double ref = beta * static_cast<double>(y0[at]);
            for (int k = 0; k < sh.k; ++k)
              ref += static_cast<double>(h2f(x[i * ldx + k])) * h2f(w[j * ldw + k]);
            const double tol = y_f32 ? 1e-4 * (1.0 + std::fabs(ref))
                                     : std::fabs(ref) * 1e-3 + 1e-3;  // one fp16 ulp
            worst = std::max(worst, std::fabs(got - ref) / tol);
            ASSERT_LE(std::fabs(got - ref), tol) << "i=" << i << " j=" << j << " ref=" << ref;
          }
        RecordProperty("worst_over_tol", std::to_string(worst));
      }
    }
  }
}

// Two products of one x in one launch: W_q-like (fp16 out) and A_cat-like (fp32 out), row counts
// that are and are not multiples of the kernel's 16-row blocks, so that the second product's
// blocks start mid-grid at a block boundary.
TEST(ModelOpsGpu, DecodeGemvPair) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(12);
  const int k = 1056;
  for (int m : {1, 3, 8}) {
    for (const auto& [na, nb] : {std::pair{64, 4096}, std::pair{37, 300}, std::pair{16, 1}}) {
      SCOPED_TRACE(::testing::Message() << "m=" << m << " na=" << na << " nb=" << nb);
      const std::vector<uint16_t> x = random_half(m * k, rng, 1.0f);
      const std::vector<uint16_t> wa = random_half(na * k, rng, 0.05f);
      const std::vector<uint16_t> wb = random_half(nb * k, rng, 0.05f);
      DeviceBuffer<uint16_t> dx(x), dwa(wa), dwb(wb), dya(m * na);
      DeviceBuffer<float> dyb(m * nb);
      DecodeGemvProduct a, b;
      a.w = dwa.get();
      a.ldw = k;
      a.y = dya.get();
      a.ldy = na;
      a.n = na;
      b.w = dwb.get();
      b.ldw = k;
      b.y = dyb.get();
      b.ldy = nb;
      b.y_f32 = true;
      b.n = nb;
      LKV_ASSERT_OK(decode_gemv_pair_run(dx.get(), k, m, k, a, b, nullptr));
      LKV_ASSERT_CUDA(cudaDeviceSynchronize());
      const std::vector<uint16_t> ya = dya.download();
      const std::vector<float> yb = dyb.download();
      auto ref = [&](const std::vector<uint16_t>& w, int i, int j) {
        double r = 0.0;
        for (int kk = 0; kk < k; ++kk)
          r += static_cast<double>(h2f(x[i * k + kk])) * h2f(w[size_t{1} * j * k + kk]);
        return r;
      };
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < na; ++j) {
          const double r = ref(wa, i, j);
          ASSERT_NEAR(h2f(ya[i * na + j]), r, std::fabs(r) * 1e-3 + 1e-3)
              << "a i=" << i << " j=" << j;
        }
        for (int j = 0; j < nb; ++j) {
          const double r = ref(wb, i, j);
          ASSERT_NEAR(yb[i * nb + j], r, 1e-4 * (1.0 + std::fabs(r))) << "b i=" << i << " j=" << j;
        }
      }
    }
  }
  // An empty second product is decode_gemv_run of the first; a bad second product is rejected.
  const std::vector<uint16_t> x = random_half(32, rng, 1.0f), w = random_half(16 * 32, rng, 0.1f);
  DeviceBuffer<uint16_t> dx(x), dw(w), dy(16);
  DecodeGemvProduct a;
  a.w = dw.get();
  a.ldw = 32;
  a.y = dy.get();
  a.ldy = 16;
  a.n = 16;
  LKV_ASSERT_OK(decode_gemv_pair_run(dx.get(), 32, 1, 32, a, DecodeGemvProduct{}, nullptr));
  DecodeGemvProduct bad = a;
  bad.ldw = 20;  // not a multiple of 8
  EXPECT_EQ(decode_gemv_pair_run(dx.get(), 32, 1, 32, a, bad, nullptr).code(),
            StatusCode::kInvalidArgument);
  bad = a;
  bad.y = nullptr;
  EXPECT_EQ(decode_gemv_pair_run(dx.get(), 32, 1, 32, a, bad, nullptr).code(),
            StatusCode::kInvalidArgument);
}

TEST(ModelOpsGpu, ArgmaxRows) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(6);
  for (int vocab : {1, 17, 1000, 128256}) {
    for (int n : {1, 3, 17}) {
      SCOPED_TRACE(::testing::Message() << "vocab=" << vocab << " n=" << n);
      const int64_t stride = vocab + 5;
      const std::vector<float> x = special_logits(n, vocab, stride, rng);
      DeviceBuffer<float> dx(x);
      DeviceBuffer<int32_t> dout(n);
      dout.fill_bytes(0xFF);
      LKV_ASSERT_OK(argmax_rows_run(dx.get(), n, vocab, stride, dout.get(), nullptr));
      LKV_ASSERT_CUDA(cudaDeviceSynchronize());
      const std::vector<int32_t> got = dout.download();
      for (int i = 0; i < n; ++i)
        EXPECT_EQ(got[i], argmax_reference(&x[static_cast<size_t>(i * stride)], vocab))
            << "row " << i;
    }
  }
}

/// The CPU draw of sample_rows_run's rule in double; `ambiguous` when float rounding on the GPU
/// could legitimately change the result (u or the top-p cut within 1e-5 of a boundary).
struct Draw {
  int32_t id;
  bool ambiguous;
};

Draw sample_reference(const float* row, int vocab, double temperature, double top_p, double u) {
  double m = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < vocab; ++j)
    if (!std::isnan(row[j])) m = std::max(m, static_cast<double>(row[j]));
  std::vector<double> p(vocab);
  double total = 0.0;
  for (int j = 0; j < vocab; ++j) {
    p[j] = std::isnan(row[j]) ? 0.0 : std::exp((row[j] - m) / temperature);
    total += p[j];
  }
  double tau = 0.0;
  bool ambiguous = false;
  if (top_p < 1.0) {
    // tau = the probability of the token that completes top_p of the mass, most probable first.
    std::vector<int> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    const double target = top_p * total;
    double cum = 0.0, before = 0.0;
    int k = 0;
    while (k < vocab) {
      before = cum;
      cum += p[order[k++]];
      if (cum >= target) break;
    }
    tau = p[order[k - 1]];
    ambiguous = target - before < 1e-5 * total || cum - target < 1e-5 * total;
    if (k < vocab && p[order[k]] < tau && tau - p[order[k]] < 1e-5 * tau) ambiguous = true;
  }
  double mass = 0.0;
  int32_t last = -1;
  for (int j = 0; j < vocab; ++j) {
    if (p[j] > 0.0 && p[j] >= tau) {
      mass += p[j];
      last = j;
    }
  }
  double cum = 0.0;
  int32_t id = -1;
  for (int j = 0; j < vocab; ++j) {
    if (!(p[j] > 0.0 && p[j] >= tau)) continue;
    cum += p[j];
    if (std::fabs(cum / mass - u) < 1e-5) ambiguous = true;
    if (id < 0 && cum > u * mass) id = j;
  }
  return {id < 0 ? last : id, ambiguous};
}

TEST(ModelOpsGpu, SampleRowsMatchesReference) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  int checked = 0, total = 0;
  for (int vocab : {1, 17, 1000, 32000, 128256}) {
    const int n = vocab > 50000 ? 9 : 33;
    const int64_t stride = vocab + 3;
    std::vector<float> x = random_float(static_cast<size_t>(n * stride), rng, 0.0f, 2.5f);
    if (vocab > 1) x[vocab / 2] = kNaN;  // row 0: a NaN logit has probability 0
    std::vector<float> u(n);
    for (auto& v : u) v = std::min(uni(rng), 0.99999994f);
    u[0] = 0.0f;
    DeviceBuffer<float> dx(x), du(u);
    DeviceBuffer<int32_t> dout(n);
    for (float temperature : {0.5f, 1.0f, 1.7f}) {
      for (float top_p : {1.0f, 0.95f, 0.6f, 0.2f}) {
        SCOPED_TRACE(::testing::Message()
                     << "vocab=" << vocab << " T=" << temperature << " top_p=" << top_p);
        dout.fill_bytes(0xFF);
        LKV_ASSERT_OK(sample_rows_run(dx.get(), n, vocab, stride, temperature, top_p, du.get(),
                                      dout.get(), nullptr));
        LKV_ASSERT_CUDA(cudaDeviceSynchronize());
        const std::vector<int32_t> got = dout.download();
        for (int i = 0; i < n; ++i) {
          const Draw ref = sample_reference(&x[static_cast<size_t>(i * stride)], vocab, temperature,
                                            top_p, u[i]);
          ++total;
          if (ref.ambiguous) continue;
          ++checked;
          EXPECT_EQ(got[i], ref.id) << "row " << i << " u=" << u[i];
        }
      }
    }
  }
  std::printf("sample_rows: %d of %d draws checked (others within 1e-5 of a boundary)\n", checked,
              total);
  EXPECT_GE(checked, total * 3 / 4);
}

TEST(ModelOpsGpu, SampleRowsGreedyLimits) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(9);
  for (int vocab : {1000, 128256}) {
    const int n = 17;
    const int64_t stride = vocab;
    const std::vector<float> x = random_float(static_cast<size_t>(n * stride), rng, 0.0f, 2.5f);
    std::vector<float> u(n);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    for (auto& v : u) v = std::min(uni(rng), 0.99999994f);
    u[1] = 0.99999994f;
    DeviceBuffer<float> dx(x), du(u);
    DeviceBuffer<int32_t> dout(n);
    // {temperature, top_p}: tiny top_p keeps only the most probable token; T <= 0 is greedy
    // whatever top_p says.
    for (const auto& [temperature, top_p] : std::vector<std::pair<float, float>>{
             {1.0f, 1e-6f}, {0.3f, 1e-3f}, {0.0f, 1.0f}, {0.0f, 0.0f}, {-1.0f, 0.5f}}) {
      SCOPED_TRACE(::testing::Message()
                   << "vocab=" << vocab << " T=" << temperature << " top_p=" << top_p);
      dout.fill_bytes(0xFF);
      LKV_ASSERT_OK(sample_rows_run(dx.get(), n, vocab, stride, temperature, top_p, du.get(),
                                    dout.get(), nullptr));
      LKV_ASSERT_CUDA(cudaDeviceSynchronize());
      const std::vector<int32_t> got = dout.download();
      for (int i = 0; i < n; ++i)
        EXPECT_EQ(got[i], argmax_reference(&x[static_cast<size_t>(i * stride)], vocab))
            << "row " << i;
    }
  }
}

TEST(ModelOpsGpu, SampleRowsNonFiniteRows) {
  LKV_REQUIRE_GPU();
  const int vocab = 300;
  std::vector<float> x(3 * vocab, 0.5f);
  std::fill(x.begin(), x.begin() + vocab, kNaN);  // row 0: all NaN -> 0
  x[vocab + 7] = kInf;                            // row 1: +inf wins
  x[vocab + 9] = kInf;
  std::fill(x.begin() + 2 * vocab, x.end(), -kInf);  // row 2: all -inf -> 0
  const std::vector<float> u = {0.5f, 0.5f, 0.5f};
  DeviceBuffer<float> dx(x), du(u);
  DeviceBuffer<int32_t> dout(3);
  LKV_ASSERT_OK(
      sample_rows_run(dx.get(), 3, vocab, vocab, 1.0f, 0.9f, du.get(), dout.get(), nullptr));
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(dout.download(), (std::vector<int32_t>{0, 7, 0}));
}

TEST(ModelOpsGpu, FillRandomFp16) {
  LKV_REQUIRE_GPU();
  const int64_t count = 100003;
  const float scale = 0.02f;
  DeviceBuffer<uint16_t> a(count), b(count), c(count);
  LKV_ASSERT_OK(fill_random_fp16_run(a.get(), count, 1, scale, nullptr));
  LKV_ASSERT_OK(fill_random_fp16_run(b.get(), count, 1, scale, nullptr));
  LKV_ASSERT_OK(fill_random_fp16_run(c.get(), count, 2, scale, nullptr));
  LKV_ASSERT_CUDA(cudaDeviceSynchronize());
  const std::vector<uint16_t> va = a.download(), vb = b.download(), vc = c.download();
  EXPECT_EQ(va, vb);
  int64_t same = 0;
  double sum = 0.0, lo = 0.0, hi = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    same += va[i] == vc[i];
    const double v = h2f(va[i]);
    ASSERT_LE(std::fabs(v), scale * (1.0 + 0x1p-11)) << "element " << i;
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_LT(same, count / 100);
  // Uniform on [-s, s): the mean's standard deviation is s / sqrt(3 count) ~ 0.0018 s.
  EXPECT_LT(std::fabs(sum / count), 0.01 * scale);
  EXPECT_LT(lo, -0.99 * scale);
  EXPECT_GT(hi, 0.99 * scale);
}

TEST(ModelOpsGpu, CopyPositions) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(10);
  std::uniform_int_distribution<int32_t> pick(0, 131072);
  for (int n : {1, 3, 17, 1000}) {
    std::vector<int32_t> lens(n);
    for (auto& l : lens) l = pick(rng);
    DeviceBuffer<int32_t> dlens(lens), dpos(n);
    dpos.fill_bytes(0xFF);
    LKV_ASSERT_OK(copy_positions_run(dlens.get(), n, dpos.get(), nullptr));
    LKV_ASSERT_CUDA(cudaDeviceSynchronize());
    EXPECT_EQ(dpos.download(), lens) << "n=" << n;
  }
}

// Every op inside a CUDA graph capture (global mode: a synchronizing or allocating call would
// break it), then replays with new lengths.
TEST(ModelOpsGpu, CapturableInCudaGraph) {
  LKV_REQUIRE_GPU();
  std::mt19937 rng(11);
  const int n = 3, d = 64, vocab = 50, ffn = 32, heads = 2, hd = 16;
  DeviceBuffer<uint16_t> table(random_half(size_t{vocab} * d, rng, 1.0f));
  DeviceBuffer<int32_t> tokens(std::vector<int32_t>{1, 2, 3});
  DeviceBuffer<float> hidden(n * d), weight(std::vector<float>(d, 1.0f));
  DeviceBuffer<uint16_t> normed(n * d), gate_up(random_half(n * 2 * ffn, rng, 1.0f)), act(n * ffn);
  const std::vector<float> logits = random_float(n * vocab, rng, 0.0f, 2.0f);
  DeviceBuffer<float> dlogits(logits), uniforms(std::vector<float>{0.1f, 0.5f, 0.9f});
  DeviceBuffer<int32_t> lens(std::vector<int32_t>{5, 6, 7}), pos(n), greedy(n), sampled(n);
  DeviceBuffer<double> inv_freq(rope_inv_freq(RopeConfig{}, hd));
  DeviceBuffer<uint16_t> noise(1000);

  cudaStream_t s = nullptr;
  LKV_ASSERT_CUDA(cudaStreamCreate(&s));
  LKV_ASSERT_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  EXPECT_TRUE(copy_positions_run(lens.get(), n, pos.get(), s).ok());
  EXPECT_TRUE(embed_tokens_run(table.get(), vocab, d, tokens.get(), n, hidden.get(), s).ok());
  EXPECT_TRUE(rms_norm_run(hidden.get(), weight.get(), n, d, 1e-5f, normed.get(), s).ok());
  EXPECT_TRUE(rope_run(normed.get(), n, heads, hd, d, pos.get(), inv_freq.get(), s).ok());
  EXPECT_TRUE(swiglu_run(gate_up.get(), n, ffn, act.get(), s).ok());
  EXPECT_TRUE(argmax_rows_run(dlogits.get(), n, vocab, vocab, greedy.get(), s).ok());
  EXPECT_TRUE(
      sample_rows_run(dlogits.get(), n, vocab, vocab, 0.8f, 0.9f, uniforms.get(), sampled.get(), s)
          .ok());
  EXPECT_TRUE(fill_random_fp16_run(noise.get(), 1000, 7, 1.0f, s).ok());
  cudaGraph_t graph = nullptr;
  LKV_ASSERT_CUDA(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec = nullptr;
  LKV_ASSERT_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  LKV_ASSERT_CUDA(cudaGraphLaunch(exec, s));
  LKV_ASSERT_CUDA(cudaStreamSynchronize(s));
  EXPECT_EQ(pos.download(), (std::vector<int32_t>{5, 6, 7}));
  std::vector<int32_t> want(n);
  for (int i = 0; i < n; ++i) want[i] = argmax_reference(&logits[size_t{1} * i * vocab], vocab);
  EXPECT_EQ(greedy.download(), want);
  lens.upload({100, 200, 300});
  LKV_ASSERT_CUDA(cudaGraphLaunch(exec, s));
  LKV_ASSERT_CUDA(cudaStreamSynchronize(s));
  EXPECT_EQ(pos.download(), (std::vector<int32_t>{100, 200, 300}));
  for (int32_t id : sampled.download()) EXPECT_TRUE(id >= 0 && id < vocab) << id;
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

/// Expects kInvalidArgument whose message names `what`.
void expect_invalid(const Status& st, const std::string& what) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find(what), std::string::npos) << st.to_string();
}

// Argument checks happen before any CUDA call: no GPU needed.
TEST(ModelOps, RejectsBadArguments) {
  uint16_t* h = nullptr;
  float* f = nullptr;
  int32_t* i = nullptr;
  expect_invalid(embed_tokens_run(h, 0, 64, i, 1, f, nullptr), "vocab_size");
  expect_invalid(embed_tokens_run(h, 10, 0, i, 1, f, nullptr), "d_model");
  expect_invalid(embed_tokens_run(h, 10, 64, i, -1, f, nullptr), "n must");
  expect_invalid(rms_norm_run(f, f, 1, 0, 1e-5f, h, nullptr), "d must");
  expect_invalid(rms_norm_run(f, f, -2, 64, 1e-5f, h, nullptr), "n must");
  expect_invalid(rms_norm_run(f, f, 1, 64, kNaN, h, nullptr), "eps");
  expect_invalid(rope_run(h, 1, 2, 63, 126, i, nullptr, nullptr), "head_dim");
  expect_invalid(rope_run(h, 1, 0, 64, 128, i, nullptr, nullptr), "num_heads");
  expect_invalid(rope_run(h, 1, 2, 64, 127, i, nullptr, nullptr), "row_stride");
  expect_invalid(swiglu_run(h, 1, 0, h, nullptr), "ffn_dim");
  expect_invalid(argmax_rows_run(f, 1, 0, 0, i, nullptr), "vocab");
  expect_invalid(argmax_rows_run(f, 1, 10, 9, i, nullptr), "row_stride");
  expect_invalid(sample_rows_run(f, 1, 10, 10, 1.0f, 0.0f, f, i, nullptr), "top_p");
  expect_invalid(sample_rows_run(f, 1, 10, 10, 1.0f, 1.5f, f, i, nullptr), "top_p");
  expect_invalid(sample_rows_run(f, 1, 10, 10, kNaN, 0.9f, f, i, nullptr), "temperature");
  expect_invalid(fill_random_fp16_run(h, -5, 1, 1.0f, nullptr), "count");
  expect_invalid(copy_positions_run(i, -1, i, nullptr), "n must");
  expect_invalid(decode_gemv_run(h, 64, h, 64, f, 16, true, 9, 16, 64, 0.0f, nullptr), "m <= 8");
  expect_invalid(decode_gemv_run(h, 64, h, 64, f, 16, true, 1, 16, 48, 0.0f, nullptr), "k % 32");
  expect_invalid(decode_gemv_run(h, 64, h, 64, f, 16, true, 1, 16, 64, 0.0f, nullptr), "x and w");
  // Never dereferenced: the checks fail first.
  const auto* fake = reinterpret_cast<const uint16_t*>(uintptr_t{256});
  expect_invalid(decode_gemv_run(fake, 64, fake, 64, nullptr, 16, true, 1, 16, 64, 0.0f, nullptr),
                 "y must");
  expect_invalid(embed_tokens_run(h, 10, 64, i, 1, f, nullptr), "null");
  // Nothing to do: Ok without touching the (null) pointers.
  EXPECT_TRUE(embed_tokens_run(h, 10, 64, i, 0, f, nullptr).ok());
  EXPECT_TRUE(rms_norm_run(f, f, 0, 64, 1e-5f, h, nullptr).ok());
  EXPECT_TRUE(rope_run(h, 0, 2, 64, 128, i, nullptr, nullptr).ok());
  EXPECT_TRUE(swiglu_run(h, 0, 16, h, nullptr).ok());
  EXPECT_TRUE(argmax_rows_run(f, 0, 10, 10, i, nullptr).ok());
  EXPECT_TRUE(sample_rows_run(f, 0, 10, 10, 1.0f, 0.9f, f, i, nullptr).ok());
  EXPECT_TRUE(fill_random_fp16_run(h, 0, 1, 1.0f, nullptr).ok());
  EXPECT_TRUE(copy_positions_run(i, 0, i, nullptr).ok());
}

}  // namespace
}  // namespace latentkv::engine
