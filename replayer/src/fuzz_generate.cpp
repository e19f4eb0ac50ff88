// The fuzzer's input: execs generated from (seed, exec number) alone, random or
// mutated from a trace's requests.
#include "coreio/replayer/fuzz.hpp"

#include <algorithm>

#include "coreio/replayer/prng.hpp"
#include "fuzz_corpus.hpp"

namespace coreio::replayer {

namespace {

std::uint64_t interesting(Rng& rng, const FuzzConfig& c) {
    switch (rng.below(10)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return ~std::uint64_t{0};
    case 3: return rng.below(16);
    case 4: return std::uint64_t{1} << rng.below(64);
    case 5:
        if (!c.memory.empty()) {
            const auto& m = c.memory[rng.below(c.memory.size())];
            return m.base + rng.below(m.size);
        }
        return rng.next();
    case 6: {
        const auto& r = c.ranges[rng.below(c.ranges.size())];
        return r.base + rng.below(r.size);
    }
    case 7: return rng.below(0x2000);
    default: return rng.next();
    }
}

/// The n-th register (0-based, in config order) of range `rid`; it exists.
const RegisterInfo& nth_register(const FuzzConfig& c, unsigned rid, std::uint64_t n) {
    for (const auto& r : c.registers)
        if (r.rid == rid && n-- == 0) return r;
    return c.registers.front();  // unreachable: n < the range's register count
}

Step random_access(Rng& rng, const FuzzConfig& c) {
    const auto& range = c.ranges[rng.below(c.ranges.size())];
    const std::uint64_t rsize = std::max<std::uint64_t>(range.size, 64);
    // The registers of this range, counted and then indexed in place: a list
    // of them built per step cost several allocations, most of an exec's time.
    const auto in_range = [&](const RegisterInfo& r) { return r.rid == range.rid; };
    const auto regs = static_cast<std::size_t>(std::count_if(c.registers.begin(), c.registers.end(), in_range));
    static constexpr unsigned kSizes[] = {1, 2, 4, 8};
    unsigned size;
    std::uint64_t offset;
    if (regs > 0 && rng.chance(3, 4)) {
        const RegisterInfo& r = nth_register(c, range.rid, rng.below(regs));
        offset = r.offset;
        size = rng.chance(1, 8) ? kSizes[rng.below(4)] : r.width;
    } else {
        size = rng.chance(1, 32) ? (rng.chance(1, 2) ? 16u : 32u) : kSizes[rng.below(4)];
        offset = rng.chance(7, 8) ? rng.below(std::min<std::uint64_t>(0x100, rsize)) : rng.below(rsize);
    }
    const std::uint64_t k = rng.below(100);
    Op op = k < 40 ? Op::Read : k < 70 ? Op::Write : k < 85 ? Op::WriteAck : k < 92 ? Op::ReadPair
          : k < 97 ? Op::WritePair : Op::WriteAckPair;
    if (is_pair_op(op) && size > kMaxPairElement) size = kMaxPairElement;
    const std::uint64_t span = is_pair_op(op) ? 2ull * size : size;
    offset &= ~std::uint64_t{size - 1};
    if (offset + span > rsize) offset = rsize - span;
    const std::uint64_t d1 = interesting(rng, c), d2 = interesting(rng, c);
    const unsigned flags = rng.chance(1, 16) ? static_cast<unsigned>(rng.below(16)) : 0;
    Step s = Step::access(op, range.rid, range.base + offset, size, d1, d2, flags);
    if (size > 8 && !is_read_op(op)) {  // wide writes: random bytes beyond the first 8
        for (unsigned i = 8; i < size; ++i) s.frame.payload()[i] = static_cast<std::byte>(rng.next());
    }
    return s;
}

Step random_step(Rng& rng, const FuzzConfig& c) {
    const std::uint64_t k = rng.below(100);
    if (k < 5) return Step::reset();
    if (k < 11 && !c.memory.empty()) {
        const auto& m = c.memory[rng.below(c.memory.size())];
        const std::uint64_t off = rng.below(m.size) & ~std::uint64_t{7};
        const std::uint64_t len = 1 + rng.below(std::min<std::uint64_t>(256, m.size - off));
        return Step::fill(m.base + off, len, rng.next());
    }
    return random_access(rng, c);
}

void mutate(Rng& rng, const FuzzConfig& c, Step& s) {
    if (s.kind != Step::Kind::Access || rng.chance(1, 4)) {
        s = random_step(rng, c);
        return;
    }
    const Op op = s.frame.op();
    if (!is_read_op(op) && rng.chance(2, 3)) {
        const std::uint64_t v = interesting(rng, c);
        for (unsigned i = 0; i < std::min(8u, s.frame.size()); ++i) s.frame.payload()[i] = static_cast<std::byte>(v >> (8 * i));
    } else {
        const std::int64_t delta = static_cast<std::int64_t>(rng.below(17)) * 4 - 32;
        s.frame.set_address(s.frame.address() + static_cast<std::uint64_t>(delta));
    }
    s.expect_reply = false;
}

}  // namespace

void generate_exec(const FuzzConfig& c, std::uint64_t seed, std::uint64_t exec, Scenario& out) {
    Rng rng(seed, exec);
    out.steps.clear();
    out.irqs.clear();
    out.dmas.clear();
    out.claims.clear();
    out.reproducer = true;
    if (out.ranges.size() != c.ranges.size()) out.ranges = c.ranges;
    if (out.memory.size() != c.memory.size()) out.memory = c.memory;
    out.steps.push_back(Step::reset());
    if (c.ranges.empty()) return;
    const std::size_t max_ops = std::max(1u, c.max_ops);
    if (c.start && !c.start->steps.empty() && rng.chance(1, 2)) {
        const auto& base = c.start->steps;
        const std::size_t from = rng.below(base.size());
        const std::size_t n = 1 + rng.below(max_ops);
        for (std::size_t i = from; i < base.size() && out.steps.size() <= n; ++i) {
            if (rng.chance(1, 8)) out.steps.push_back(random_step(rng, c));
            Step s = base[i];
            s.expect_reply = false;
            if (rng.chance(1, 4)) mutate(rng, c, s);
            out.steps.push_back(s);
        }
    } else {
        const std::size_t n = 1 + rng.below(max_ops);
        for (std::size_t i = 0; i < n; ++i) out.steps.push_back(random_step(rng, c));
    }
    for (std::size_t i = 0; i < out.steps.size(); ++i) out.steps[i].record = i;
}

namespace {

/// A write step like `s` (same register and size) carrying a new value.
Step rewrite(Rng& rng, const FuzzConfig& c, const Step& s) {
    Step w = s;
    const std::uint64_t v = interesting(rng, c);
    for (unsigned i = 0; i < std::min(8u, w.frame.size()); ++i) w.frame.payload()[i] = static_cast<std::byte>(v >> (8 * i));
    return w;
}

}  // namespace

void mutate_exec(const FuzzConfig& c, std::uint64_t seed, std::uint64_t exec, const Scenario& parent, Scenario& out) {
    Rng rng(seed, exec);
    out = parent;
    auto& steps = out.steps;  // steps[0] is the exec's opening RESET, kept
    const std::size_t limit = std::max(1u, c.max_ops) + 1;
    const std::size_t mutations = 1 + rng.below(4);
    for (std::size_t m = 0; m < mutations; ++m) {
        const std::size_t n = steps.size();
        const std::size_t at = 1 + rng.below(n);  // 1..n: an insertion point after the RESET
        switch (rng.below(8)) {
        case 0:
        case 1:
        case 2:
            if (n < limit) steps.insert(steps.begin() + static_cast<std::ptrdiff_t>(at), random_step(rng, c));
            break;
        case 3:
            if (n < limit) steps.push_back(random_step(rng, c));
            break;
        case 4:
        case 5:
            if (n > 1) mutate(rng, c, steps[1 + rng.below(n - 1)]);
            break;
        case 6:
            if (n > 1) steps.erase(steps.begin() + static_cast<std::ptrdiff_t>(1 + rng.below(n - 1)));
            break;
        default: {  // a copy of a write with another value, right after it (register sequences)
            if (n < 2 || n >= limit) break;
            const std::size_t from = 1 + rng.below(n - 1);
            const Step& s = steps[from];
            if (s.kind != Step::Kind::Access || is_read_op(s.frame.op())) break;
            steps.insert(steps.begin() + static_cast<std::ptrdiff_t>(from + 1), rewrite(rng, c, s));
            break;
        }
        }
    }
    for (std::size_t i = 0; i < steps.size(); ++i) {
        steps[i].record = i;
        steps[i].expect_reply = false;
    }
}

}  // namespace coreio::replayer
