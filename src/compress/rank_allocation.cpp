#include "latentkv/compress/rank_allocation.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <tuple>

#include "latentkv/status.h"

namespace latentkv {

namespace {

// Every group at one granule: the least any allocation can cost.
int64_t minimum_bytes(const AllocationSpec& spec) {
  const int64_t groups = int64_t{spec.layout.num_units()} * spec.layout.num_groups();
  return groups * latent_bytes_per_token(spec.granule, spec.quant);
}

// Validates the spec, resolves the budget and checks that the minimum allocation fits.
int64_t checked_budget(const AllocationSpec& spec) {
  spec.validate();
  const int64_t budget = spec.budget.resolve(spec.layout);
  const int64_t min_bytes = minimum_bytes(spec);
  LKV_CHECK_ARG(budget >= min_bytes, "KV budget of ", budget,
                " bytes/token is below the minimum of ", min_bytes,
                " bytes/token (every group at rank ", spec.granule, ", ", spec.quant.bits,
                "-bit latents)");
  return budget;
}

RankAllocation make_result(const AllocationSpec& spec, const char* method, std::vector<int> ranks,
                           int64_t budget) {
  RankAllocation a;
  a.layout = spec.layout;
  a.method = method;
  a.ranks = std::move(ranks);
  a.bytes_per_token = kv_bytes_per_token(a.ranks, spec.quant);
  a.budget_bytes_per_token = budget;
  a.fp16_bytes_per_token = spec.layout.fp16_bytes_per_token();
  a.rank_target = a.total_rank();
  if (a.bytes_per_token > budget) {
    LKV_THROW(StatusCode::kInternal, method, " allocation exceeds its budget");
  }
  return a;
}

// Python's round() of r / granule (ties to even), at least 1, times granule.
int round_to_granule(int r, int granule) {
  int q = r / granule;
  const int rem = r % granule;
  if (2 * rem > granule || (2 * rem == granule && q % 2 == 1)) ++q;
  return std::max(1, q) * granule;
}

// Palu's fisher_uniform for an integer rank target T (see rank_allocation.h).
std::vector<int> palu_ranks(const AllocationSpec& spec, const std::vector<double>& scores,
                            double score_sum, int64_t target) {
  const KvLayout& l = spec.layout;
  const int units = l.num_units(), groups = l.num_groups(), cap = l.unit_capacity();
  std::vector<int64_t> assigned(units);
  std::vector<double> share(units);
  int64_t left = target;
  for (int u = 0; u < units; ++u) {
    share[u] = static_cast<double>(target) * scores[u] / score_sum;
    assigned[u] = std::min<int64_t>(cap, static_cast<int64_t>(std::floor(share[u])));
    left -= assigned[u];
  }
  std::vector<int> order(units);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return share[a] - assigned[a] < share[b] - assigned[b]; });
  while (left > 0) {
    bool progressed = false;
    for (int u : order) {
      if (assigned[u] == cap) continue;
      ++assigned[u];
      progressed = true;
      if (--left == 0) break;
    }
    if (!progressed) break;  // every unit full
  }
  std::vector<int> ranks(static_cast<size_t>(units) * groups);
  for (int u = 0; u < units; ++u) {
    const int per_group = static_cast<int>(assigned[u] / groups);
    const int r = std::min(round_to_granule(per_group, spec.granule), l.group_capacity());
    std::fill_n(ranks.begin() + static_cast<size_t>(u) * groups, groups, r);
  }
  return ranks;
}

// Largest rank total T <= Σcapacity whose latents, before any rounding, cost at most `budget`:
// T channels of bits/8 bytes plus the scale/zero pairs they imply.
int64_t palu_initial_target(const AllocationSpec& spec, int64_t budget) {
  const KvLayout& l = spec.layout;
  const int64_t total_groups = int64_t{l.num_units()} * l.num_groups();
  const int64_t max_target = int64_t{l.num_units()} * l.unit_capacity();
  auto cost = [&](int64_t t) -> int64_t {
    if (spec.quant.bits == 16) return 2 * t;
    const int64_t pairs = spec.quant.quant_group == 0
                              ? total_groups
                              : (t + spec.quant.quant_group - 1) / spec.quant.quant_group;
    return (t * spec.quant.bits + 7) / 8 + 4 * pairs;
  };
  int64_t lo = 0, hi = max_target;  // cost is non-decreasing in t
  if (cost(hi) <= budget) return hi;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (cost(mid) <= budget ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

int64_t KvBudget::resolve(const KvLayout& layout) const {
  LKV_CHECK_ARG(std::isfinite(value), "KV budget must be finite, got ", value);
  if (kind == Kind::kFraction) {
    LKV_CHECK_ARG(value > 0 && value <= 1, "KV budget fraction must be in (0, 1], got ", value);
    // The small slack absorbs representation error (0.3 is not exact in binary).
    return static_cast<int64_t>(
        std::floor(value * static_cast<double>(layout.fp16_bytes_per_token()) + 1e-6));
  }
  LKV_CHECK_ARG(value > 0, "KV budget in bytes per token must be > 0, got ", value);
  return static_cast<int64_t>(std::floor(value));
}

void AllocationSpec::validate() const {
  const KvLayout& l = layout;
  LKV_CHECK_ARG(l.n_layers > 0 && l.num_kv_heads > 0 && l.head_dim > 0,
                "rank allocation: n_layers, num_kv_heads and head_dim must be > 0");
  LKV_CHECK_ARG(l.group_size > 0 && l.num_kv_heads % l.group_size == 0, "group_size ", l.group_size,
                " does not divide num_kv_heads ", l.num_kv_heads);
  LKV_CHECK_ARG(granule >= 1 && l.group_capacity() % granule == 0, "rank granule ", granule,
                " does not divide the group capacity group_size*head_dim = ", l.group_capacity());
  LKV_CHECK_ARG(is_supported_bits(quant.bits), "latent bits ", quant.bits,
                " not supported (use 2, 3, 4, 8 or 16)");
  LKV_CHECK_ARG(
      quant.quant_group >= 0 && (quant.quant_group == 0 || granule % quant.quant_group == 0),
      "quant_group ", quant.quant_group, " does not divide the rank granule ", granule);
  budget.resolve(layout);
}

int64_t RankAllocation::total_rank() const {
  return std::accumulate(ranks.begin(), ranks.end(), int64_t{0});
}

std::vector<int> RankAllocation::unit_ranks(int layer, bool value_proj) const {
  LKV_CHECK_ARG(layer >= 0 && layer < layout.n_layers, "layer ", layer, " outside [0, ",
                layout.n_layers, ")");
  const int g = layout.num_groups();
  const auto first = ranks.begin() + static_cast<size_t>(2 * layer + (value_proj ? 1 : 0)) * g;
  return std::vector<int>(first, first + g);
}

double RankAllocation::kept_fraction() const {
  return fp16_bytes_per_token > 0
             ? static_cast<double>(bytes_per_token) / static_cast<double>(fp16_bytes_per_token)
             : 0.0;
}

int64_t kv_bytes_per_token(const std::vector<int>& ranks, const QuantConfig& quant) {
  int64_t bytes = 0;
  for (int r : ranks) bytes += latent_bytes_per_token(r, quant);
  return bytes;
}

RankAllocation allocate_uniform(const AllocationSpec& spec) {
  const int64_t budget = checked_budget(spec);
  const KvLayout& l = spec.layout;
  const int64_t groups = int64_t{l.num_units()} * l.num_groups();
  int r = l.group_capacity();
  while (r > spec.granule && groups * latent_bytes_per_token(r, spec.quant) > budget) {
    r -= spec.granule;
  }
  return make_result(spec, "uniform", std::vector<int>(groups, r), budget);
}

RankAllocation allocate_palu(const AllocationSpec& spec, const std::vector<double>& unit_scores) {
  const int64_t budget = checked_budget(spec);
  const KvLayout& l = spec.layout;
  LKV_CHECK_ARG(static_cast<int>(unit_scores.size()) == l.num_units(), "Palu allocation needs ",
                l.num_units(), " unit scores (k and v of ", l.n_layers, " layers), got ",
                unit_scores.size());
  double sum = 0.0;
  for (size_t u = 0; u < unit_scores.size(); ++u) {
    LKV_CHECK_ARG(std::isfinite(unit_scores[u]) && unit_scores[u] >= 0, "Fisher score of unit ", u,
                  " (layer ", u / 2, u % 2 ? " v_proj" : " k_proj", ") is ", unit_scores[u],
                  "; scores must be finite and >= 0");
    sum += unit_scores[u];
  }
  LKV_CHECK_ARG(sum > 0, "Fisher scores are all zero");
  for (int64_t target = palu_initial_target(spec, budget); target >= 0; --target) {
    std::vector<int> ranks = palu_ranks(spec, unit_scores, sum, target);
    if (kv_bytes_per_token(ranks, spec.quant) <= budget) {
      RankAllocation a = make_result(spec, "palu", std::move(ranks), budget);
      a.rank_target = target;
      return a;
    }
  }
  // Target 0 gives every group one granule, which checked_budget() showed to fit.
  LKV_THROW(StatusCode::kInternal, "Palu allocation found no rank target within the budget");
}

RankAllocation allocate_greedy_error(const AllocationSpec& spec,
                                     const std::vector<GroupErrorProfile>& groups) {
  const int64_t budget = checked_budget(spec);
  const KvLayout& l = spec.layout;
  const size_t n = static_cast<size_t>(l.num_units()) * l.num_groups();
  const int steps = l.group_capacity() / spec.granule;
  LKV_CHECK_ARG(groups.size() == n, "greedy allocation needs ", n, " group profiles (",
                l.num_units(), " units x ", l.num_groups(), " groups), got ", groups.size());
  for (size_t i = 0; i < n; ++i) {
    const GroupErrorProfile& p = groups[i];
    LKV_CHECK_ARG(std::isfinite(p.weight) && p.weight >= 0, "group ", i, " weight ", p.weight,
                  " must be finite and >= 0");
    LKV_CHECK_ARG(static_cast<int>(p.drops.size()) == steps, "group ", i, " has ", p.drops.size(),
                  " error drops, expected group_capacity/granule = ", steps);
    for (double d : p.drops) {
      LKV_CHECK_ARG(std::isfinite(d) && d >= 0, "group ", i, " error drop ", d,
                    " must be finite and >= 0");
    }
  }
  std::vector<int> ranks(n, spec.granule);
  int64_t bytes = kv_bytes_per_token(ranks, spec.quant);
  // (gain per byte, -group): the largest gain first, the lowest group index on ties.
  using Step = std::tuple<double, int64_t>;
  std::priority_queue<Step> queue;
  auto step_bytes = [&](size_t i) {
    return latent_bytes_per_token(ranks[i] + spec.granule, spec.quant) -
           latent_bytes_per_token(ranks[i], spec.quant);
  };
  auto push = [&](size_t i) {
    const int j = ranks[i] / spec.granule;
    if (j >= steps) return;
    const double gain = groups[i].weight * groups[i].drops[j];
    // A granule that removes no error is not worth any memory.
    if (gain > 0)
      queue.emplace(gain / static_cast<double>(step_bytes(i)), -static_cast<int64_t>(i));
  };
  for (size_t i = 0; i < n; ++i) push(i);
  while (!queue.empty()) {
    const size_t i = static_cast<size_t>(-std::get<1>(queue.top()));
    queue.pop();
    const int64_t add = step_bytes(i);
    if (bytes + add > budget) continue;  // this group cannot grow; others still may
    bytes += add;
    ranks[i] += spec.granule;
    push(i);
  }
  return make_result(spec, "greedy_error", std::move(ranks), budget);
}

std::vector<double> granule_error_drops(const std::vector<double>& singular_values,
                                        int group_capacity, int granule) {
  LKV_CHECK_ARG(granule >= 1 && group_capacity >= 1 && group_capacity % granule == 0,
                "rank granule ", granule, " does not divide the group capacity ", group_capacity);
  LKV_CHECK_ARG(static_cast<int>(singular_values.size()) <= group_capacity, "got ",
                singular_values.size(), " singular values for a group of capacity ",
                group_capacity);
  std::vector<double> drops(group_capacity / granule, 0.0);
  for (size_t i = 0; i < singular_values.size(); ++i) {
    const double s = singular_values[i];
    LKV_CHECK_ARG(std::isfinite(s) && s >= 0, "singular value ", i, " = ", s,
                  " must be finite and >= 0");
    drops[i / granule] += s * s;
  }
  return drops;
}

}  // namespace latentkv
