// Presets, option names and option validation of the compression pipeline.
#include "latentkv/pipeline/compress_options.h"

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace latentkv {
namespace {

TEST(CompressOptions, PresetsSetTheirMethods) {
  EXPECT_EQ(preset_names(), (std::vector<std::string>{"palu", "recalkv", "latentkv"}));
  const CompressOptions palu = preset_options("palu");
  EXPECT_EQ(palu.allocator, AllocatorKind::kPalu);
  EXPECT_EQ(palu.fisher_reduction, FisherReduction::kRms);
  EXPECT_EQ(palu.value_method, ValueMethod::kSvd);
  EXPECT_TRUE(palu.whiten);
  const CompressOptions recalkv = preset_options("recalkv");
  EXPECT_EQ(recalkv.key_grouping, GroupingMethod::kBestError);
  EXPECT_EQ(recalkv.value_method, ValueMethod::kSequentialAls);
  const CompressOptions ours = preset_options("latentkv");
  EXPECT_EQ(ours.allocator, AllocatorKind::kGreedyError);
  EXPECT_EQ(ours.error_weight, ErrorWeight::kFisherPerInput);
  for (const std::string& name : preset_names()) {
    const CompressOptions o = preset_options(name);
    EXPECT_EQ(o.preset, name);
    EXPECT_NO_THROW(o.validate());
    EXPECT_TRUE(o.needs_fisher()) << name;
  }
}

TEST(CompressOptions, UnknownPresetListsTheKnownOnes) {
  EXPECT_LKV_ERROR(preset_options("kivi"), StatusCode::kInvalidArgument,
                   "unknown preset 'kivi' (known: palu, recalkv, latentkv)");
}

TEST(CompressOptions, NamesRoundTripAndUnknownNamesAreRejected) {
  for (AllocatorKind a :
       {AllocatorKind::kUniform, AllocatorKind::kPalu, AllocatorKind::kGreedyError})
    EXPECT_EQ(parse_allocator(allocator_name(a)), a);
  for (ErrorWeight w : {ErrorWeight::kFisher, ErrorWeight::kFisherPerInput, ErrorWeight::kNone})
    EXPECT_EQ(parse_error_weight(error_weight_name(w)), w);
  for (FoldPolicy f : {FoldPolicy::kCostModel, FoldPolicy::kAlways, FoldPolicy::kNever})
    EXPECT_EQ(parse_fold_policy(fold_policy_name(f)), f);
  for (GroupingMethod g : {GroupingMethod::kConsecutive, GroupingMethod::kGreedy,
                           GroupingMethod::kSearch, GroupingMethod::kBestError})
    EXPECT_EQ(parse_grouping_method(grouping_method_name(g)), g);
  EXPECT_EQ(parse_value_method("sequential_als"), ValueMethod::kSequentialAls);
  EXPECT_EQ(parse_rotation_mode("random"), RotationMode::kRandomOrthogonal);
  EXPECT_LKV_ERROR(parse_allocator("fisher"), StatusCode::kInvalidArgument,
                   "unknown allocator 'fisher' (known: uniform, palu, greedy_error)");
  EXPECT_LKV_ERROR(parse_error_weight(""), StatusCode::kInvalidArgument, "unknown error weight");
  EXPECT_LKV_ERROR(parse_fold_policy("maybe"), StatusCode::kInvalidArgument, "fold policy");
  EXPECT_LKV_ERROR(parse_rotation_mode("dct"), StatusCode::kInvalidArgument, "rotation");
}

TEST(CompressOptions, NeedsFisherOnlyWhenAScoreIsRead) {
  CompressOptions o = preset_options("latentkv");
  o.allocator = AllocatorKind::kUniform;
  EXPECT_FALSE(o.needs_fisher());
  o.allocator = AllocatorKind::kGreedyError;
  o.error_weight = ErrorWeight::kNone;
  EXPECT_FALSE(o.needs_fisher());
  o.error_weight = ErrorWeight::kFisherPerInput;
  EXPECT_TRUE(o.needs_fisher());
}

TEST(CompressOptions, ValidationNamesTheBadField) {
  auto with = [](auto change) {
    CompressOptions o = preset_options("latentkv");
    change(o);
    return o;
  };
  EXPECT_LKV_ERROR(with([](auto& o) { o.budget.value = 0; }).validate(),
                   StatusCode::kInvalidArgument, "budget fraction must be in (0, 1]");
  EXPECT_LKV_ERROR(with([](auto& o) { o.budget.value = 1.5; }).validate(),
                   StatusCode::kInvalidArgument, "got 1.5");
  EXPECT_LKV_ERROR(with([](auto& o) {
                     o.budget = {BudgetSpec::Kind::kBytesPerToken, -3};
                   }).validate(),
                   StatusCode::kInvalidArgument, "bytes per token must be > 0");
  EXPECT_LKV_ERROR(with([](auto& o) { o.budget.value = std::nan(""); }).validate(),
                   StatusCode::kInvalidArgument, "finite");
  EXPECT_LKV_ERROR(with([](auto& o) { o.quant.bits = 5; }).validate(), StatusCode::kInvalidArgument,
                   "bits must be 2, 3, 4, 8 or 16, got 5");
  EXPECT_LKV_ERROR(with([](auto& o) { o.quant.residual = -1; }).validate(),
                   StatusCode::kInvalidArgument, "residual");
  EXPECT_LKV_ERROR(with([](auto& o) { o.group_size = -2; }).validate(),
                   StatusCode::kInvalidArgument, "group_size");
  EXPECT_LKV_ERROR(with([](auto& o) { o.granule = 0; }).validate(), StatusCode::kInvalidArgument,
                   "granule");
}

TEST(CompressOptions, DescribeRecordsTheMethod) {
  CompressOptions o = preset_options("palu");
  o.quant.bits = 3;
  o.budget = {BudgetSpec::Kind::kRankFraction, 0.5};
  const auto d = o.describe();
  auto value = [&](const std::string& k) {
    for (const auto& [key, v] : d)
      if (key == k) return v;
    return std::string("<absent>");
  };
  EXPECT_EQ(value("preset"), "palu");
  EXPECT_EQ(value("allocator"), "palu");
  EXPECT_EQ(value("bits"), "3");
  EXPECT_EQ(value("fisher_reduction"), "rms");
  EXPECT_EQ(value("rotation"), "hadamard_or_random");
  EXPECT_EQ(value("error_weight"), "<absent>");  // only greedy_error reads it
  EXPECT_NE(value("budget").find("rank fraction 0.5"), std::string::npos);
}

}  // namespace
}  // namespace latentkv
