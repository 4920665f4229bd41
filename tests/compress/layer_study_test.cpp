#include "latentkv/compress/layer_study.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>

#include "compress/compress_test_util.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_gram;
using testing::random_weight;

using Key = std::tuple<std::string, double, std::string, std::string, bool>;

std::map<Key, double> by_key(const std::vector<LayerStudyRow>& rows) {
  std::map<Key, double> m;
  for (const LayerStudyRow& r : rows)
    m[{r.projection, r.rank_fraction, r.factorization, r.grouping, r.als}] = r.relative_error;
  return m;
}

TEST(LayerStudy, ProducesTheTableRowsOnRandomData) {
  const int heads = 4, hd = 16, d_model = 72;
  const MatrixRM w_k = random_weight(heads * hd, d_model, 1);
  const MatrixRM w_v = random_weight(heads * hd, d_model, 2);
  const Eigen::MatrixXd gram = random_gram(500, d_model, 3);
  LayerStudyOptions opts;
  opts.group_size = 2;
  const std::vector<LayerStudyRow> rows =
      layer_study(w_k, w_v, gram, heads, hd, CalibrationTarget::same(gram), opts);
  ASSERT_EQ(rows.size(), 2u * 2u * 5u);
  for (const LayerStudyRow& r : rows) {
    EXPECT_EQ(r.rank, r.rank_fraction == 0.5 ? 16 : 8);
    EXPECT_GT(r.relative_error, 0.0);
    EXPECT_LT(r.relative_error, 1.0);
  }
  const std::map<Key, double> e = by_key(rows);
  for (const std::string proj : {"k", "v"})
    for (double frac : {0.5, 0.25}) {
      const double plain = e.at({proj, frac, "plain_svd", "consecutive", false});
      const double white = e.at({proj, frac, "whitened_svd", "consecutive", false});
      EXPECT_LT(white, plain) << proj << " " << frac;
      // Same statistics: ALS cannot improve the whitened SVD.
      EXPECT_NEAR(e.at({proj, frac, "whitened_svd", "consecutive", true}), white, 1e-7);
      EXPECT_NEAR(e.at({proj, frac, "whitened_svd", "similarity", true}),
                  e.at({proj, frac, "whitened_svd", "similarity", false}), 1e-7);
    }
  // Less rank, more error.
  EXPECT_GT(e.at({"k", 0.25, "whitened_svd", "consecutive", false}),
            e.at({"k", 0.5, "whitened_svd", "consecutive", false}));
}

TEST(LayerStudy, JointGroupingMakesSimilarityIrrelevant) {
  // SmolLM2-like: 3 KV heads, so the only group sizes are 1 and 3 and grouping cannot change.
  const int heads = 3, hd = 16, d_model = 60;
  const MatrixRM w = random_weight(heads * hd, d_model, 4);
  const Eigen::MatrixXd gram = random_gram(300, d_model, 5);
  const std::vector<LayerStudyRow> rows =
      layer_study(w, w, gram, heads, hd, CalibrationTarget::same(gram));
  const std::map<Key, double> e = by_key(rows);
  EXPECT_EQ(e.at({"k", 0.5, "whitened_svd", "similarity", false}),
            e.at({"k", 0.5, "whitened_svd", "consecutive", false}));
}

TEST(LayerStudy, RejectsBadInput) {
  const MatrixRM w = random_weight(32, 40, 6);
  const Eigen::MatrixXd gram = random_gram(200, 40, 7);
  const CalibrationTarget t = CalibrationTarget::same(gram);
  LayerStudyOptions opts;
  opts.rank_fractions = {0.0};
  EXPECT_EQ(code_of([&] { layer_study(w, w, gram, 2, 16, t, opts); }),
            StatusCode::kInvalidArgument);
  opts.rank_fractions = {0.5};
  opts.group_size = 3;
  EXPECT_EQ(code_of([&] { layer_study(w, w, gram, 2, 16, t, opts); }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { layer_study(w, random_weight(32, 41, 8), gram, 2, 16, t); }),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace latentkv
