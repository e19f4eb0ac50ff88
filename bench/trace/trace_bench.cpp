// coreio-bench-trace: what recording costs, side by side in one run.
//
// Four identical register-file devices (libcoreio Clients), each driven by its
// own mock VM: one connected directly, one through an in-process
// RecordingProxy, one through a bare forwarder that records nothing (the
// floor of any proxy: bare_forwarder.hpp), one directly with the in-library
// tap (ClientOptions::tap = a TraceTap writing a temp file). Each workload runs on all three in turn,
// several rounds; the median round of each is printed, and the median of the
// per-round ratios. The
// machine is shared and noisy: read the ratios, not the times. Pipelined
// workloads also print the process CPU time per read of each path (steadier
// than the wall clock under other people's load); --control adds a second
// direct device, whose ratio against the first shows how large the noise is.
//
// What bounds the pipelined rows: the mock VM's 64-read window moves in lock
// step (one send out, one recv back), so each window costs a round trip. A
// proxy adds two hops (two more thread wake-ups) to each, as to a sequential
// read, so its pipelined ratio is about direct round trip / proxy round trip
// (the "64-read window" times): the bare forwarder's row shows that bound,
// and "proxy / forwarder" what recording adds to it. The tap's work on a window's frames (~50-70 ns
// a transaction) runs on the device's thread after the replies went out, and
// the next window can arrive before it ends.
//
// "tap cost per transaction" feeds frames straight to a TraceTap: the tap's
// own cost, without sockets; "batched" gives them as a ClientSession does
// (one on_frames() per receive: one lock, no clock reading per frame).
//
// Then a register-access workload (driver-style reads and posted writes) is
// recorded by the tap without raw frames and its bytes per MMIO transaction
// printed, read back from the file.
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "coreio/client.hpp"
#include "coreio/mockvm/vm.hpp"
#include "coreio/recorder/proxy.hpp"
#include "coreio/trace/reader.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"
#include "../register_file.hpp"
#include "bare_forwarder.hpp"
#include "rounds.hpp"

namespace {

using coreio::bench::Rounds;

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::uint64_t kBase = 0xfef00000;
constexpr std::size_t kRegBytes = coreio::bench::RegisterFile::kBytes;

coreio::mockvm::VmConfig vm_config() {
    coreio::mockvm::VmConfig c;
    c.ranges = {{kBase, kRegBytes}};
    c.timeout = 30s;
    return c;
}

std::string temp_file(const char* stem) {
    return (std::filesystem::temp_directory_path() /
            (std::string("coreio-bench-") + stem + "-" + std::to_string(::getpid()) + ".ctrace"))
        .string();
}

// How a device reaches its VM.
enum class Path { Direct, Proxy, Forwarder, Tap };

// One mock VM and one libcoreio device, connected as `path` says.
struct Device {
    coreio::mockvm::Vm vm{vm_config()};
    coreio::recorder::RecordingProxy proxy;
    std::unique_ptr<coreio::bench::BareForwarder> forwarder;
    coreio::trace::TraceWriter writer;
    std::unique_ptr<coreio::trace::TraceTap> tap;
    std::unique_ptr<coreio::Client> client;
    coreio::bench::RegisterFile regs{kBase};
    std::atomic<bool> stop{false};
    std::thread loop;
    std::string trace_path;

    Device(Path path, const char* stem) {
        std::string target = vm.endpoint();
        coreio::ClientOptions co;
        if (path == Path::Proxy) {
            trace_path = temp_file(stem);
            coreio::recorder::ProxyOptions po;
            po.target = vm.endpoint();
            po.output = trace_path;
            po.log = [](std::string_view) {};
            if (std::string e = proxy.start(po); !e.empty()) throw std::runtime_error("proxy: " + e);
            proxy.run_in_thread();
            target = "127.0.0.1:" + std::to_string(proxy.port());
        } else if (path == Path::Forwarder) {
            const std::string vm_port = target.substr(target.rfind(':') + 1);
            forwarder = std::make_unique<coreio::bench::BareForwarder>(static_cast<std::uint16_t>(std::stoi(vm_port)));
            target = "127.0.0.1:" + std::to_string(forwarder->port());
        } else if (path == Path::Tap) {
            trace_path = temp_file(stem);
            coreio::trace::TraceHeader h;
            h.tool = "coreio-bench-trace";
            h.observer = coreio::trace::Observer::Client;
            if (std::string e = writer.open(trace_path, h); !e.empty()) throw std::runtime_error("trace: " + e);
            tap = std::make_unique<coreio::trace::TraceTap>(writer);
            co.tap = tap.get();
        }
        client = std::make_unique<coreio::Client>(co);
        if (client->connect(target) != 0 || client->register_range(0, regs) != 0)
            throw std::runtime_error(std::string("device ") + stem + " could not connect");
        loop = std::thread([this] {
            while (!stop && client->run_for(20000) == 0) {
            }
        });
        if (!vm.wait_for_claim(0, 5s)) throw std::runtime_error(std::string("device ") + stem + " did not claim");
    }
    ~Device() {
        stop = true;
        loop.join();
        client->disconnect();
        client.reset();
        tap.reset();
        writer.close();
        proxy.stop();
        forwarder.reset();
        if (!trace_path.empty()) std::filesystem::remove(trace_path);
    }
};

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check(int r, const char* what) {
    if (r != 0) {
        std::fprintf(stderr, "coreio-bench-trace: %s failed: %d\n", what, r);
        std::exit(1);
    }
}

// CPU time of the whole process so far (all threads, user + system), seconds.
double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
    return sec(u.ru_utime) + sec(u.ru_stime);
}


// Bytes per MMIO transaction of a trace file (records only), read back with the reader.
struct TraceSize {
    std::uint64_t transactions = 0;  // MMIO records
    std::uint64_t others = 0;        // every other record (connections, claims)
    double bytes_per_transaction = 0;
};

TraceSize measure_file(const std::string& path, std::uint64_t record_bytes) {
    coreio::trace::TraceReader r;
    if (std::string e = r.open(path); !e.empty()) {
        std::fprintf(stderr, "coreio-bench-trace: %s\n", e.c_str());
        std::exit(1);
    }
    TraceSize s;
    coreio::trace::Event ev;
    coreio::trace::ReadStatus st;
    while ((st = r.next(ev)) == coreio::trace::ReadStatus::Record) {
        if (ev.kind == coreio::trace::EventKind::Mmio && ev.status == coreio::trace::Status::Complete)
            ++s.transactions;
        else
            ++s.others;
    }
    if (st != coreio::trace::ReadStatus::End) {
        std::fprintf(stderr, "coreio-bench-trace: reading back %s: %s\n", path.c_str(), r.message().c_str());
        std::exit(1);
    }
    s.bytes_per_transaction = static_cast<double>(record_bytes) / static_cast<double>(std::max<std::uint64_t>(1, s.transactions));
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"coreio-bench-trace: recording proxy and in-library tap against a direct connection"};
    int rounds = 5;
    double scale = 1.0;
    app.add_option("--rounds", rounds, "rounds per workload, each path in turn (median reported)")->check(CLI::Range(1, 100));
    app.add_option("--scale", scale, "multiplies every workload's size")->check(CLI::Range(0.01, 100.0));
    std::string only;
    app.add_option("--only", only, "run only workloads whose name contains this text");
    bool control = false;
    app.add_flag("--control", control, "also time a second direct device (direct vs direct shows the noise floor)");
    CLI11_PARSE(app, argc, argv);
    auto n = [&](double base) { return std::max<std::size_t>(1, static_cast<std::size_t>(base * scale)); };
    auto wanted = [&](const char* name) { return only.empty() || std::string(name).find(only) != std::string::npos; };

    Device direct(Path::Direct, "direct"), proxied(Path::Proxy, "proxy"), tapped(Path::Tap, "tap"),
        forwarded(Path::Forwarder, "forwarder");
    std::unique_ptr<Device> direct2;
    if (control) direct2 = std::make_unique<Device>(Path::Direct, "direct2");

    std::printf("%-28s %14s %14s %8s %s\n", "workload", "recording", "direct", "ratio", "target");

    // Pipelined 4-byte reads, 64 outstanding: throughput through the proxy and with the tap.
    if (wanted("pipelined reads")) {
        const std::size_t count = n(200000);
        std::vector<std::uint64_t> addrs(count), out(count);
        for (std::size_t i = 0; i < count; ++i) addrs[i] = kBase + (i % 256) * 4;
        // Process CPU time (every thread, user + system) per run too: unlike
        // the wall clock it hardly moves with other people's load, and with
        // every stage of the pipeline on two cores it bounds the throughput.
        std::vector<std::vector<double>> cpu(5);  // [path][round]
        auto run = [&](Device& d, std::size_t k) {
            return [&, k] {
                const double c0 = cpu_seconds();
                const auto t0 = Clock::now();
                check(d.vm.read_many(addrs, 4, out, 64), "read_many");
                const double s = seconds_since(t0);
                cpu[k].push_back(cpu_seconds() - c0);
                return s;
            };
        };
        std::vector<std::function<double()>> runs{run(direct, 0), run(proxied, 1), run(tapped, 2), run(forwarded, 3)};
        if (direct2) runs.push_back(run(*direct2, 4));
        const Rounds r(rounds, runs);
        const double c = static_cast<double>(count);
        // The window moves in lock step (64 requests out in one send, their 64
        // replies back in one recv), so the time per window is a round trip:
        // what a proxy's two extra hops add shows there, as in the sequential rows.
        auto line = [&](const char* name, std::size_t k, const char* target) {
            std::vector<double> cpu_ratio;
            for (std::size_t i = 0; i < cpu[k].size(); ++i) cpu_ratio.push_back(cpu[0][i] / cpu[k][i]);
            const double window_us = 64.0 * 1e6 / c;
            std::printf("%-28s %9.0f k/s %9.0f k/s %8.3f %-8s cpu: %.2f vs %.2f us/read, ratio %.3f; 64-read window: "
                        "%.1f vs %.1f us\n",
                        name, c / r.median(k) / 1e3, c / r.median(0) / 1e3, r.median_ratio(0, k), target,
                        Rounds::median_of(cpu[k]) / c * 1e6, Rounds::median_of(cpu[0]) / c * 1e6,
                        Rounds::median_of(cpu_ratio), r.median(k) * window_us, r.median(0) * window_us);
        };
        if (direct2) line("control pipelined reads", 4, "(noise)");
        line("proxy pipelined reads", 1, ">= 0.80");
        line("  bare forwarder, no record", 3, "(floor)");
        std::printf("%-28s %14s %14s %8.3f %s\n", "  proxy / bare forwarder", "", "", r.median_ratio(3, 1),
                    "(what recording costs the proxy)");
        line("tap pipelined reads", 2, ">= 0.95");
    }

    // Sequential 4-byte reads: the round trip the proxy adds (lower is better; ratio recording/direct).
    if (wanted("sequential reads")) {
        const std::size_t count = n(20000);
        auto run = [&](Device& d) {
            return [&] {
                const auto t0 = Clock::now();
                for (std::size_t i = 0; i < count; ++i) check(d.vm.readl(kBase + (i % 64) * 4).status, "readl");
                return seconds_since(t0) / static_cast<double>(count) * 1e6;
            };
        };
        std::vector<std::function<double()>> runs{run(direct), run(proxied), run(tapped), run(forwarded)};
        if (direct2) runs.push_back(run(*direct2));
        const Rounds r(rounds, runs);
        if (direct2)
            std::printf("%-28s %11.2f us %11.2f us %8.3f %s\n", "control sequential read", r.median(4), r.median(0),
                        r.median_ratio(4, 0), "(direct vs direct: the noise)");
        // A separate process cannot answer sooner than one more loopback hop each way.
        std::printf("%-28s %11.2f us %11.2f us %8.3f +%.2f us round trip (one more loopback hop: the floor for a proxy)\n",
                    "proxy sequential read", r.median(1), r.median(0), r.median_ratio(1, 0), r.median(1) - r.median(0));
        std::printf("%-28s %11.2f us %11.2f us %8.3f +%.2f us round trip (records nothing); proxy / forwarder %.3f\n",
                    "  bare forwarder, no record", r.median(3), r.median(0), r.median_ratio(3, 0),
                    r.median(3) - r.median(0), r.median_ratio(1, 3));
        std::printf("%-28s %11.2f us %11.2f us %8.3f +%.2f us round trip\n", "tap sequential read", r.median(2),
                    r.median(0), r.median_ratio(2, 0), r.median(2) - r.median(0));
    }

    // The tap alone: frames fed straight to a TraceTap (64 requests, then their
    // 64 replies, as a pipelined client sees them), nanoseconds per transaction.
    if (wanted("tap cost")) {
        const std::size_t count = n(1000000) / 64 * 64 + 64;
        std::vector<coreio::Frame> requests(64), replies(64);
        auto make_frames = [&](std::size_t i) {
            for (std::uint32_t k = 0; k < 64; ++k) {
                const auto tag = static_cast<std::uint32_t>(i + k);
                requests[k] = coreio::Frame::mmio_request(coreio::Op::Read, 0, kBase + (tag % 256) * 4, 4, 0, tag);
                replies[k] = requests[k];
                std::memcpy(replies[k].payload(), &tag, 4);
            }
        };
        const std::string path = temp_file("tapcost");
        auto run = [&] {
            coreio::trace::TraceWriter w;
            if (std::string e = w.open(path, {}); !e.empty()) check(-1, e.c_str());
            coreio::trace::TraceTap tap(w);
            const auto t0 = Clock::now();
            for (std::size_t i = 0; i < count; i += 64) {
                make_frames(i);
                for (const auto& f : requests) tap.on_frame(coreio::Channel::Main, coreio::Direction::Received, f.bytes());
                for (const auto& f : replies) tap.on_frame(coreio::Channel::Main, coreio::Direction::Sent, f.bytes());
            }
            tap.finish();
            w.flush();
            const double s = seconds_since(t0);
            w.close();
            return s;
        };
        // The same frames as one batch per 64 transactions, as a ClientSession gives them.
        std::vector<coreio::TapFrame> batch(128);
        // `paired`: each request directly followed by its reply, as a device
        // that answers in its handler gives them; else 64 requests, then 64 replies.
        auto batched = [&](bool paired) {
            coreio::trace::TraceWriter w;
            if (std::string e = w.open(path, {}); !e.empty()) check(-1, e.c_str());
            coreio::trace::TraceTap tap(w);
            const auto t0 = Clock::now();
            for (std::size_t i = 0; i < count; i += 64) {
                make_frames(i);
                for (std::size_t k = 0; k < 64; ++k) {
                    batch[paired ? 2 * k : k] = {coreio::Channel::Main, coreio::Direction::Received, requests[k]};
                    batch[paired ? 2 * k + 1 : 64 + k] = {coreio::Channel::Main, coreio::Direction::Sent, replies[k]};
                }
                const auto now = Clock::now();
                tap.on_frames(coreio::TapBatch{batch, now, now});
            }
            tap.finish();
            w.flush();
            const double s = seconds_since(t0);
            w.close();
            return s;
        };
        // Making the frames, timed alone, is taken off.
        auto frames_only = [&] {
            const auto t0 = Clock::now();
            for (std::size_t i = 0; i < count; i += 64) {
                make_frames(i);
                asm volatile("" ::"r"(requests.data()), "r"(replies.data()) : "memory");
            }
            return seconds_since(t0);
        };
        const Rounds r(rounds, {run, [&] { return batched(false); }, frames_only, [&] { return batched(true); }});
        std::filesystem::remove(path);
        std::printf("%-28s %11.0f ns %14s %8s %s\n", "tap cost per transaction",
                    (r.median(0) - r.median(2)) / static_cast<double>(count) * 1e9, "", "", "(request + reply frame)");
        std::printf("%-28s %11.0f ns %14s %8s %s\n", "tap cost, batched",
                    (r.median(1) - r.median(2)) / static_cast<double>(count) * 1e9, "", "",
                    "(the same, 64 transactions per on_frames(): requests, then replies)");
        std::printf("%-28s %11.0f ns %14s %8s %s\n", "tap cost, batched, paired",
                    (r.median(3) - r.median(2)) / static_cast<double>(count) * 1e9, "", "",
                    "(each request followed by its reply, as a ClientSession whose handler answers at once)");
    }

    // Bytes per MMIO transaction: a driver-style register workload recorded by the tap, no raw frames.
    if (wanted("bytes per transaction")) {
        Device rec(Path::Tap, "size");
        const std::size_t iterations = n(5000);
        for (std::size_t i = 0; i < iterations; ++i) {
            // Poll a status register, program two registers, kick, read back a result.
            check(rec.vm.readl(kBase + 0x00).status, "readl");
            check(rec.vm.writel(kBase + 0x08, i & 0xffff), "writel");
            check(rec.vm.writel(kBase + 0x0c, 0x1000 + 16 * i), "writel");
            check(rec.vm.writel(kBase + 0x04, 1), "writel");
            check(rec.vm.readl(kBase + 0x10).status, "readl");
        }
        check(rec.vm.readl(kBase).status, "readl");  // the device has handled every posted write
        rec.tap->finish();
        rec.writer.flush();
        const std::uint64_t record_bytes = rec.writer.record_bytes();
        const TraceSize s = measure_file(rec.trace_path, record_bytes);
        std::printf("%-28s %11.1f B  %14s %8s %s  (%llu transactions, %llu other records)\n",
                    "bytes per MMIO transaction", s.bytes_per_transaction, "", "", "<= 24",
                    static_cast<unsigned long long>(s.transactions), static_cast<unsigned long long>(s.others));
    }
    return 0;
}
