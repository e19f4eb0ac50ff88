// Side-by-side measurement: the runs take turns, round after round, so each
// sees the same noise from the shared machine; the best round of each is kept.
#pragma once

#include <algorithm>
#include <functional>
#include <vector>

namespace coreio::bench {

/// Runs each of `runs` in turn, `rounds` times; returns the best seconds of each.
inline std::vector<double> best_of(int rounds, const std::vector<std::function<double()>>& runs) {
    std::vector<double> best(runs.size(), 1e99);
    for (int i = 0; i < rounds; ++i)
        for (std::size_t k = 0; k < runs.size(); ++k) best[k] = std::min(best[k], runs[k]());
    return best;
}

}  // namespace coreio::bench
