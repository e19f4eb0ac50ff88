// coreio-bench-replay: how fast the replayer plays transactions to a device
// model (in process over a ClientSession; over TCP on 127.0.0.1 to a
// coreio::Client serving the model in another thread) with every reply
// checked, and how many fuzz execs per second the seeded fuzzer runs on the
// timer register file (an exec = reset + up to 32 operations).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "coreio/replayer/fuzz.hpp"
#include "coreio/replayer/replay.hpp"
#include "../best_of.hpp"
#include "timer_regfile.hpp"

using namespace coreio;
using namespace coreio::replayer;

namespace {

constexpr std::uint64_t kBase = 0x10000000;

/// `n` transactions on the scratch registers: reads only, or alternating posted
/// writes and reads; every read carries its expected reply.
Scenario make_scenario(std::size_t n, bool writes) {
    Scenario sc;
    sc.ranges = {{0, kBase, 0x1000, "timer"}};
    sc.claims = {{0, 0}};
    sc.steps.reserve(n);
    std::uint32_t regs[8] = {};
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned r = static_cast<unsigned>(i % 8);
        const std::uint64_t addr = kBase + 0x20 + 4 * r;
        Step s;
        if (writes && i % 2 == 0) {
            regs[r] = static_cast<std::uint32_t>(i * 2654435761u);
            s = Step::access(Op::Write, 0, addr, 4, regs[r]);
        } else {
            s = Step::access(Op::Read, 0, addr, 4);
            s.expect_reply = true;
            s.expected = s.frame;
            std::memcpy(s.expected.payload(), &regs[r], 4);
        }
        s.frame.set_tag(static_cast<std::uint32_t>(i));
        s.expected.set_tag(static_cast<std::uint32_t>(i));
        s.record = i;
        sc.steps.push_back(s);
    }
    return sc;
}

double in_process(const Scenario& sc) {
    ReplayReport rep = replay_in_process(sc, examples::timer_regfile_factory(), {});
    if (!rep.passed()) std::fprintf(stderr, "%s", rep.summary().c_str());
    return static_cast<double>(rep.counts.accesses) / rep.seconds;
}

double over_tcp(const Scenario& sc) {
    ReplayOptions o;
    Player player(o, sc.ranges, sc.memory);
    TcpLinkOptions lo;
    lo.window = 512;
    TcpLink link(player, lo);
    std::atomic<bool> stop{false};
    std::thread dev([&] {
        Client c;
        if (c.connect("127.0.0.1:" + std::to_string(link.port())) != 0) return;
        ClientHost host(c);
        auto d = examples::timer_regfile_factory()(host);
        for (auto& r : d->ranges()) c.register_range(r.rid, *r.handler);
        while (!stop && c.run_for(100000) >= 0) {
        }
    });
    if (link.accept(std::chrono::seconds(10)) != 0) {
        stop = true;
        dev.join();
        return 0;
    }
    ReplayReport rep = player.run(sc, link);
    if (!rep.passed()) std::fprintf(stderr, "%s", rep.summary().c_str());
    stop = true;
    link.disconnect();
    dev.join();
    return static_cast<double>(rep.counts.accesses) / rep.seconds;
}

double fuzz_rate(bool fork, std::uint64_t execs) {
    FuzzConfig c;
    c.ranges = {{0, kBase, 0x1000, "timer"}};
    for (std::uint64_t off = 0; off < examples::TimerRegfile::kSize; off += 4) c.registers.push_back({0, off, 4});
    FuzzOptions o;
    o.seed = 1;
    o.execs = execs;
    o.fork = fork;
    o.minimise = false;
    FuzzResult r = fuzz_in_process(c, examples::timer_regfile_factory(), o);
    return static_cast<double>(r.stats.execs) / r.stats.seconds;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"coreio-bench-replay: replayed transactions/s (in process, over TCP) and fuzz execs/s"};
    std::size_t n = 1000000;
    int rounds = 5;
    bool best = false;
    std::uint64_t fuzz_execs = 300000;
    std::vector<std::string> only;
    app.add_option("transactions", n, "transactions per replay run")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 32));
    app.add_option("--rounds", rounds, "rounds; each row prints the median round")->check(CLI::Range(1, 100));
    app.add_flag("--best", best, "print the best round instead of the median (as the bench did before the median)");
    app.add_option("--fuzz-execs", fuzz_execs, "execs per fuzz row")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 32));
    bool each = false;
    app.add_flag("--each", each, "also print every round's figures (to see bimodal runs)");
    app.add_option("--only", only, "run only these row groups (for profiling one of them)")
        ->check(CLI::IsMember({"in-process", "tcp", "fuzz"}));
    CLI11_PARSE(app, argc, argv);
    auto runs = [&](const char* group) { return only.empty() || std::find(only.begin(), only.end(), group) != only.end(); };
    auto pick = [&](const std::vector<double>& r) {
        return best ? (r.empty() ? 0.0 : *std::max_element(r.begin(), r.end())) : bench::median(r);
    };
    const Scenario reads = make_scenario(n, false), mixed = make_scenario(n, true);
    std::printf("replay, %zu transactions, every read reply checked (%s of %d):\n", n, best ? "best" : "median", rounds);
    std::vector<double> rate[4];
    for (int round = 0; round < rounds; ++round) {
        if (runs("in-process")) {
            rate[0].push_back(in_process(reads));
            rate[1].push_back(in_process(mixed));
        }
        if (runs("tcp")) {
            rate[2].push_back(over_tcp(reads));
            rate[3].push_back(over_tcp(mixed));
        }
        if (each) {
            std::printf("  round %d:", round + 1);
            for (const auto& r : rate)
                if (!r.empty()) std::printf(" %10.0f", r.back());
            std::printf("\n");
        }
    }
    if (runs("in-process")) {
        std::printf("  in process, reads:             %10.0f transactions/s (target >= 1 M/s)\n", pick(rate[0]));
        std::printf("  in process, writes + reads:    %10.0f transactions/s\n", pick(rate[1]));
    }
    if (runs("tcp")) {
        std::printf("  TCP 127.0.0.1, reads:          %10.0f transactions/s (target >= 500 k/s)\n", pick(rate[2]));
        std::printf("  TCP 127.0.0.1, writes + reads: %10.0f transactions/s (posted writes carry a PING fence)\n",
                    pick(rate[3]));
    }
    if (runs("fuzz")) {
        std::printf("fuzz, timer register file, exec = reset + up to 32 operations (one core):\n");
        std::printf("  in process:                    %10.0f execs/s (target >= 50 k/s)\n", fuzz_rate(false, fuzz_execs));
        std::printf("  forked worker (crash-safe):    %10.0f execs/s\n", fuzz_rate(true, fuzz_execs));
    }
    return 0;
}
