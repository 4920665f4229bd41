#include "attention/split_planner.h"

#include <algorithm>

namespace latentkv::detail {

SplitChoice choose_splits(int64_t base_ctas, int max_seq_len, int tile, int ctas_per_sm,
                          int num_sms, double fixed_cost_tiles, TrailingCtas trailing) {
  const int64_t tiles = std::max<int64_t>(1, (max_seq_len + tile - 1) / tile);
  const int64_t slots = std::max<int64_t>(1, int64_t{ctas_per_sm} * num_sms);
  SplitChoice best;
  double best_cost = 0.0;
  for (int64_t s = 1; s <= tiles; ++s) {
    const int64_t per_split = (tiles + s - 1) / s;
    if (s > 1 && (s - 1) * per_split >= tiles) continue;  // a split would be empty
    const int64_t waves = (base_ctas * s + slots - 1) / slots;
    const double wave_cost = per_split + fixed_cost_tiles;
    double time = static_cast<double>(waves) * wave_cost;
    if (trailing.ctas > 0 && trailing.cost_tiles > 0.0) {
      const int64_t free_slots = waves * slots - base_ctas * s;
      const int64_t per_slot =
          std::max<int64_t>(1, static_cast<int64_t>(wave_cost / trailing.cost_tiles));
      const int64_t rest = trailing.ctas - free_slots * per_slot;
      time = rest > 0
                 ? time + static_cast<double>((rest + slots - 1) / slots) * trailing.cost_tiles
                 : std::max(time,
                            static_cast<double>(waves - 1) * wave_cost +
                                static_cast<double>((trailing.ctas + free_slots - 1) / free_slots) *
                                    trailing.cost_tiles);
    }
    // Each extra split adds a partial result to merge: a small per-split term breaks ties
    // towards fewer splits.
    const double cost = time + 0.01 * s;
    if (s == 1 || cost < best_cost) {
      best_cost = cost;
      best.num_splits = static_cast<int>(s);
      best.tokens_per_split = static_cast<int>(per_split * tile);
    }
  }
  return best;
}

}  // namespace latentkv::detail
