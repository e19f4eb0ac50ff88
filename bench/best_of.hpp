// Side-by-side measurement: the runs take turns, round after round, so each
// sees the same noise from the shared machine; best_of() keeps the best round
// of each, median_of() the median.
#pragma once

#include <algorithm>
#include <functional>
#include <vector>

namespace coreio::bench {

/// Runs each of `runs` in turn, `rounds` times; returns the seconds of every round, per run.
inline std::vector<std::vector<double>> rounds_of(int rounds, const std::vector<std::function<double()>>& runs) {
    std::vector<std::vector<double>> seconds(runs.size());
    for (int i = 0; i < rounds; ++i)
        for (std::size_t k = 0; k < runs.size(); ++k) seconds[k].push_back(runs[k]());
    return seconds;
}

/// Runs each of `runs` in turn, `rounds` times; returns the best seconds of each.
inline std::vector<double> best_of(int rounds, const std::vector<std::function<double()>>& runs) {
    std::vector<double> best;
    for (const auto& s : rounds_of(rounds, runs)) best.push_back(*std::min_element(s.begin(), s.end()));
    return best;
}

/// The median of `seconds` (the mean of the middle two for an even count); 0 when empty.
inline double median(std::vector<double> seconds) {
    if (seconds.empty()) return 0;
    std::sort(seconds.begin(), seconds.end());
    const std::size_t mid = seconds.size() / 2;
    return seconds.size() % 2 == 1 ? seconds[mid] : (seconds[mid - 1] + seconds[mid]) / 2;
}

/// Runs each of `runs` in turn, `rounds` times; returns the median seconds of each.
inline std::vector<double> median_of(int rounds, const std::vector<std::function<double()>>& runs) {
    std::vector<double> med;
    for (auto& s : rounds_of(rounds, runs)) med.push_back(median(std::move(s)));
    return med;
}

}  // namespace coreio::bench
