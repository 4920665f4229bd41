#include "latentkv/compress/calib_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "compress/compress_test_util.h"
#include "latentkv/status.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_inputs;

MatrixRM inputs_f32(int64_t n, int d, uint64_t seed) {
  return random_inputs(n, d, seed).cast<float>();
}

// Γ of fp32 inputs, computed densely in fp64 (what the rank updates must reproduce).
Eigen::MatrixXd dense_gram(const MatrixRM& x) {
  const Eigen::MatrixXd xd = x.cast<double>();
  return xd.transpose() * xd;
}

double rel_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).norm() / b.norm();
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(LayerGram, AccumulatesChunksIntoTheDenseGram) {
  const int d = 19;
  // 1300 rows cross the internal 512-row blocking; uneven chunks cross it differently.
  const MatrixRM x = inputs_f32(1300, d, 1);
  LayerGram stats(d);
  stats.accumulate(x.topRows(7));
  stats.accumulate(x.middleRows(7, 700));
  stats.accumulate(x.data() + 707 * d, 1300 - 707);
  EXPECT_EQ(stats.tokens(), 1300);
  const Eigen::MatrixXd g = stats.gram();
  EXPECT_LT(rel_diff(g, dense_gram(x)), 1e-13);
  EXPECT_EQ(g, g.transpose());
}

TEST(LayerGram, AcceptsStridedRows) {
  const int d = 8;
  const MatrixRM wide = inputs_f32(40, 2 * d, 2);
  LayerGram stats(d);
  stats.accumulate(wide.leftCols(d));  // outer stride 2·d
  EXPECT_LT(rel_diff(stats.gram(), dense_gram(wide.leftCols(d))), 1e-13);
}

TEST(LayerGram, MergeIsTheStatisticsOfTheUnion) {
  const int d = 13;
  const MatrixRM x = inputs_f32(90, d, 3);
  LayerGram a(d), b(d), all(d);
  a.accumulate(x.topRows(31));
  b.accumulate(x.bottomRows(59));
  all.accumulate(x);
  a += b;
  EXPECT_EQ(a.tokens(), all.tokens());
  EXPECT_LT(rel_diff(a.gram(), all.gram()), 1e-13);
}

TEST(LayerGram, RejectsBadChunks) {
  LayerGram stats(4);
  MatrixRM x = MatrixRM::Ones(3, 4);
  x(1, 2) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(code_of([&] { stats.accumulate(x); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(stats.tokens(), 0);  // nothing was added
  EXPECT_EQ(stats.gram(), Eigen::MatrixXd::Zero(4, 4));
  x(1, 2) = std::numeric_limits<float>::infinity();
  EXPECT_EQ(code_of([&] { stats.accumulate(x); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { stats.accumulate(MatrixRM::Ones(3, 5)); }), StatusCode::kInvalidArgument);
  LayerGram other(5);
  EXPECT_EQ(code_of([&] { stats += other; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([] { LayerGram bad(0); }), StatusCode::kInvalidArgument);
}

TEST(CrossGram, AccumulatesAndMerges) {
  const int d = 9;
  const MatrixRM x = inputs_f32(600, d, 4);
  const MatrixRM xt = inputs_f32(600, d, 5);
  CrossGram a(d), b(d);
  a.accumulate(xt.topRows(550), x.topRows(550));
  b.accumulate(xt.bottomRows(50), x.bottomRows(50));
  a += b;
  EXPECT_EQ(a.tokens(), 600);
  const Eigen::MatrixXd expect = xt.cast<double>().transpose() * x.cast<double>();
  EXPECT_LT(rel_diff(a.cross(), expect), 1e-13);
  EXPECT_EQ(code_of([&] { a.accumulate(xt.topRows(3), x.topRows(4)); }),
            StatusCode::kInvalidArgument);
}

CalibStats sample_stats(int n_layers, int d) {
  CalibStats s = CalibStats::empty(n_layers, d);
  s.model_key = "model-sha";
  s.data_key = "wikitext-2 valid, 64x512";
  for (int l = 0; l < n_layers; ++l) s.layers[l].accumulate(inputs_f32(20 + l, d, 10 + l));
  return s;
}

TEST(CalibStats, SaveLoadRoundTripIsExact) {
  const CalibStats s = sample_stats(3, 11);
  const std::string path = testing::temp_dir() + "/roundtrip.lkvgram";
  s.save(path);
  const CalibStats t = CalibStats::load(path);
  EXPECT_EQ(t.model_key, s.model_key);
  EXPECT_EQ(t.data_key, s.data_key);
  ASSERT_EQ(t.n_layers(), 3);
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ(t.layers[l].tokens(), s.layers[l].tokens());
    EXPECT_EQ(t.layers[l].gram(), s.layers[l].gram());
  }
  t.check_shape(3, 11);
  EXPECT_EQ(code_of([&] { t.check_shape(4, 11); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { t.check_shape(3, 12); }), StatusCode::kInvalidArgument);
}

TEST(CalibStats, MergesLayerByLayer) {
  CalibStats a = sample_stats(2, 6);
  const CalibStats b = sample_stats(2, 6);
  a += b;
  EXPECT_EQ(a.layers[1].tokens(), 2 * b.layers[1].tokens());
  EXPECT_LT(rel_diff(a.layers[1].gram(), 2.0 * b.layers[1].gram()), 1e-15);
  EXPECT_EQ(code_of([&] { a += sample_stats(3, 6); }), StatusCode::kInvalidArgument);
}

TEST(CalibStats, LoadReportsMissingAndDamagedFiles) {
  const std::string dir = testing::temp_dir();
  EXPECT_EQ(code_of([&] { CalibStats::load(dir + "/does-not-exist"); }), StatusCode::kNotFound);

  const std::string path = dir + "/damaged.lkvgram";
  sample_stats(2, 7).save(path);
  const std::vector<char> good = read_bytes(path);
  auto load_variant = [&](std::vector<char> bytes) {
    write_bytes(path, bytes);
    return code_of([&] { CalibStats::load(path); });
  };
  std::vector<char> bad = good;
  bad[0] = 'X';
  EXPECT_EQ(load_variant(bad), StatusCode::kCorruptData) << "magic";
  bad = good;
  bad[8] = 2;  // version field, checked before the checksum
  EXPECT_EQ(load_variant(bad), StatusCode::kUnsupported) << "version";
  bad = good;
  bad[good.size() / 2] ^= 0x10;
  EXPECT_EQ(load_variant(bad), StatusCode::kCorruptData) << "payload bit flip";
  EXPECT_EQ(load_variant(std::vector<char>(good.begin(), good.end() - 40)),
            StatusCode::kCorruptData)
      << "truncated";
  EXPECT_EQ(load_variant(std::vector<char>(good.begin(), good.begin() + 10)),
            StatusCode::kCorruptData)
      << "header only";
  bad = good;
  bad.push_back('\0');
  EXPECT_EQ(load_variant(bad), StatusCode::kCorruptData) << "trailing byte";
  bad = good;
  bad[12] = bad[13] = bad[14] = bad[15] = 0;  // n_layers = 0
  EXPECT_EQ(load_variant(bad), StatusCode::kCorruptData) << "zero layers";
  EXPECT_EQ(load_variant(good), StatusCode::kOk);
}

TEST(CalibStats, LoadRejectsNonFiniteValuesEvenWithAValidChecksum) {
  CalibStats s = sample_stats(1, 3);
  Eigen::MatrixXd g = s.layers[0].gram();
  g(2, 1) = std::numeric_limits<double>::infinity();
  s.layers[0] = LayerGram::from_gram(g, 5);
  const std::string path = testing::temp_dir() + "/inf.lkvgram";
  s.save(path);
  EXPECT_EQ(code_of([&] { CalibStats::load(path); }), StatusCode::kCorruptData);
}

}  // namespace
}  // namespace latentkv
