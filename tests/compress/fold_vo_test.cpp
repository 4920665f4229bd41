#include "latentkv/compress/fold_vo.h"

#include <gtest/gtest.h>

#include "compress/compress_test_util.h"
#include "latentkv/compress/group_decompose.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_matrix;
using testing::random_weight;

struct Case {
  int num_qo_heads, num_kv_heads, head_dim, group_size;
  bool biases;
};

ProjectionFactors value_factors(const Case& c, int d_model, uint64_t seed) {
  const MatrixRM w_v = random_weight(int64_t{c.num_kv_heads} * c.head_dim, d_model, seed);
  GroupSpec spec{c.num_kv_heads, c.head_dim, c.group_size, {}, {}};
  for (int g = 0; g < spec.num_groups(); ++g) spec.ranks.push_back(7 + 5 * g);  // uneven ranks
  spec.group_heads = consecutive_group_heads(c.num_kv_heads);
  std::rotate(spec.group_heads.begin(), spec.group_heads.begin() + 1, spec.group_heads.end());
  const Eigen::VectorXf bias =
      c.biases ? Eigen::VectorXf(random_matrix(w_v.rows(), 1, seed + 1).cast<float>())
               : Eigen::VectorXf();
  return decompose_projection(w_v, bias, spec, nullptr).factors;
}

class FoldIdentity : public ::testing::TestWithParam<Case> {};

// Σ_h W'_{o,h} (p_h H_{v,g(h)}) + bias' equals W_o · concat_h(p_h V_{kv(h)}) + b_o, where
// V_kv = H_g B_g[slot]ᵀ + bias_v[kv] are the reconstructed values.
TEST_P(FoldIdentity, LeavesTheAttentionOutputUnchanged) {
  const Case c = GetParam();
  const int d_model = 96, tokens = 13;
  const int hd = c.head_dim, gqa = c.num_qo_heads / c.num_kv_heads;
  const ProjectionFactors v = value_factors(c, d_model, 1);
  const MatrixRM w_o = random_weight(d_model, int64_t{c.num_qo_heads} * hd, 2);
  const Eigen::VectorXf b_o =
      c.biases ? Eigen::VectorXf(random_matrix(d_model, 1, 3).cast<float>()) : Eigen::VectorXf();
  const FoldedOutputProjection folded = fold_value_into_output(v, w_o, b_o, c.num_qo_heads);

  std::vector<Eigen::MatrixXd> latents;  // H_g, [tokens, r_g]
  for (int g = 0; g < v.num_groups(); ++g)
    latents.push_back(random_matrix(tokens, v.ranks[g], 10 + g));
  Eigen::VectorXd concat_o(c.num_qo_heads * hd), concat_z(folded.width());
  for (int h = 0; h < c.num_qo_heads; ++h) {
    Eigen::VectorXd p = random_matrix(tokens, 1, 100 + h).array().exp();
    p /= p.sum();
    const int kv = h / gqa;
    const auto [g, slot] = v.head_location(kv);
    const Eigen::Map<const MatrixRM> b_g(v.b.data() + v.b_offset(g), v.group_size * hd, v.ranks[g]);
    Eigen::MatrixXd values = latents[g] * b_g.middleRows(slot * hd, hd).cast<double>().transpose();
    if (!v.bias.empty())
      values.rowwise() +=
          Eigen::Map<const Eigen::VectorXf>(v.bias.data() + kv * hd, hd).cast<double>().transpose();
    concat_o.segment(h * hd, hd) = values.transpose() * p;
    ASSERT_EQ(folded.head_offsets[h + 1] - folded.head_offsets[h], v.ranks[g]);
    concat_z.segment(folded.head_offsets[h], v.ranks[g]) = latents[g].transpose() * p;
  }
  Eigen::VectorXd expect = w_o.cast<double>() * concat_o;
  if (b_o.size()) expect += b_o.cast<double>();
  Eigen::VectorXd got =
      Eigen::Map<const MatrixRM>(folded.w.data(), d_model, folded.width()).cast<double>() *
      concat_z;
  ASSERT_EQ(folded.bias.empty(), !c.biases);
  if (!folded.bias.empty())
    got += Eigen::Map<const Eigen::VectorXf>(folded.bias.data(), d_model).cast<double>();
  EXPECT_LT((got - expect).norm(), 1e-5 * expect.norm());
}

INSTANTIATE_TEST_SUITE_P(GqaRatios, FoldIdentity,
                         ::testing::Values(Case{4, 4, 64, 2, true},     // MHA
                                           Case{9, 3, 64, 3, false},    // ratio 3 (SmolLM2), joint
                                           Case{9, 3, 64, 1, true},     // ratio 3, per head
                                           Case{8, 2, 128, 1, true},    // ratio 4
                                           Case{16, 2, 64, 2, false},   // ratio 8
                                           Case{32, 8, 64, 4, true}));  // Llama-3 style 32/8

TEST(OutputPathCost, MatchesTheFormulasAndPicksTheCheaperPath) {
  // Llama-2-7B shape: d_model 4096, 32 heads of 128, groups of 4 (8 groups).
  ProjectionFactors v;
  v.d_model = 4096;
  v.head_dim = 128;
  v.num_kv_heads = 32;
  v.group_size = 4;
  v.group_heads = consecutive_group_heads(32);
  auto with_rank = [&](int r) {
    v.ranks.assign(8, r);
    v.a.assign(size_t{8} * r * 4096, 0.0f);
    v.b.assign(size_t{8} * 512 * r, 0.0f);
    return v;
  };
  DecodeCostParams params;
  params.context_len = 4096;
  params.batch_size = 2;
  params.weight_bytes = 2;
  params.value_cache_bytes_per_token = 8 * 256 * 2;
  const OutputPathCosts big = output_path_costs(with_rank(256), 32, params);
  EXPECT_DOUBLE_EQ(big.folded.weight_bytes, 4096.0 * 32 * 256 * 2);
  EXPECT_DOUBLE_EQ(big.unfolded.weight_bytes, (8.0 * 512 * 256 + 4096.0 * 4096) * 2);
  EXPECT_DOUBLE_EQ(big.folded.cache_bytes, 2.0 * 4096 * 8 * 256 * 2);
  EXPECT_DOUBLE_EQ(big.unfolded.cache_bytes, big.folded.cache_bytes);
  EXPECT_DOUBLE_EQ(big.folded.flops, 2.0 * 2 * 4096 * 32 * 256);
  EXPECT_DOUBLE_EQ(big.unfolded.flops, 2.0 * 2 * (128.0 * 32 * 256 + 4096.0 * 4096));
  EXPECT_FALSE(big.prefer_folded());  // 32·256 folded columns > 4096 columns of W_o

  const OutputPathCosts small = output_path_costs(with_rank(64), 32, params);
  EXPECT_TRUE(small.prefer_folded());  // 32·64 = 2048 < 4096 + B_v
}

TEST(Fold, RejectsBadInput) {
  const Case c{6, 3, 64, 3, true};
  const ProjectionFactors v = value_factors(c, 80, 4);
  const MatrixRM w_o = random_weight(80, 6 * 64, 5);
  EXPECT_EQ(code_of([&] { fold_value_into_output(v, w_o, Eigen::VectorXf(), 6); }),
            StatusCode::kOk);
  EXPECT_EQ(code_of([&] { fold_value_into_output(v, w_o, Eigen::VectorXf(), 4); }),
            StatusCode::kInvalidArgument)
      << "4 query heads for 3 KV heads";
  EXPECT_EQ(code_of([&] {
              fold_value_into_output(v, random_weight(80, 5 * 64, 6), Eigen::VectorXf(), 6);
            }),
            StatusCode::kInvalidArgument)
      << "W_o width";
  EXPECT_EQ(code_of([&] { fold_value_into_output(v, w_o, Eigen::VectorXf::Zero(79), 6); }),
            StatusCode::kInvalidArgument)
      << "o_proj bias size";
  ProjectionFactors broken = v;
  broken.b.pop_back();
  EXPECT_EQ(code_of([&] { fold_value_into_output(broken, w_o, Eigen::VectorXf(), 6); }),
            StatusCode::kInvalidArgument)
      << "inconsistent factors";
  DecodeCostParams params;
  params.batch_size = 0;
  EXPECT_EQ(code_of([&] { output_path_costs(v, 6, params); }), StatusCode::kInvalidArgument);
  params.batch_size = 1;
  params.value_cache_bytes_per_token = -1;
  EXPECT_EQ(code_of([&] { output_path_costs(v, 6, params); }), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace latentkv
