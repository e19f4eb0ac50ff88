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

/// One minimisation: the smallest failing scenario so far and the oracle runs spent.
class Minimiser {
public:
    Minimiser(const Scenario& scenario, const Oracle& still_fails, std::size_t max_runs)
        : best_(scenario), still_fails_(still_fails), max_runs_(max_runs) {}

    /// Drops chunks of steps (ddmin's complement pass).
    void drop_chunks() {
        std::size_t n = 2;
        while (best_.steps.size() >= 2 && runs_ < max_runs_) {
            const std::size_t len = best_.steps.size();
            const std::size_t chunk = (len + n - 1) / n;
            bool reduced = false;
            for (std::size_t from = 0; from < len && !reduced; from += chunk) {
                const std::size_t to = std::min(len, from + chunk);
                if (to - from == len) continue;
                Scenario c = without(from, to);
                if (test(c)) {
                    best_ = std::move(c);
                    n = std::max<std::size_t>(n - 1, 2);
                    reduced = true;
                }
            }
            if (!reduced) {
                if (n >= len) break;
                n = std::min(n * 2, len);
            }
        }
    }

    /// Drops single steps until nothing more goes.
    void drop_single_steps() {
        for (bool changed = true; changed && runs_ < max_runs_;) {
            changed = false;
            for (std::size_t i = best_.steps.size(); i-- > 0 && best_.steps.size() > 1;) {
                Scenario c = without(i, i + 1);
                if (test(c)) {
                    best_ = std::move(c);
                    changed = true;
                }
            }
        }
    }

    /// Narrows the fields of every step left.
    void narrow_steps() {
        for (std::size_t i = 0; i < best_.steps.size() && runs_ < max_runs_; ++i) {
            const Step cur = best_.steps[i];
            if (cur.kind == Step::Kind::Fill) {
                halve_fill(i);
                continue;
            }
            if (cur.kind != Step::Kind::Access) continue;
            if (cur.frame.flags() != 0) {
                Step s = cur;
                s.frame.set_flags(0);
                try_step(i, s);
            }
            const Op op = best_.steps[i].frame.op();
            if (!is_read_op(op)) clear_data(i);
            narrow_size(i, op);
        }
    }

    const Scenario& best() const { return best_; }
    std::size_t runs() const { return runs_; }

private:
    bool test(const Scenario& c) {
        if (runs_ >= max_runs_) return false;
        ++runs_;
        return still_fails_(c);
    }

    Scenario without(std::size_t from, std::size_t to) const {
        Scenario c = best_;
        c.steps.erase(c.steps.begin() + static_cast<std::ptrdiff_t>(from), c.steps.begin() + static_cast<std::ptrdiff_t>(to));
        return c;
    }

    /// Keeps step `i` replaced by `s` when the scenario still fails so.
    bool try_step(std::size_t i, const Step& s) {
        Scenario c = best_;
        c.steps[i] = s;
        if (!test(c)) return false;
        best_ = std::move(c);
        return true;
    }

    void halve_fill(std::size_t i) {
        for (Step s = best_.steps[i]; s.fill_size > 1;) {
            s.fill_size /= 2;
            if (!try_step(i, s)) break;
        }
    }

    /// Zeroes a write's data, else (up to 8 bytes) clears its bits one at a time, highest first.
    void clear_data(std::size_t i) {
        const Step s = best_.steps[i];
        std::array<std::byte, kDataBytes> zero{};
        if (std::memcmp(s.frame.payload(), zero.data(), kDataBytes) == 0) return;
        Step z = s;
        std::memset(z.frame.payload(), 0, kDataBytes);
        if (try_step(i, z) || s.frame.size() > 8) return;
        for (int b = 63; b >= 0 && runs_ < max_runs_; --b) {
            Step t = best_.steps[i];
            const std::uint64_t v = step_data(t);
            if (!(v >> b & 1)) continue;
            set_step_data(t, v & ~(std::uint64_t{1} << b));
            try_step(i, t);
        }
    }

    /// Narrower accesses (same address, low bytes of the data).
    void narrow_size(std::size_t i, Op op) {
        for (unsigned size : {1u, 2u, 4u, 8u}) {
            const Step& c = best_.steps[i];
            if (size >= c.frame.size() || is_pair_op(op) || (c.frame.address() % size) != 0) continue;
            Step s = Step::access(op, c.frame.rid(), c.frame.address(), size, step_data(c), 0, c.frame.flags());
            s.record = c.record;
            if (try_step(i, s)) break;
        }
    }

    Scenario best_;
    const Oracle& still_fails_;
    std::size_t max_runs_;
    std::size_t runs_ = 0;
};

}  // namespace

Scenario minimise(const Scenario& scenario, const Oracle& still_fails, std::size_t max_runs, std::size_t* runs_out) {
    Minimiser m(scenario, still_fails, max_runs);
    m.drop_chunks();
    m.drop_single_steps();
    m.narrow_steps();
    if (runs_out) *runs_out = m.runs();
    return m.best();
}

}  // namespace coreio::replayer
