#include "latentkv/pipeline/allocate.h"

#include "latentkv/status.h"

namespace latentkv {

AllocationSpec allocation_spec(const CompressOptions& options, const KvLayout& layout) {
  options.budget.validate();
  AllocationSpec spec;
  spec.layout = layout;
  spec.granule = options.granule;
  spec.quant = options.quant;
  switch (options.budget.kind) {
    case BudgetSpec::Kind::kBytesFraction:
      spec.budget = KvBudget::fraction(options.budget.value);
      break;
    case BudgetSpec::Kind::kBytesPerToken:
      spec.budget = KvBudget::bytes_per_token(options.budget.value);
      break;
    case BudgetSpec::Kind::kRankFraction:
      spec.quant = QuantConfig{};  // fp16: bytes are proportional to the total rank
      spec.budget = KvBudget::fraction(options.budget.value);
      break;
  }
  spec.validate();
  return spec;
}

std::vector<double> group_error_weights(const CompressOptions& options, const KvLayout& layout,
                                        const AllocationInputs& inputs) {
  const int groups = layout.num_groups();
  std::vector<double> weights(static_cast<size_t>(layout.num_units()) * groups, 1.0);
  if (options.error_weight == ErrorWeight::kNone) return weights;
  LKV_CHECK_ARG(inputs.fisher != nullptr, "error weight '", error_weight_name(options.error_weight),
                "' needs Fisher scores");
  const FisherScores& f = *inputs.fisher;
  LKV_CHECK_ARG(f.n_layers() == layout.n_layers, "Fisher scores cover ", f.n_layers(),
                " layers, the model has ", layout.n_layers);
  LKV_CHECK_ARG(static_cast<int>(inputs.group_heads.size()) == layout.num_units(),
                "allocation inputs: group_heads for ", inputs.group_heads.size(),
                " units, expected ", layout.num_units());
  // Per-group scores only differ from the projection score when a group is not all KV heads.
  const bool per_group = f.has_head_scores() && groups > 1;
  for (int u = 0; u < layout.num_units(); ++u) {
    const int layer = u / 2;
    const bool value = u % 2 == 1;
    double input_scale = 1.0;
    if (options.error_weight == ErrorWeight::kFisherPerInput) {
      LKV_CHECK_ARG(inputs.stats != nullptr && inputs.stats->n_layers() == layout.n_layers,
                    "error weight 'fisher_per_input' needs the calibration statistics");
      const LayerGram& g = inputs.stats->layers[layer];
      LKV_CHECK_ARG(g.tokens() > 0, "calibration statistics of layer ", layer, " hold no tokens");
      input_scale = g.gram().trace() / (static_cast<double>(g.tokens()) * g.d_model());
      LKV_CHECK_ARG(input_scale > 0, "layer ", layer, " has all-zero calibration inputs");
    }
    for (int g = 0; g < groups; ++g) {
      double score = value ? f.value[layer] : f.key[layer];
      if (per_group) {
        const std::vector<int>& heads = inputs.group_heads[u];
        const std::vector<int> members(heads.begin() + g * layout.group_size,
                                       heads.begin() + (g + 1) * layout.group_size);
        score = f.group_score(layer, value, members);
      }
      weights[static_cast<size_t>(u) * groups + g] = score / input_scale;
    }
  }
  return weights;
}

RankAllocation allocate_ranks(const CompressOptions& options, const KvLayout& layout,
                              const AllocationInputs& inputs) {
  const AllocationSpec spec = allocation_spec(options, layout);
  switch (options.allocator) {
    case AllocatorKind::kUniform:
      return allocate_uniform(spec);
    case AllocatorKind::kPalu:
      LKV_CHECK_ARG(inputs.fisher != nullptr, "the palu allocator needs Fisher scores");
      LKV_CHECK_ARG(inputs.fisher->n_layers() == layout.n_layers, "Fisher scores cover ",
                    inputs.fisher->n_layers(), " layers, the model has ", layout.n_layers);
      return allocate_palu(spec, inputs.fisher->unit_scores());
    case AllocatorKind::kGreedyError: {
      const size_t n = static_cast<size_t>(layout.num_units()) * layout.num_groups();
      LKV_CHECK_ARG(inputs.spectra.size() == n, "greedy_error: spectra for ", inputs.spectra.size(),
                    " groups, expected ", n);
      const std::vector<double> weights = group_error_weights(options, layout, inputs);
      std::vector<GroupErrorProfile> profiles(n);
      for (size_t i = 0; i < n; ++i) {
        profiles[i].weight = weights[i];
        profiles[i].drops =
            granule_error_drops(inputs.spectra[i], layout.group_capacity(), spec.granule);
      }
      return allocate_greedy_error(spec, profiles);
    }
  }
  LKV_THROW(StatusCode::kInternal, "unknown allocator");
}

}  // namespace latentkv
