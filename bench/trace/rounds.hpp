// Side-by-side measurement for the trace benchmark: the runs take turns, round
// after round, so that each sees the same noise from the shared machine; every
// round is kept and the median reported (the best round flatters whichever run
// got lucky once). Ratios are taken per round, between runs of the same round,
// then their median: the noise of one round hits both sides of its ratio.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

namespace coreio::bench {

class Rounds {
public:
    /// Runs each of `runs` in turn, `rounds` times, keeping what each returned.
    Rounds(int rounds, const std::vector<std::function<double()>>& runs) : values_(runs.size()) {
        for (int i = 0; i < rounds; ++i)
            for (std::size_t k = 0; k < runs.size(); ++k) values_[k].push_back(runs[k]());
    }

    /// The median of run `k`'s values.
    double median(std::size_t k) const { return median_of(values_[k]); }

    /// The median over rounds of run `num`'s value divided by run `den`'s.
    double median_ratio(std::size_t num, std::size_t den) const {
        std::vector<double> r;
        for (std::size_t i = 0; i < values_[num].size(); ++i) r.push_back(values_[num][i] / values_[den][i]);
        return median_of(std::move(r));
    }

    static double median_of(std::vector<double> v) {
        if (v.empty()) return 0;
        std::sort(v.begin(), v.end());
        const std::size_t h = v.size() / 2;
        return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
    }

private:
    std::vector<std::vector<double>> values_;  // [run][round]
};

}  // namespace coreio::bench
