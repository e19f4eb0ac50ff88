// Shrinking a failing scenario while the oracle still sees the same failure.
#include "coreio/replayer/fuzz.hpp"

#include <algorithm>

namespace coreio::replayer {

namespace {

std::uint64_t step_data(const Step& s) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < std::min(8u, s.frame.size()); ++i)
        v |= std::uint64_t{static_cast<std::uint8_t>(s.frame.payload()[i])} << (8 * i);
    return v;
}

void set_step_data(Step& s, std::uint64_t v) {
    for (unsigned i = 0; i < std::min(8u, s.frame.size()); ++i) s.frame.payload()[i] = static_cast<std::byte>(v >> (8 * i));
}

}  // namespace

Scenario minimise(const Scenario& scenario, const Oracle& still_fails, std::size_t max_runs, std::size_t* runs_out) {
    Scenario best = scenario;
    std::size_t runs = 0;
    auto test = [&](const Scenario& c) {
        if (runs >= max_runs) return false;
        ++runs;
        return still_fails(c);
    };
    auto without = [&](std::size_t from, std::size_t to) {
        Scenario c = best;
        c.steps.erase(c.steps.begin() + static_cast<std::ptrdiff_t>(from), c.steps.begin() + static_cast<std::ptrdiff_t>(to));
        return c;
    };
    // 1. Drop chunks of steps (ddmin's complement pass).
    std::size_t n = 2;
    while (best.steps.size() >= 2 && runs < max_runs) {
        const std::size_t len = best.steps.size();
        const std::size_t chunk = (len + n - 1) / n;
        bool reduced = false;
        for (std::size_t from = 0; from < len && !reduced; from += chunk) {
            const std::size_t to = std::min(len, from + chunk);
            if (to - from == len) continue;
            Scenario c = without(from, to);
            if (test(c)) {
                best = std::move(c);
                n = std::max<std::size_t>(n - 1, 2);
                reduced = true;
            }
        }
        if (!reduced) {
            if (n >= len) break;
            n = std::min(n * 2, len);
        }
    }
    // 2. Drop single steps until nothing more goes.
    for (bool changed = true; changed && runs < max_runs;) {
        changed = false;
        for (std::size_t i = best.steps.size(); i-- > 0 && best.steps.size() > 1;) {
            Scenario c = without(i, i + 1);
            if (test(c)) {
                best = std::move(c);
                changed = true;
            }
        }
    }
    // 3. Narrow the fields of what is left.
    for (std::size_t i = 0; i < best.steps.size() && runs < max_runs; ++i) {
        auto try_step = [&](const Step& s) {
            Scenario c = best;
            c.steps[i] = s;
            if (!test(c)) return false;
            best = std::move(c);
            return true;
        };
        const Step cur = best.steps[i];
        if (cur.kind == Step::Kind::Fill) {
            for (Step s = best.steps[i]; s.fill_size > 1;) {
                s.fill_size /= 2;
                if (!try_step(s)) break;
            }
            continue;
        }
        if (cur.kind != Step::Kind::Access) continue;
        if (cur.frame.flags() != 0) {
            Step s = cur;
            s.frame.set_flags(0);
            try_step(s);
        }
        const Op op = best.steps[i].frame.op();
        if (!is_read_op(op)) {
            Step s = best.steps[i];
            std::array<std::byte, kDataBytes> zero{};
            const bool all_zero = std::memcmp(s.frame.payload(), zero.data(), kDataBytes) == 0;
            if (!all_zero) {
                Step z = s;
                std::memset(z.frame.payload(), 0, kDataBytes);
                if (!try_step(z) && s.frame.size() <= 8) {
                    // Clear data bits one at a time, highest first.
                    for (int b = 63; b >= 0 && runs < max_runs; --b) {
                        Step t = best.steps[i];
                        const std::uint64_t v = step_data(t);
                        if (!(v >> b & 1)) continue;
                        set_step_data(t, v & ~(std::uint64_t{1} << b));
                        try_step(t);
                    }
                }
            }
        }
        // Narrower accesses (same address, low bytes of the data).
        for (unsigned size : {1u, 2u, 4u, 8u}) {
            const Step& c = best.steps[i];
            if (size >= c.frame.size() || is_pair_op(op) || (c.frame.address() % size) != 0) continue;
            Step s = Step::access(op, c.frame.rid(), c.frame.address(), size, step_data(c), 0, c.frame.flags());
            s.record = c.record;
            if (try_step(s)) break;
        }
    }
    if (runs_out) *runs_out = runs;
    return best;
}

}  // namespace coreio::replayer
