// guided_fuzz_bench: executions to the first finding on an RTL design with a
// deep seeded bug (cosim/rtl/lock_apb.sv: three key writes with specific
// values, then ALARM; the alarm survives reset), coverage-guided against
// blind, over several seeds, through coreio-cosim-lock-apb over TCP as
// `coreio-fuzz --run` drives it. Goal: guided median <= blind median / 10.
// Then the first guided seed's minimised reproducer is replayed against the
// RTL ten times.
//
//   guided_fuzz_bench [SEEDS=5] [BLIND_CAP_EXECS=3000000] [OUT_DIR=.]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "coreio/replayer/fuzz.hpp"
#include "coreio/replayer/process.hpp"

using namespace coreio::replayer;

namespace {

FuzzConfig lock_config() {
    FuzzConfig c;
    c.ranges = {{0, 0x1000'0000, 0x1000, "lock"}};
    for (std::uint64_t off = 0; off <= 0x10; off += 4) c.registers.push_back({0, off, 4});
    return c;
}

struct Run {
    std::uint64_t execs = 0;  // to the first finding (or the cap)
    bool found = false;
    std::size_t kept = 0;
    double seconds = 0;
    Finding finding;
};

Run fuzz_once(const std::string& command, std::uint64_t seed, bool guided, std::uint64_t cap, const std::string& out) {
    FuzzOptions o;
    o.seed = seed;
    o.execs = cap;
    o.guided = guided;
    o.max_findings = 1;
    o.minimise = !out.empty();
    o.out_dir = out;
    const FuzzResult r = fuzz_tcp(lock_config(), command, o);
    if (!r.error.empty()) {
        std::fprintf(stderr, "guided_fuzz_bench: %s\n", r.error.c_str());
        std::exit(2);
    }
    Run run;
    run.found = !r.findings.empty();
    run.execs = run.found ? r.findings[0].exec + 1 : r.stats.execs;
    run.kept = r.stats.kept;
    run.seconds = r.stats.seconds;
    if (run.found) run.finding = r.findings[0];
    return run;
}

std::uint64_t median(std::vector<std::uint64_t> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    const int seeds = argc > 1 ? std::atoi(argv[1]) : 5;
    const std::uint64_t cap = argc > 2 ? std::strtoull(argv[2], nullptr, 0) : 3'000'000;
    const std::string out = argc > 3 ? argv[3] : ".";
    DeviceProcess::set_default_output(DeviceProcess::Output::Discard);
    const std::string command = std::string("'") + COSIM_LOCK_EXE + "' \"$COREHDL_VM\" --deterministic";
    std::vector<std::uint64_t> guided, blind;
    bool blind_capped = false;
    Finding first;
    std::printf("guided_fuzz_bench: lock-apb (3 key writes with specific values, then ALARM), over TCP, "
                "executions to the first finding\n");
    for (int s = 1; s <= seeds; ++s) {
        const auto seed = static_cast<std::uint64_t>(s);
        const Run g = fuzz_once(command, seed, true, cap, s == 1 ? out : "");
        const Run b = fuzz_once(command, seed, false, cap, "");
        if (s == 1) first = g.finding;
        blind_capped = blind_capped || !b.found;
        guided.push_back(g.execs);
        blind.push_back(b.execs);
        std::printf("  seed %d: guided %8llu execs%s (%zu kept, %.1f s)   blind %8llu execs%s (%.1f s)\n", s,
                    static_cast<unsigned long long>(g.execs), g.found ? "" : " NOT FOUND", g.kept, g.seconds,
                    static_cast<unsigned long long>(b.execs), b.found ? "" : " (cap, not found)", b.seconds);
        std::fflush(stdout);
    }
    const std::uint64_t mg = median(guided), mb = median(blind);
    std::printf("median over %d seeds: guided %llu execs, blind %s%llu execs: guided/blind = %.4f (goal <= 0.10)\n",
                seeds, static_cast<unsigned long long>(mg), blind_capped ? ">= " : "",
                static_cast<unsigned long long>(mb), static_cast<double>(mg) / static_cast<double>(mb));

    if (first.reproducer.empty()) {
        std::printf("reproducer: none written (seed 1 found nothing)\n");
        return 1;
    }
    Scenario rep;
    if (std::string err = load_scenario(first.reproducer, rep); !err.empty()) {
        std::printf("reproducer: %s\n", err.c_str());
        return 1;
    }
    int shown = 0;
    for (int i = 0; i < 10; ++i)
        shown += check_tcp(rep, command, reproducer_assertions(rep), std::chrono::milliseconds(5000)) == first.signature;
    std::printf("reproducer %s (%zu steps): %d of 10 replays against the RTL show %s\n", first.reproducer.c_str(),
                rep.steps.size(), shown, first.signature.c_str());
    return shown == 10 ? 0 : 1;
}
