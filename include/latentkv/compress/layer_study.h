// Per-layer accuracy study of the decomposition choices (issue 3 "must show" table): relative
// output error of K and V on the calibration statistics for plain SVD, whitened SVD, consecutive
// vs similarity grouping, with and without ALS, at several rank fractions.
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "latentkv/compress/head_grouping.h"
#include "latentkv/compress/value_calibration.h"
#include "latentkv/model/llama.h"

namespace latentkv {

struct LayerStudyOptions {
  /// KV heads per group; 0 means num_kv_heads (joint). Similarity grouping only changes anything
  /// when 1 < group_size < num_kv_heads.
  int group_size = 0;
  /// Rank per group = round(fraction · group_size · head_dim), clamped to [1, min(width, d_model)].
  std::vector<double> rank_fractions = {0.5, 0.25};
  GroupingMethod similarity_method = GroupingMethod::kBestError;
  AlsOptions als;
};

struct LayerStudyRow {
  std::string projection;  ///< "k" or "v"
  double rank_fraction = 0.0;
  int rank = 0;                 ///< per group
  std::string factorization;    ///< "plain_svd" or "whitened_svd"
  std::string grouping;         ///< "consecutive" or "similarity"
  bool als = false;             ///< refined by ALS on the target
  double relative_error = 0.0;  ///< √(f / ‖X Wᵀ‖²_F) on the target (see value_calibration.h)
};

/// Rows for W_k and W_v ([num_kv_heads·head_dim, d_model] each) of one layer: for each projection
/// and rank fraction, plain SVD (consecutive), whitened SVD (consecutive, similarity), whitened SVD
/// + ALS (consecutive, similarity). The SVDs are whitened with `gram` (Γ of the layer's inputs);
/// errors and ALS use `target` (CalibrationTarget::same(gram) unless sequential statistics are
/// given). Throws Error(kInvalidArgument) on inconsistent shapes or group_size.
std::vector<LayerStudyRow> layer_study(const MatrixRM& w_k, const MatrixRM& w_v,
                                       const Eigen::MatrixXd& gram, int num_kv_heads, int head_dim,
                                       const CalibrationTarget& target,
                                       const LayerStudyOptions& options = {});

}  // namespace latentkv
