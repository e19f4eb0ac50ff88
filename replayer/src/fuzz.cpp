// The fuzz runs (in process and over TCP), the checks that re-run a scenario
// for its finding, and what happens to findings: reproduced, minimised,
// written as reproducers. Generation, the exec loops, minimising and
// reproducer files have their own files (fuzz_*.cpp).
#include "coreio/replayer/fuzz.hpp"

#include <algorithm>

#include <cstdlib>

#include "coreio/replayer/process.hpp"
#include "fuzz_corpus.hpp"
#include "fuzz_internal.hpp"

namespace coreio::replayer {

// ---- checks -----------------------------------------------------------------------

ReplayOptions findings_options(const Assertions& a, std::chrono::milliseconds timeout) {
    ReplayOptions ro;
    ro.check = CheckMode::Findings;
    ro.assertions = a;
    ro.timeout = timeout;
    return ro;
}

namespace {

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

// ---- findings ---------------------------------------------------------------------

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

namespace {

void finish_findings(FuzzResult& result, const FuzzConfig& config, const FuzzOptions& o,
                     const std::function<std::string(const Scenario&)>& check) {
    for (Finding& f : result.findings) {
        if (!o.guided) generate_exec(config, o.seed, f.exec, f.scenario);  // guided: kept as found
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

}  // namespace

// ---- the fuzz runs ----------------------------------------------------------------

FuzzResult fuzz_in_process(const FuzzConfig& config, const DeviceFactory& factory, const FuzzOptions& o) {
    FuzzResult result;
    if (config.ranges.empty()) {
        result.error = "no MMIO range to fuzz";
        return result;
    }
    if (o.guided && (o.fork || !o.coverage)) {
        result.error = "guided fuzzing in process needs a coverage source and fork off";
        return result;
    }
    const auto t0 = Clock::now();
    const auto deadline = t0 + o.time_limit;
    std::set<std::string> seen;
    if (!o.fork)
        run_execs_here(result, seen, config, factory, o, deadline);
    else
        run_execs_forked(result, seen, config, factory, o, deadline);
    result.stats.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    finish_findings(result, config, o, [&](const Scenario& sc) {
        return check_in_process(sc, factory, o.assertions, o.fork, o.timeout);
    });
    return result;
}

namespace {

/// One fuzz run against device processes over TCP: a device process serves execs
/// until a finding, then a fresh one is started.
class TcpFuzzRun {
public:
    TcpFuzzRun(const FuzzConfig& config, const std::string& command, const FuzzOptions& o, FuzzResult& result)
        : config_(config),
          command_(command),
          o_(o),
          result_(result),
          player_(findings_options(tcp_assertions(o.assertions), o.timeout), config.ranges, config.memory),
          link_(player_, {}),
          target_("127.0.0.1:" + std::to_string(link_.port())),
          guide_(o.guided ? Guidance::Reader([this](std::vector<std::uint32_t>& v) { map_.read(v); })
                          : Guidance::Reader()) {}

    /// Guided: creates the coverage map the device processes inherit. Returns an error or "".
    std::string share_coverage() {
        if (!o_.guided) return "";
        if (std::string err = map_.create(); !err.empty()) return err;
        ::setenv(kCoverageMapEnv, map_.path().c_str(), 1);  // the device processes inherit it
        return "";
    }

    /// Runs the execs until the count, the time limit, enough findings or an error.
    void run(Clock::time_point deadline) {
        for (std::uint64_t e = o_.first_exec; e < o_.first_exec + o_.execs && result_.findings.size() < o_.max_findings;
             ++e) {
            if (o_.time_limit.count() > 0 && Clock::now() >= deadline) break;
            if (!up_ && !start_device()) break;
            if (!run_exec(e)) break;
        }
        result_.stats.kept = guide_.kept();
        link_.disconnect();
        proc_.kill();
        if (o_.guided) ::unsetenv(kCoverageMapEnv);  // the map goes with this run
    }

private:
    static Assertions tcp_assertions(Assertions a) {
        a.reset_check_from_step = 1;  // the opening reset shows the previous exec's state
        return a;
    }

    bool start_device() {
        if (proc_.start(command_, target_) != 0 || link_.accept(o_.timeout, proc_.ended_fd()) != 0) {
            result_.error = "device command '" + command_ + "' did not connect: " + proc_.kill();
            return false;
        }
        player_.new_device();
        guide_.new_device();
        up_ = true;
        return true;
    }

    /// Runs exec `e` and records its finding, if any. False when the run must stop.
    bool run_exec(std::uint64_t e) {
        player_.clear_memory();
        guide_.make(config_, o_.seed, e, sc_);
        ReplayReport rep = player_.run(sc_, link_);
        if (!guide_.ran(sc_)) {
            result_.error = "--guided: the device shares no coverage (" + std::string(kCoverageMapEnv) +
                            "): run a coreio-cosim device built with COVERAGE";
            return false;
        }
        ++result_.stats.execs;
        result_.stats.steps += sc_.steps.size();
        if (o_.progress) o_.progress({result_.stats.execs, result_.findings.size()});
        if (rep.divergences.empty()) {
            guide_.passed(sc_);
            return true;
        }
        record_finding(e, rep.divergences[0]);
        return true;
    }

    /// Adds the finding (with how a crashed or hung device ended) and starts over with a fresh device.
    void record_finding(std::uint64_t e, Divergence d) {
        if (d.kind == DivergenceKind::Crash || d.kind == DivergenceKind::Hang) {
            const std::string how = proc_.wait(std::chrono::milliseconds(200));
            d.got += how.empty() ? "" : " (" + how + ")";
        }
        const std::size_t had = result_.findings.size();
        add_finding(result_, seen_, e, d, o_);
        if (o_.guided && result_.findings.size() > had) result_.findings.back().scenario = guide_.finding(sc_);
        link_.disconnect();
        proc_.kill();
        up_ = false;
        ++result_.stats.restarts;
    }

    const FuzzConfig& config_;
    const std::string& command_;
    const FuzzOptions& o_;
    FuzzResult& result_;
    std::set<std::string> seen_;
    Player player_;
    TcpLink link_;
    const std::string target_;
    DeviceProcess proc_;
    bool up_ = false;
    Scenario sc_;
    CoverageMapFile map_;
    Guidance guide_;
};

}  // namespace

FuzzResult fuzz_tcp(const FuzzConfig& config, const std::string& command, const FuzzOptions& o) {
    FuzzResult result;
    if (config.ranges.empty()) {
        result.error = "no MMIO range to fuzz";
        return result;
    }
    const auto t0 = Clock::now();
    TcpFuzzRun run(config, command, o, result);
    if (std::string err = run.share_coverage(); !err.empty()) {
        result.error = err;
        return result;
    }
    run.run(t0 + o.time_limit);
    result.stats.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!result.error.empty()) return result;
    finish_findings(result, config, o,
                    [&](const Scenario& s) { return check_tcp(s, command, o.assertions, o.timeout); });
    return result;
}

}  // namespace coreio::replayer
