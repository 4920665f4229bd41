#include "latentkv/pipeline/compress_options.h"

#include <cmath>
#include <utility>

#include "latentkv/status.h"

namespace latentkv {
namespace {

// Name tables for the enums: one place that both printing and parsing read.
template <typename E>
struct Named {
  E value;
  const char* name;
};

template <typename E, size_t N>
const char* name_of(const Named<E> (&table)[N], E value) {
  for (const auto& e : table)
    if (e.value == value) return e.name;
  return "?";
}

template <typename E, size_t N>
E parse_named(const Named<E> (&table)[N], const std::string& name, const char* what) {
  std::string known;
  for (const auto& e : table) {
    if (name == e.name) return e.value;
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  LKV_THROW(StatusCode::kInvalidArgument, "unknown ", what, " '", name, "' (known: ", known, ")");
}

constexpr Named<AllocatorKind> kAllocators[] = {{AllocatorKind::kUniform, "uniform"},
                                                {AllocatorKind::kPalu, "palu"},
                                                {AllocatorKind::kGreedyError, "greedy_error"}};
constexpr Named<ErrorWeight> kErrorWeights[] = {{ErrorWeight::kFisher, "fisher"},
                                                {ErrorWeight::kFisherPerInput, "fisher_per_input"},
                                                {ErrorWeight::kNone, "none"}};
constexpr Named<ValueMethod> kValueMethods[] = {{ValueMethod::kSvd, "svd"},
                                                {ValueMethod::kSequentialAls, "sequential_als"}};
constexpr Named<FoldPolicy> kFoldPolicies[] = {{FoldPolicy::kCostModel, "cost"},
                                               {FoldPolicy::kAlways, "always"},
                                               {FoldPolicy::kNever, "never"}};
constexpr Named<GroupingMethod> kGroupings[] = {{GroupingMethod::kConsecutive, "consecutive"},
                                                {GroupingMethod::kGreedy, "greedy"},
                                                {GroupingMethod::kSearch, "search"},
                                                {GroupingMethod::kBestError, "best_error"}};
constexpr Named<RotationMode> kRotations[] = {
    {RotationMode::kHadamard, "hadamard"},
    {RotationMode::kHadamardOrRandom, "hadamard_or_random"},
    {RotationMode::kRandomOrthogonal, "random"}};

}  // namespace

void BudgetSpec::validate() const {
  LKV_CHECK_ARG(std::isfinite(value), "budget must be finite, got ", value);
  if (kind == Kind::kBytesPerToken) {
    LKV_CHECK_ARG(value > 0, "budget in bytes per token must be > 0, got ", value);
  } else {
    LKV_CHECK_ARG(value > 0 && value <= 1, "budget fraction must be in (0, 1], got ", value);
  }
}

std::string BudgetSpec::describe() const {
  switch (kind) {
    case Kind::kBytesFraction:
      return str_cat(100 * value, " % of fp16 KV bytes");
    case Kind::kBytesPerToken:
      return str_cat(value, " bytes/token");
    case Kind::kRankFraction:
      return str_cat("rank fraction ", value, " (Palu convention)");
  }
  return "?";
}

const char* allocator_name(AllocatorKind a) { return name_of(kAllocators, a); }
AllocatorKind parse_allocator(const std::string& n) {
  return parse_named(kAllocators, n, "allocator");
}
const char* error_weight_name(ErrorWeight w) { return name_of(kErrorWeights, w); }
ErrorWeight parse_error_weight(const std::string& n) {
  return parse_named(kErrorWeights, n, "error weight");
}
const char* value_method_name(ValueMethod m) { return name_of(kValueMethods, m); }
ValueMethod parse_value_method(const std::string& n) {
  return parse_named(kValueMethods, n, "value method");
}
const char* fold_policy_name(FoldPolicy f) { return name_of(kFoldPolicies, f); }
FoldPolicy parse_fold_policy(const std::string& n) {
  return parse_named(kFoldPolicies, n, "fold policy");
}
const char* grouping_method_name(GroupingMethod m) { return name_of(kGroupings, m); }
GroupingMethod parse_grouping_method(const std::string& n) {
  return parse_named(kGroupings, n, "key grouping");
}
const char* rotation_mode_name(RotationMode m) { return name_of(kRotations, m); }
RotationMode parse_rotation_mode(const std::string& n) {
  return parse_named(kRotations, n, "rotation");
}

bool CompressOptions::needs_fisher() const {
  return allocator == AllocatorKind::kPalu ||
         (allocator == AllocatorKind::kGreedyError && error_weight != ErrorWeight::kNone);
}

void CompressOptions::validate() const {
  budget.validate();
  LKV_CHECK_ARG(is_supported_bits(quant.bits), "bits must be 2, 3, 4, 8 or 16, got ", quant.bits);
  LKV_CHECK_ARG(quant.quant_group >= 0, "quant_group must be >= 0, got ", quant.quant_group);
  LKV_CHECK_ARG(quant.residual >= 0, "residual must be >= 0, got ", quant.residual);
  LKV_CHECK_ARG(group_size >= 0, "group_size must be >= 0 (0 = all KV heads), got ", group_size);
  LKV_CHECK_ARG(granule >= 1, "granule must be >= 1, got ", granule);
}

std::vector<std::pair<std::string, std::string>> CompressOptions::describe() const {
  std::vector<std::pair<std::string, std::string>> d = {
      {"preset", preset},
      {"budget", budget.describe()},
      {"bits", std::to_string(quant.bits)},
      {"quant_group",
       quant.quant_group == 0 ? "whole group latent" : std::to_string(quant.quant_group)},
      {"residual", std::to_string(quant.residual)},
      {"group_size", group_size == 0 ? "all KV heads" : std::to_string(group_size)},
      {"granule", std::to_string(granule)},
      {"allocator", allocator_name(allocator)},
      {"factorization", whiten ? "whitened_svd" : "plain_svd"},
      {"key_grouping", grouping_method_name(key_grouping)},
      {"value_method", value_method_name(value_method)},
      {"fold", fold_policy_name(fold)},
  };
  if (needs_fisher()) d.emplace_back("fisher_reduction", fisher_reduction_name(fisher_reduction));
  if (allocator == AllocatorKind::kGreedyError)
    d.emplace_back("error_weight", error_weight_name(error_weight));
  if (quant.bits < 16) d.emplace_back("rotation", rotation_mode_name(rotation));
  return d;
}

std::vector<std::string> preset_names() { return {"palu", "recalkv", "latentkv"}; }

CompressOptions preset_options(const std::string& name) {
  CompressOptions o;
  o.preset = name;
  if (name == "palu") {
    o.allocator = AllocatorKind::kPalu;
    o.fisher_reduction = FisherReduction::kRms;
    o.key_grouping = GroupingMethod::kConsecutive;
    o.value_method = ValueMethod::kSvd;
  } else if (name == "recalkv") {
    o.allocator = AllocatorKind::kPalu;
    o.fisher_reduction = FisherReduction::kRms;
    o.key_grouping = GroupingMethod::kBestError;
    o.value_method = ValueMethod::kSequentialAls;
  } else if (name == "latentkv") {
    o.allocator = AllocatorKind::kGreedyError;
    o.fisher_reduction = FisherReduction::kMeanSquare;
    o.error_weight = ErrorWeight::kFisherPerInput;
    o.key_grouping = GroupingMethod::kConsecutive;
    o.value_method = ValueMethod::kSvd;
  } else {
    std::string known;
    for (const std::string& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    LKV_THROW(StatusCode::kInvalidArgument, "unknown preset '", name, "' (known: ", known, ")");
  }
  return o;
}

}  // namespace latentkv
