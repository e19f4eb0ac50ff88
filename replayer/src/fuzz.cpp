#include "coreio/replayer/fuzz.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <set>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coreio/replayer/prng.hpp"
#include "coreio/replayer/process.hpp"
#include "scenario_internal.hpp"

namespace coreio::replayer {

// ---- generation -----------------------------------------------------------------

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

Step random_access(Rng& rng, const FuzzConfig& c) {
    const auto& range = c.ranges[rng.below(c.ranges.size())];
    const std::uint64_t rsize = std::max<std::uint64_t>(range.size, 64);
    std::vector<const RegisterInfo*> regs;  // small: registers of this range
    for (const auto& r : c.registers)
        if (r.rid == range.rid) regs.push_back(&r);
    static constexpr unsigned kSizes[] = {1, 2, 4, 8};
    unsigned size;
    std::uint64_t offset;
    if (!regs.empty() && rng.chance(3, 4)) {
        const RegisterInfo& r = *regs[rng.below(regs.size())];
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

// ---- checks -----------------------------------------------------------------------

namespace {

ReplayOptions findings_options(const Assertions& a, std::chrono::milliseconds timeout) {
    ReplayOptions ro;
    ro.check = CheckMode::Findings;
    ro.assertions = a;
    ro.timeout = timeout;
    return ro;
}

const char* kCrashSignal = "crash:signal";
const char* kHangTimeout = "hang:timeout";

}  // namespace

std::string check_in_process(const Scenario& scenario, const DeviceFactory& factory, const Assertions& assertions,
                             bool isolate, std::chrono::milliseconds timeout) {
    auto body = [&]() -> std::string {
        ReplayReport rep = replay_in_process(scenario, factory, findings_options(assertions, timeout));
        return rep.divergences.empty() ? "" : rep.divergences[0].signature();
    };
    if (!isolate) return body();
    const IsolatedResult r = run_isolated(body, timeout);
    if (r.end == IsolatedResult::End::Crashed) return kCrashSignal;
    if (r.end == IsolatedResult::End::TimedOut) return kHangTimeout;
    return r.output;
}

std::string check_tcp(const Scenario& scenario, const std::string& command, const Assertions& assertions,
                      std::chrono::milliseconds timeout) {
    Player player(findings_options(assertions, timeout), scenario.ranges, scenario.memory);
    TcpLink link(player, {});
    DeviceProcess proc;
    if (proc.start(command, "127.0.0.1:" + std::to_string(link.port())) != 0) return "crash:start";
    if (link.accept(timeout) != 0) return "crash:connection";
    ReplayReport rep = player.run(scenario, link);
    return rep.divergences.empty() ? "" : rep.divergences[0].signature();
}

// ---- minimiser ----------------------------------------------------------------------

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

// ---- reproducers ----------------------------------------------------------------------

std::string write_reproducer(const std::string& path, const Finding& f, std::uint64_t seed, const Assertions& a) {
    Scenario sc = f.scenario;
    sc.labels.clear();
    sc.labels.emplace_back(kLabelReproducer, "1");
    sc.labels.emplace_back(kLabelFinding, f.signature);
    sc.labels.emplace_back("coreio.finding.message", f.divergence.describe());
    sc.labels.emplace_back("coreio.fuzz.seed", std::to_string(seed));
    sc.labels.emplace_back("coreio.fuzz.exec", std::to_string(f.exec));
    sc.labels.emplace_back("coreio.fuzz.original-steps", std::to_string(f.original_steps));
    sc.labels.emplace_back("coreio.assert.irq-low-after-reset", a.irq_low_after_reset ? "1" : "0");
    sc.labels.emplace_back("coreio.assert.no-dma-into-mmio", a.no_dma_into_mmio ? "1" : "0");
    sc.labels.emplace_back("coreio.assert.irq-stuck-steps", std::to_string(a.irq_stuck_steps));
    for (std::size_t i = 0; i < a.reads.size(); ++i)
        sc.labels.emplace_back(kLabelExpectRead + std::to_string(i), a.reads[i].text);
    return write_requests(path, sc);
}

Assertions reproducer_assertions(const Scenario& sc, Assertions a) {
    for (const auto& [k, v] : sc.labels) {
        if (k == "coreio.assert.irq-low-after-reset") a.irq_low_after_reset = v == "1";
        else if (k == "coreio.assert.no-dma-into-mmio") a.no_dma_into_mmio = v == "1";
        else if (k == "coreio.assert.irq-stuck-steps") {
            std::uint64_t n = 0;
            if (parse_u64(v, n)) a.irq_stuck_steps = static_cast<unsigned>(n);
        } else if (k.rfind(kLabelExpectRead, 0) == 0) {
            ReadExpectation x;
            if (ReadExpectation::parse(v, x).empty()) a.reads.push_back(x);
        }
    }
    return a;
}

// ---- the fuzz loops ----------------------------------------------------------------------

namespace {

/// Counters a forked worker shares with its parent.
struct Shared {
    std::atomic<std::uint64_t> exec{0};   // exec in progress
    std::atomic<std::uint64_t> done{0};   // execs finished (all workers)
    std::atomic<std::uint64_t> steps{0};  // steps finished (all workers)
};

std::string clean(std::string s) {
    for (char& ch : s)
        if (ch == '\t' || ch == '\n') ch = ' ';
    return s;
}

std::string encode(std::uint64_t exec, const Divergence& d) {
    return "F\t" + std::to_string(exec) + "\t" + std::to_string(d.step) + "\t" + std::to_string(d.record) + "\t" +
           std::to_string(static_cast<int>(d.kind)) + "\t" + clean(d.field) + "\t" + clean(d.expected) + "\t" +
           clean(d.got) + "\t" + clean(d.context) + "\n";
}

bool decode(const std::string& line, std::uint64_t& exec, Divergence& d) {
    std::vector<std::string> f;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t t = line.find('\t', pos);
        f.push_back(line.substr(pos, t == std::string::npos ? std::string::npos : t - pos));
        if (t == std::string::npos) break;
        pos = t + 1;
    }
    if (f.size() != 9 || f[0] != "F") return false;
    std::uint64_t v[4];
    for (int i = 0; i < 4; ++i)
        if (!parse_u64(f[static_cast<std::size_t>(i) + 1], v[i])) return false;
    exec = v[0];
    d.step = v[1];
    d.record = v[2];
    d.kind = static_cast<DivergenceKind>(v[3]);
    d.field = f[5];
    d.expected = f[6];
    d.got = f[7];
    d.context = f[8];
    return true;
}

using Clock = std::chrono::steady_clock;

/// Runs execs [from, to) in this process; calls `found` for each divergence
/// whose signature is new. Returns the number of execs run.
std::uint64_t run_execs(const FuzzConfig& config, const DeviceFactory& factory, const FuzzOptions& o,
                        std::uint64_t from, std::uint64_t to, Clock::time_point deadline, Shared& shared,
                        std::set<std::string> seen, const std::function<bool(std::uint64_t, const Divergence&)>& found) {
    Scenario sc;
    Assertions a = o.assertions;
    a.reset_check_from_step = 1;  // the opening reset shows the previous exec's state
    Player player(findings_options(a, o.timeout), config.ranges, config.memory);
    auto link = std::make_unique<InProcessLink>(factory, player);
    std::uint64_t e = from;
    for (; e < to; ++e) {
        if ((e & 255) == 0 && o.time_limit.count() > 0 && Clock::now() >= deadline) break;
        shared.exec.store(e, std::memory_order_relaxed);
        player.clear_memory();
        generate_exec(config, o.seed, e, sc);
        ReplayReport rep = player.run(sc, *link);
        shared.done.fetch_add(1, std::memory_order_relaxed);
        shared.steps.fetch_add(sc.steps.size(), std::memory_order_relaxed);
        if (o.progress && !o.fork) o.progress({shared.done.load(std::memory_order_relaxed), seen.size()});
        if (rep.divergences.empty()) continue;
        const Divergence& d = rep.divergences[0];
        if (seen.insert(d.signature()).second && !found(e, d)) return e + 1 - from;
        // A fresh device after a finding: later execs should not inherit a broken state.
        link.reset();
        player.new_device();
        link = std::make_unique<InProcessLink>(factory, player);
    }
    return e - from;
}

void finish_findings(FuzzResult& result, const FuzzConfig& config, const FuzzOptions& o,
                     const std::function<std::string(const Scenario&)>& check) {
    for (Finding& f : result.findings) {
        generate_exec(config, o.seed, f.exec, f.scenario);
        f.original_steps = f.scenario.steps.size();
        f.reproduced = check(f.scenario) == f.signature;
        if (f.reproduced && o.minimise) {
            std::size_t runs = 0;
            const std::size_t budget = f.signature == kHangTimeout ? std::min<std::size_t>(o.max_minimise_runs, 64)
                                                                    : o.max_minimise_runs;
            f.scenario = minimise(f.scenario, [&](const Scenario& c) { return check(c) == f.signature; }, budget, &runs);
            if (o.log)
                o.log("minimised " + f.signature + " from " + std::to_string(f.original_steps) + " to " +
                      std::to_string(f.scenario.steps.size()) + " steps in " + std::to_string(runs) + " runs");
        }
        if (!o.out_dir.empty()) {
            std::string kind = f.signature.substr(0, f.signature.find(':'));
            f.reproducer = o.out_dir + "/" + kind + "-seed" + std::to_string(o.seed) + "-exec" + std::to_string(f.exec) +
                           ".ctrace";
            if (std::string err = write_reproducer(f.reproducer, f, o.seed, o.assertions); !err.empty()) {
                result.error = err;
                f.reproducer.clear();
            } else if (o.log) {
                o.log("reproducer: " + f.reproducer);
            }
        }
    }
}

void add_finding(FuzzResult& r, std::set<std::string>& seen, std::uint64_t exec, const Divergence& d,
                 const FuzzOptions& o) {
    if (!seen.insert(d.signature()).second) return;
    Finding f;
    f.divergence = d;
    f.signature = d.signature();
    f.exec = exec;
    if (o.log) o.log("finding at exec " + std::to_string(exec) + ": " + d.describe());
    r.findings.push_back(std::move(f));
}

}  // namespace

FuzzResult fuzz_in_process(const FuzzConfig& config, const DeviceFactory& factory, const FuzzOptions& o) {
    FuzzResult result;
    if (config.ranges.empty()) {
        result.error = "no MMIO range to fuzz";
        return result;
    }
    const auto t0 = Clock::now();
    const auto deadline = t0 + o.time_limit;
    std::set<std::string> seen;
    const std::uint64_t end = o.first_exec + o.execs;

    if (!o.fork) {
        Shared shared;
        run_execs(config, factory, o, o.first_exec, end, deadline, shared, {}, [&](std::uint64_t e, const Divergence& d) {
            add_finding(result, seen, e, d, o);
            return result.findings.size() < o.max_findings;
        });
        result.stats.execs = shared.done;
        result.stats.steps = shared.steps;
    } else {
        void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            result.error = std::string("mmap: ") + std::strerror(errno);
            return result;
        }
        Shared* shared = new (mem) Shared;
        std::uint64_t next = o.first_exec;
        while (next < end && result.findings.size() < o.max_findings) {
            if (o.time_limit.count() > 0 && Clock::now() >= deadline) break;
            int fds[2];
            if (::pipe2(fds, O_CLOEXEC) != 0) {
                result.error = std::string("pipe: ") + std::strerror(errno);
                break;
            }
            shared->exec = next;
            const pid_t pid = ::fork();
            if (pid < 0) {
                result.error = std::string("fork: ") + std::strerror(errno);
                ::close(fds[0]);
                ::close(fds[1]);
                break;
            }
            if (pid == 0) {  // the worker; it dies with this thread
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                ::close(fds[0]);
                run_execs(config, factory, o, next, end, deadline, *shared, seen, [&](std::uint64_t e, const Divergence& d) {
                    const std::string line = encode(e, d);
                    return ::write(fds[1], line.data(), line.size()) == static_cast<ssize_t>(line.size());
                });
                ::_exit(0);
            }
            ::close(fds[1]);
            std::string buf;
            std::uint64_t last_done = shared->done;
            auto last_progress = Clock::now();
            bool over = false;
            int status = 0;
            bool reaped = false;
            while (!over) {
                pollfd p{fds[0], POLLIN, 0};
                if (::poll(&p, 1, 20) > 0) {
                    char tmp[4096];
                    const ssize_t n = ::read(fds[0], tmp, sizeof tmp);
                    if (n > 0) buf.append(tmp, static_cast<std::size_t>(n));
                }
                for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
                    std::uint64_t e = 0;
                    Divergence d;
                    if (decode(buf.substr(0, nl), e, d)) add_finding(result, seen, e, d, o);
                    buf.erase(0, nl + 1);
                }
                if (result.findings.size() >= o.max_findings) {
                    ::kill(pid, SIGKILL);
                    over = true;
                    next = end;
                    break;
                }
                if (::waitpid(pid, &status, WNOHANG) == pid) {
                    reaped = true;
                    over = true;
                    // Whatever the worker wrote before it ended.
                    char tmp[4096];
                    for (ssize_t n; (n = ::read(fds[0], tmp, sizeof tmp)) > 0;) buf.append(tmp, static_cast<std::size_t>(n));
                    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
                        std::uint64_t e = 0;
                        Divergence d;
                        if (decode(buf.substr(0, nl), e, d)) add_finding(result, seen, e, d, o);
                        buf.erase(0, nl + 1);
                    }
                    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                        next = end;  // ran to the end (or the time limit)
                    } else {
                        const std::uint64_t e = shared->exec;
                        Divergence d;
                        d.kind = DivergenceKind::Crash;
                        d.field = "signal";
                        d.step = kNoSeq;
                        d.expected = "the worker to survive";
                        d.got = describe_wait_status(status);
                        d.context = "exec " + std::to_string(e);
                        add_finding(result, seen, e, d, o);
                        ++result.stats.restarts;
                        next = e + 1;
                    }
                    break;
                }
                const std::uint64_t done = shared->done;
                if (o.progress) o.progress({done, result.findings.size()});
                if (done != last_done) {
                    last_done = done;
                    last_progress = Clock::now();
                } else if (Clock::now() - last_progress > o.timeout) {
                    ::kill(pid, SIGKILL);
                    const std::uint64_t e = shared->exec;
                    Divergence d;
                    d.kind = DivergenceKind::Hang;
                    d.field = "timeout";
                    d.step = kNoSeq;
                    d.expected = "an exec within " + std::to_string(o.timeout.count()) + " ms";
                    d.got = "no progress";
                    d.context = "exec " + std::to_string(e);
                    add_finding(result, seen, e, d, o);
                    ++result.stats.restarts;
                    next = e + 1;
                    over = true;
                }
            }
            if (!reaped) {
                while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
                }
            }
            ::close(fds[0]);
        }
        result.stats.execs = shared->done;
        result.stats.steps = shared->steps;
        shared->~Shared();
        ::munmap(mem, sizeof(Shared));
    }
    result.stats.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    finish_findings(result, config, o, [&](const Scenario& sc) {
        return check_in_process(sc, factory, o.assertions, o.fork, o.timeout);
    });
    return result;
}

FuzzResult fuzz_tcp(const FuzzConfig& config, const std::string& command, const FuzzOptions& o) {
    FuzzResult result;
    if (config.ranges.empty()) {
        result.error = "no MMIO range to fuzz";
        return result;
    }
    const auto t0 = Clock::now();
    const auto deadline = t0 + o.time_limit;
    std::set<std::string> seen;
    Assertions a = o.assertions;
    a.reset_check_from_step = 1;  // the opening reset shows the previous exec's state
    Player player(findings_options(a, o.timeout), config.ranges, config.memory);
    TcpLink link(player, {});
    const std::string target = "127.0.0.1:" + std::to_string(link.port());
    DeviceProcess proc;
    bool up = false;
    Scenario sc;
    for (std::uint64_t e = o.first_exec; e < o.first_exec + o.execs && result.findings.size() < o.max_findings; ++e) {
        if (o.time_limit.count() > 0 && Clock::now() >= deadline) break;
        if (!up) {
            if (proc.start(command, target) != 0 || link.accept(o.timeout) != 0) {
                result.error = "device command '" + command + "' did not connect: " + proc.kill();
                break;
            }
            player.new_device();
            up = true;
        }
        player.clear_memory();
        generate_exec(config, o.seed, e, sc);
        ReplayReport rep = player.run(sc, link);
        ++result.stats.execs;
        result.stats.steps += sc.steps.size();
        if (o.progress) o.progress({result.stats.execs, result.findings.size()});
        if (rep.divergences.empty()) continue;
        Divergence d = rep.divergences[0];
        if (d.kind == DivergenceKind::Crash || d.kind == DivergenceKind::Hang) {
            const std::string how = proc.wait(std::chrono::milliseconds(200));
            d.got += how.empty() ? "" : " (" + how + ")";
        }
        add_finding(result, seen, e, d, o);
        // A fresh device process after any finding.
        link.disconnect();
        proc.kill();
        up = false;
        ++result.stats.restarts;
    }
    link.disconnect();
    proc.kill();
    result.stats.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    finish_findings(result, config, o,
                    [&](const Scenario& s) { return check_tcp(s, command, o.assertions, o.timeout); });
    return result;
}

}  // namespace coreio::replayer
