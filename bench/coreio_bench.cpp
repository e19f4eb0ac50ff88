// coreio-bench: libcoreio against the physical limit, side by side in one run.
// Rows: sequential read latency, pipelined reads, posted writes, blocking 16 MB
// DMA read and write, IRQ edges raised from a handler.
//
// Two devices with the same register file are driven by two mock VMs: one is
// written with libcoreio (coreio::Client), the other on bare sockets (one recv
// per batch, one send per batch; bare_responder.hpp). Each workload runs on
// both, alternating, several rounds; the median round of each is kept and the
// ratio printed. The machine is shared and noisy: read the ratios, not the times.
//
// The latency and pipelined rows also run a third device: the bare one waiting
// in epoll_wait() before each recv, as any device that watches more than one
// descriptor must (libcoreio watches main, DMA and a wake eventfd). Its line
// shows how much of the gap to the bare device is that one system call.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bare_responder.hpp"
#include "bare_vm.hpp"
#include "best_of.hpp"
#include "register_file.hpp"
#include "coreio/client.hpp"
#include "coreio/mockvm/vm.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using coreio::bench::BareResponder;
using coreio::bench::kKickOffset;

constexpr std::uint64_t kBase = 0xfef00000;
constexpr std::uint64_t kMem = 0x80000000;
constexpr std::size_t kDmaBytes = 16u << 20;

coreio::mockvm::VmConfig vm_config() {
    coreio::mockvm::VmConfig c;
    c.ranges = {{kBase, 0x1000}};
    c.memory = {{kMem, kDmaBytes + 4096}};
    c.timeout = 30s;
    return c;
}

// One device of each kind, each with its own mock VM.
struct Setup {
    coreio::mockvm::Vm vm_ours{vm_config()};
    coreio::mockvm::Vm vm_bare{vm_config()};
    coreio::mockvm::Vm vm_epoll{vm_config()};
    coreio::Client client;
    // The same register file and kick register as the bare responder.
    coreio::bench::RegisterFile regfile{kBase, kKickOffset, [this](std::uint32_t n) {
                                            for (std::uint32_t i = 0; i < n; ++i) {
                                                client.irq_update(0, 0, true);
                                                client.irq_update(0, 0, false);
                                            }
                                        }};
    std::atomic<bool> stop{false};
    std::thread loop;
    std::unique_ptr<BareResponder> bare;
    std::unique_ptr<BareResponder> bare_epoll;  // the bare device, waiting in epoll_wait()

    Setup() {
        if (client.connect(vm_ours.endpoint()) != 0 || client.register_range(0, regfile) != 0)
            throw std::runtime_error("libcoreio client could not connect");
        loop = std::thread([this] {
            while (!stop && client.run_for(20000) == 0) {
            }
        });
        bare = std::make_unique<BareResponder>(vm_bare.port(), kBase);
        bare->start();
        bare_epoll = std::make_unique<BareResponder>(vm_epoll.port(), kBase, BareResponder::Wait::Epoll);
        bare_epoll->start();
        if (!vm_ours.wait_for_claim(0, 5s) || !vm_bare.wait_for_claim(0, 5s) || !vm_epoll.wait_for_claim(0, 5s))
            throw std::runtime_error("a device did not claim its range");
    }
    ~Setup() {
        stop = true;
        loop.join();
        client.disconnect();
    }
};

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check(int r, const char* what) {
    if (r != 0) {
        std::fprintf(stderr, "coreio-bench: %s failed: %d\n", what, r);
        std::exit(1);
    }
}

// Runs ours() and bare() alternately `rounds` times; returns the median seconds of each.
std::pair<double, double> median_of(int rounds, const std::function<double()>& ours,
                                    const std::function<double()>& bare) {
    const auto med = coreio::bench::median_of(rounds, {ours, bare});
    return {med[0], med[1]};
}

// The same for three runs: libcoreio, the bare device, the bare device waiting in epoll.
std::array<double, 3> median_of(int rounds, const std::function<double()>& ours, const std::function<double()>& bare,
                                const std::function<double()>& epoll) {
    const auto med = coreio::bench::median_of(rounds, {ours, bare, epoll});
    return {med[0], med[1], med[2]};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"coreio-bench: libcoreio against a bare-socket responder, side by side"};
    int rounds = 5;
    double scale = 1.0;
    app.add_option("--rounds", rounds,
                   "alternating rounds per workload (the latency rows run 6x as many); each row reports the "
                   "median round of each side")
        ->check(CLI::Range(1, 100));
    app.add_option("--scale", scale, "multiplies every workload's size")->check(CLI::Range(0.01, 100.0));
    std::string only;
    app.add_option("--only", only, "run only workloads whose name contains this text");
    CLI11_PARSE(app, argc, argv);

    Setup s;
    auto n = [&](double base) { return std::max<std::size_t>(1, static_cast<std::size_t>(base * scale)); };

    std::printf("%-34s %14s %14s %8s %s\n", "workload", "libcoreio", "bare", "ratio", "target");
    auto wanted = [&](const char* name) { return only.empty() || std::string(name).find(only) != std::string::npos; };

    // 1. Sequential 4-byte reads: latency (lower is better; ratio ours/bare).
    if (wanted("sequential 4-byte read latency")) {
        // Latency is the most sensitive to the other core's load: many short
        // alternating rounds, so both sides get the quiet moments.
        const std::size_t count = n(2000);
        auto run = [&](coreio::mockvm::Vm& vm) {
            const auto t0 = Clock::now();
            for (std::size_t i = 0; i < count; ++i) check(vm.readl(kBase + (i % 64) * 4).status, "readl");
            return seconds_since(t0);
        };
        auto [o, b, e] = median_of(rounds * 6, [&] { return run(s.vm_ours); }, [&] { return run(s.vm_bare); },
                                   [&] { return run(s.vm_epoll); });
        std::printf("%-34s %11.2f us %11.2f us %8.3f %s\n", "sequential 4-byte read latency", o / static_cast<double>(count) * 1e6,
                    b / static_cast<double>(count) * 1e6, o / b, "<= 1.05");
        std::printf("%-34s %11.2f us %11.2f us %8.3f %s\n", "  same, bare device in epoll_wait", o / static_cast<double>(count) * 1e6,
                    e / static_cast<double>(count) * 1e6, o / e, "(libcoreio / bare device that waits in epoll)");
    }

    // 2. Pipelined reads, 64 outstanding: throughput (ratio ours/bare).
    if (wanted("pipelined reads (64 outstanding)")) {
        const std::size_t count = n(200000);
        std::vector<std::uint64_t> addrs(count), out(count);
        for (std::size_t i = 0; i < count; ++i) addrs[i] = kBase + (i % 256) * 4;
        auto run = [&](coreio::mockvm::Vm& vm) {
            const auto t0 = Clock::now();
            check(vm.read_many(addrs, 4, out, 64), "read_many");
            return seconds_since(t0);
        };
        auto [o, b, e] = median_of(rounds, [&] { return run(s.vm_ours); }, [&] { return run(s.vm_bare); },
                                   [&] { return run(s.vm_epoll); });
        std::printf("%-34s %9.0f k/s %9.0f k/s %8.3f %s\n", "pipelined reads (64 outstanding)", static_cast<double>(count) / o / 1e3,
                    static_cast<double>(count) / b / 1e3, b / o, ">= 0.90");
        std::printf("%-34s %9.0f k/s %9.0f k/s %8.3f %s\n", "  same, bare device in epoll_wait", static_cast<double>(count) / o / 1e3,
                    static_cast<double>(count) / e / 1e3, e / o, "(libcoreio / bare device that waits in epoll)");
    }

    // 3. Posted writes, then one read that proves the device has seen them all.
    if (wanted("posted writes")) {
        const std::size_t count = n(200000);
        std::vector<std::uint64_t> addrs(count), values(count);
        for (std::size_t i = 0; i < count; ++i) {
            addrs[i] = kBase + (i % 256) * 4;
            values[i] = i;
        }
        auto run = [&](coreio::mockvm::Vm& vm) {
            const auto t0 = Clock::now();
            check(vm.write_many(addrs, 4, values, false, 64), "write_many");
            check(vm.readl(kBase).status, "readl");
            return seconds_since(t0);
        };
        auto [o, b] = median_of(rounds, [&] { return run(s.vm_ours); }, [&] { return run(s.vm_bare); });
        std::printf("%-34s %9.0f k/s %9.0f k/s %8.3f %s\n", "posted writes", static_cast<double>(count) / o / 1e3, static_cast<double>(count) / b / 1e3,
                    b / o, ">= 0.90");
    }

    // 4. One blocking 16 MB DMA read (device -> guest memory), then a write (guest memory <- device).
    for (const bool write : {false, true}) {
        const char* name = write ? "blocking 16 MB DMA write" : "blocking 16 MB DMA read";
        if (!wanted(name)) continue;
        std::vector<std::byte> buf(kDmaBytes);
        for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::byte>(i * 7);
        auto ours = [&] {
            const auto t0 = Clock::now();
            check(write ? s.client.dma_write(0, 0, kMem + 1, buf, 0) : s.client.dma_read(0, 0, kMem + 1, buf, 0), name);
            return seconds_since(t0);
        };
        auto bare = [&] {
            const auto t0 = Clock::now();
            check(write ? s.bare->dma_write(kMem + 1, buf) : s.bare->dma_read(kMem + 1, buf), name);
            return seconds_since(t0);
        };
        auto [o, b] = median_of(rounds, ours, bare);
        std::printf("%-34s %10.0f MB/s %9.0f MB/s %8.3f %s\n", name, static_cast<double>(kDmaBytes) / o / 1e6,
                    static_cast<double>(kDmaBytes) / b / 1e6, b / o, ">= 0.80");
    }

    // 6. The mock VM's driver path against a bare VM peer, both driving a bare device.
    if (wanted("mock VM readl round trip") || wanted("mock VM pipelined reads")) {
        coreio::bench::BareVm peer;
        BareResponder device(peer.port(), kBase);
        peer.accept_device();
        device.start();
        if (wanted("mock VM readl round trip")) {
            const std::size_t count = n(2000);
            auto vm = [&] {
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < count; ++i) check(s.vm_bare.readl(kBase + (i % 64) * 4).status, "readl");
                return seconds_since(t0);
            };
            auto bare = [&] {
                const auto t0 = Clock::now();
                std::uint32_t v = 0;
                for (std::size_t i = 0; i < count; ++i) check(peer.readl(kBase + (i % 64) * 4, v), "bare VM readl");
                return seconds_since(t0);
            };
            auto [o, b] = median_of(rounds * 6, vm, bare);
            std::printf("%-34s %11.2f us %11.2f us %8.3f %s\n", "mock VM readl round trip", o / static_cast<double>(count) * 1e6,
                        b / static_cast<double>(count) * 1e6, o / b, "<= 1.10 (mock VM / bare VM peer)");
        }
        if (wanted("mock VM pipelined reads")) {
            const std::size_t count = n(200000);
            std::vector<std::uint64_t> addrs(count), out(count);
            for (std::size_t i = 0; i < count; ++i) addrs[i] = kBase + (i % 256) * 4;
            auto vm = [&] {
                const auto t0 = Clock::now();
                check(s.vm_bare.read_many(addrs, 4, out, 64), "read_many");
                return seconds_since(t0);
            };
            auto bare = [&] {
                const auto t0 = Clock::now();
                check(peer.read_many(addrs, out, 64), "bare VM read_many");
                return seconds_since(t0);
            };
            auto [o, b] = median_of(rounds, vm, bare);
            std::printf("%-34s %9.0f k/s %9.0f k/s %8.3f %s\n", "mock VM pipelined reads (64 out)", static_cast<double>(count) / o / 1e3,
                        static_cast<double>(count) / b / 1e3, b / o, ">= 0.90 (mock VM / bare VM peer)");
        }
    }

    // 5. IRQ edges raised from inside an MMIO handler (the kick register).
    if (wanted("IRQ edges (from a handler)")) {
        const std::uint32_t edges = static_cast<std::uint32_t>(n(200000));
        auto run = [&](coreio::mockvm::Vm& vm) {
            const std::uint64_t before = vm.irq_edges(0, 0);
            const auto t0 = Clock::now();
            check(vm.writel(kBase + kKickOffset, edges), "kick");
            while (vm.irq_edges(0, 0) < before + edges && seconds_since(t0) < 30) std::this_thread::sleep_for(50us);
            if (vm.irq_edges(0, 0) < before + edges) check(-1, "irq edges");
            if (!vm.wait_irq(0, 0, false, 5s)) check(-1, "irq low");
            return seconds_since(t0);
        };
        auto [o, b] = median_of(rounds, [&] { return run(s.vm_ours); }, [&] { return run(s.vm_bare); });
        std::printf("%-34s %9.2f M/s %9.2f M/s %8.3f %s\n", "IRQ edges (from a handler)", static_cast<double>(edges) / o / 1e6,
                    static_cast<double>(edges) / b / 1e6, b / o, ">= 5 M/s (libcoreio)");
    }
    return 0;
}
