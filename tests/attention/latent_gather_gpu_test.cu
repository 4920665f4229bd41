// GPU test of the latent gather kernel: caches filled on the host by the reference append,
// uploaded, gathered per sequence on the GPU and compared bit-exactly with reference::latent_gather
// (both dequantize with fma(code, scale, zero) in fp32 and round to fp16 to nearest even).
#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "attention/gpu_buffer.h"
#include "attention/latent_cache_fixture.h"
#include "latentkv/attention/latent_gather.h"
#include "latentkv/quant/latent_quant.h"
#include "latentkv/reference/latent_gather.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::DeviceBuffer;

struct GatherCase {
  const char* name;
  int bits, quant_group, num_groups, rank_k, rank_v, page_size;
  LatentWindowPolicy window;
  int pad;  ///< extra elements per output row (odd: unaligned rows, 2-byte stores)
};

void PrintTo(const GatherCase& c, std::ostream* os) { *os << c.name; }

void run_case(const GatherCase& c) {
  std::mt19937 rng(4321 + c.bits * 13 + c.rank_k + c.page_size);
  QuantConfig quant;
  quant.bits = c.bits;
  quant.quant_group = c.quant_group;
  const std::vector<int> lens = {1, 17, 113, 1023};
  testing::HostLatentCache cache = testing::make_filled_cache(
      lens, c.num_groups, c.rank_k, c.rank_v, quant, c.page_size, c.window, 1.0f, rng);
  DeviceBuffer<uint8_t> kc(cache.k_codes), ksz(cache.k_sz), kr(cache.k_ring), vc(cache.v_codes),
      vsz(cache.v_sz), vr(cache.v_ring);
  DeviceBuffer<int32_t> indices(cache.indices);
  for (int kvsel = 0; kvsel < 2; ++kvsel) {
    for (int b = 0; b < static_cast<int>(lens.size()); ++b) {
      SCOPED_TRACE(::testing::Message()
                   << c.name << (kvsel ? " V" : " K") << " sequence " << b << " T=" << lens[b]);
      LatentGatherParams p;
      p.num_groups = c.num_groups;
      p.cache = kvsel ? cache.vview() : cache.kview();
      p.window = c.window;
      p.pages = cache.indices.data() + cache.indptr[b];
      p.page_size = c.page_size;
      p.seq_slot = b;
      p.num_tokens = cache.seq_lens[b];
      p.out_stride = int64_t{c.num_groups} * p.cache.rank + c.pad;
      ASSERT_EQ(p.num_tokens, lens[b]);
      const size_t out_elems = static_cast<size_t>(lens[b]) * p.out_stride;
      std::vector<uint16_t> want(out_elems, 0xFFFF);
      p.out = want.data();
      reference::latent_gather(p);

      LatentGatherParams dp = p;
      dp.cache = kvsel ? cache.view(true, vc.get(), vsz.get(), vr.get())
                       : cache.view(false, kc.get(), ksz.get(), kr.get());
      dp.pages = indices.get() + cache.indptr[b];
      DeviceBuffer<uint16_t> out(out_elems);
      out.fill_bytes(0xFF);
      dp.out = out.get();
      LKV_ASSERT_OK(latent_gather_run(dp, nullptr));
      LKV_ASSERT_CUDA(cudaDeviceSynchronize());
      const std::vector<uint16_t> got = out.download();
      for (size_t i = 0; i < out_elems; ++i)
        ASSERT_EQ(got[i], want[i])
            << "token " << i / p.out_stride << " column " << i % p.out_stride;
    }
  }
}

class LatentGatherGpu : public ::testing::TestWithParam<GatherCase> {};

TEST_P(LatentGatherGpu, BitExactWithReference) {
  LKV_REQUIRE_GPU();
  run_case(GetParam());
}

std::vector<GatherCase> cases() {
  std::vector<GatherCase> out;
  static const char* names[] = {"b16_w0_p1", "b16_w0_p16", "b16_w32_p1", "b16_w32_p16",
                                "b4_w0_p1",  "b4_w0_p16",  "b4_w32_p1",  "b4_w32_p16",
                                "b3_w0_p1",  "b3_w0_p16",  "b3_w32_p1",  "b3_w32_p16",
                                "b2_w0_p1",  "b2_w0_p16",  "b2_w32_p1",  "b2_w32_p16"};
  const int ranks[] = {16, 128, 48, 96}, pads[] = {0, 8, 3};
  int i = 0;
  for (int bits : {16, 4, 3, 2})
    for (const LatentWindowPolicy w : {LatentWindowPolicy{0, 1}, LatentWindowPolicy{32, 16}})
      for (int page : {1, 16}) {
        const int groups = i % 2 ? 3 : 1;
        out.push_back(GatherCase{names[i], bits, 0, groups, ranks[i % 4], ranks[(i + 1) % 4], page,
                                 w, pads[i % 3]});
        ++i;
      }
  out.push_back(GatherCase{"b8_qg16_w5_p16", 8, 16, 3, 64, 32, 16, {5, 3}, 1});
  out.push_back(GatherCase{"b4_qg32_w32_p1", 4, 32, 1, 96, 128, 1, {32, 16}, 0});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Caches, LatentGatherGpu, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GatherCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace latentkv
