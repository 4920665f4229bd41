#include "latentkv/compress/head_grouping.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "compress/compress_test_util.h"
#include "latentkv/compress/group_decompose.h"
#include "latentkv/factors.h"

namespace latentkv {
namespace {

using testing::code_of;
using testing::random_gram;
using testing::random_matrix;
using testing::random_weight;

// Symmetric similarity in [0, 1] with ones on the diagonal.
Eigen::MatrixXd random_similarity(int n, uint64_t seed) {
  const Eigen::MatrixXd r = random_matrix(n, n, seed).cwiseAbs();
  Eigen::MatrixXd s = (r + r.transpose()) / (2 * r.maxCoeff());
  s.diagonal().setOnes();
  return s;
}

// Every head appears once and each group has group_size slots in ascending order.
void expect_canonical_partition(const std::vector<int>& heads, int n, int group_size) {
  ASSERT_EQ(static_cast<int>(heads.size()), n);
  std::vector<int> sorted = heads;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, consecutive_group_heads(n));
  for (int g = 0; g < n / group_size; ++g) {
    EXPECT_TRUE(
        std::is_sorted(heads.begin() + g * group_size, heads.begin() + (g + 1) * group_size));
    if (g > 0) {
      EXPECT_LT(heads[(g - 1) * group_size], heads[g * group_size]);
    }
  }
}

// KV heads drawn from `clusters` prototype heads plus small noise, in shuffled order; returns the
// weight and each head's cluster.
MatrixRM clustered_keys(int heads, int clusters, int head_dim, int d_model, uint64_t seed,
                        std::vector<int>* cluster_of) {
  std::vector<int> order(heads);
  for (int h = 0; h < heads; ++h) order[h] = h % clusters;
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  *cluster_of = order;
  MatrixRM w(heads * head_dim, d_model);
  for (int h = 0; h < heads; ++h) {
    const Eigen::MatrixXd proto = random_matrix(head_dim, d_model, seed + 10 + order[h]);
    // An orthogonal mix of the prototype's rows keeps CKA at 1 up to the noise.
    const Eigen::MatrixXd q =
        random_matrix(head_dim, head_dim, seed + 100 + h).householderQr().householderQ();
    w.middleRows(h * head_dim, head_dim) =
        (q * proto + 0.2 * random_matrix(head_dim, d_model, seed + 200 + h)).cast<float>();
  }
  return w;
}

TEST(HeadSimilarity, CkaIsSymmetricBoundedAndRotationInvariant) {
  const int heads = 4, hd = 8, d_model = 40;
  MatrixRM w = random_weight(heads * hd, d_model, 1);
  // Head 3 = an orthogonal mix of head 0's rows, scaled: CKA(0, 3) must be 1.
  const Eigen::MatrixXd q = random_matrix(hd, hd, 2).householderQr().householderQ();
  w.middleRows(3 * hd, hd) = (3.0 * q * w.topRows(hd).cast<double>()).cast<float>();
  const Whitening wh = whiten(random_gram(300, d_model, 3));
  for (const Whitening* white : {static_cast<const Whitening*>(nullptr), &wh}) {
    const Eigen::MatrixXd cka = head_similarity_cka(w, heads, hd, white);
    EXPECT_LT((cka - cka.transpose()).norm(), 1e-15);
    EXPECT_EQ(cka.diagonal(), Eigen::VectorXd::Ones(heads));
    EXPECT_GE(cka.minCoeff(), 0.0);
    EXPECT_LE(cka.maxCoeff(), 1.0 + 1e-12);
    EXPECT_NEAR(cka(0, 3), 1.0, 1e-6);
    EXPECT_LT(cka(1, 2), 0.9);
  }
  EXPECT_EQ(code_of([&] { head_similarity_cka(w, 5, hd, nullptr); }), StatusCode::kInvalidArgument);
  const Whitening small = whiten(random_gram(300, d_model - 1, 4));
  EXPECT_EQ(code_of([&] { head_similarity_cka(w, heads, hd, &small); }),
            StatusCode::kInvalidArgument);
}

TEST(HeadGrouping, ResultsArePartitionsIntoEqualGroups) {
  for (int n : {2, 4, 6, 8, 12, 24}) {
    const Eigen::MatrixXd sim = random_similarity(n, 10 + n);
    for (int gs = 1; gs <= n; ++gs) {
      if (n % gs) continue;
      SCOPED_TRACE(::testing::Message() << n << " heads, groups of " << gs);
      expect_canonical_partition(group_heads_greedy(sim, gs), n, gs);
      expect_canonical_partition(group_heads_search(sim, gs), n, gs);
    }
  }
}

TEST(HeadGrouping, TrivialGroupSizesGiveTheIdentity) {
  const Eigen::MatrixXd sim = random_similarity(6, 3);
  for (int gs : {1, 6}) {
    EXPECT_EQ(group_heads_greedy(sim, gs), consecutive_group_heads(6));
    EXPECT_EQ(group_heads_search(sim, gs), consecutive_group_heads(6));
  }
}

TEST(HeadGrouping, ExhaustiveSearchIsOptimal) {
  const int n = 8;
  for (int gs : {2, 4}) {
    const Eigen::MatrixXd sim = random_similarity(n, 20 + gs);
    const double best = grouping_objective(sim, group_heads_search(sim, gs), gs);
    EXPECT_GE(best, grouping_objective(sim, group_heads_greedy(sim, gs), gs));
    // No permutation scores higher (every ordering maps to some partition).
    std::vector<int> perm = consecutive_group_heads(n);
    do {
      ASSERT_LE(grouping_objective(sim, perm, gs), best + 1e-12);
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
}

TEST(HeadGrouping, SwapRefinementBeatsGreedyAndIsLocallyOptimal) {
  const int n = 32, gs = 4;  // ~2.4e15 partitions: the swap path
  ASSERT_GT(count_partitions(n, gs), GroupingSearchOptions{}.max_exhaustive);
  const Eigen::MatrixXd sim = random_similarity(n, 30);
  const std::vector<int> found = group_heads_search(sim, gs);
  expect_canonical_partition(found, n, gs);
  const double obj = grouping_objective(sim, found, gs);
  EXPECT_GE(obj, grouping_objective(sim, group_heads_greedy(sim, gs), gs));
  EXPECT_GE(obj, grouping_objective(sim, consecutive_group_heads(n), gs));
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      if (i / gs == j / gs) continue;
      std::vector<int> swapped = found;
      std::swap(swapped[i], swapped[j]);
      ASSERT_LE(grouping_objective(sim, swapped, gs), obj + 1e-12);
    }
}

TEST(HeadGrouping, RecoversPlantedClusters) {
  for (auto [heads, clusters] : {std::pair{8, 4}, std::pair{8, 2}, std::pair{32, 8}}) {
    const int gs = heads / clusters;
    std::vector<int> cluster_of;
    const MatrixRM w = clustered_keys(heads, clusters, 8, 48, 40 + heads + clusters, &cluster_of);
    const Whitening wh = whiten(random_gram(400, 48, 5));
    for (GroupingMethod method : {GroupingMethod::kGreedy, GroupingMethod::kSearch}) {
      const std::vector<int> groups = similarity_group_heads(w, heads, 8, gs, &wh, method);
      for (int g = 0; g < clusters; ++g)
        for (int s = 1; s < gs; ++s)
          EXPECT_EQ(cluster_of[groups[g * gs + s]], cluster_of[groups[g * gs]])
              << heads << " heads, method " << static_cast<int>(method);
    }
  }
}

TEST(HeadGrouping, BestErrorIsNeverWorseThanItsCandidates) {
  const int heads = 8, hd = 8, d_model = 40, gs = 2, rank = 5;
  const MatrixRM w = random_weight(heads * hd, d_model, 60);
  const Whitening wh = whiten(random_gram(300, d_model, 61));
  auto error = [&](GroupingMethod m) {
    return grouped_truncation_error(
        w, heads, hd, gs, similarity_group_heads(w, heads, hd, gs, &wh, m, rank), rank, &wh);
  };
  const double best = error(GroupingMethod::kBestError);
  for (GroupingMethod m :
       {GroupingMethod::kConsecutive, GroupingMethod::kGreedy, GroupingMethod::kSearch})
    EXPECT_LE(best, error(m));
  // The eigenvalue shortcut equals the error of the actual decomposition.
  const std::vector<int> groups = {0, 5, 1, 2, 3, 7, 4, 6};
  const GroupSpec spec{heads, hd, gs, {rank}, groups};
  EXPECT_NEAR(grouped_truncation_error(w, heads, hd, gs, groups, rank, &wh),
              decompose_projection(w, Eigen::VectorXf(), spec, &wh).relative_error(), 1e-9);
  EXPECT_EQ(code_of([&] { similarity_group_heads(w, heads, hd, gs, &wh); }),
            StatusCode::kInvalidArgument);  // kBestError needs a rank
}

TEST(HeadGrouping, CountsPartitions) {
  EXPECT_NEAR(count_partitions(8, 2), 105, 1e-6);
  EXPECT_NEAR(count_partitions(8, 4), 35, 1e-6);
  EXPECT_NEAR(count_partitions(16, 4), 2627625, 1e-3);
  EXPECT_NEAR(count_partitions(6, 6), 1, 1e-9);
}

TEST(HeadGrouping, RejectsBadInput) {
  const Eigen::MatrixXd sim = random_similarity(6, 50);
  EXPECT_EQ(code_of([&] { group_heads_greedy(sim, 4); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { group_heads_search(sim, 0); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { group_heads_search(Eigen::MatrixXd::Ones(3, 4), 1); }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { grouping_objective(sim, {0, 1, 2}, 3); }), StatusCode::kInvalidArgument);
  const MatrixRM w = random_weight(6 * 4, 16, 51);
  EXPECT_EQ(code_of([&] { similarity_group_heads(w, 6, 4, 4, nullptr, GroupingMethod::kSearch); }),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace latentkv
