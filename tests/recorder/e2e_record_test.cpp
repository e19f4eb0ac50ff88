// The real pieces: mock VM <-> coreio-record proxy <-> libcoreio Client, with the
// client's in-library tap recording too. Both traces must hold the same events.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../trace/test_util.hpp"
#include "coreio/client.hpp"
#include "coreio/mockvm/vm.hpp"
#include "coreio/recorder/proxy.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

namespace {

// A register file device: 16 registers; a write to register 15 starts a DMA write.
class Regs : public MmioHandler {
public:
    explicit Regs(Client& c) : client_(c) {}
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned) override {
        std::memcpy(buf, &regs_[(addr / 4) % 16], std::min<std::size_t>(len, 4));
        return 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) override {
        std::uint32_t v = 0;
        std::memcpy(&v, buf, std::min<std::size_t>(len, 4));
        regs_[(addr / 4) % 16] = v;
        if ((addr / 4) % 16 == 15) {
            const std::byte data[8] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4},
                                       std::byte{5}, std::byte{6}, std::byte{7}, std::byte{8}};
            return client_.dma_write(0, 0, 0x80000000 + v, data, 0);
        }
        return 0;
    }

private:
    Client& client_;
    std::uint32_t regs_[16] = {};
};

// A mock VM, a recording proxy in front of it, and a trace writer for an
// in-library tap: what the two-vantage-point tests below share.
struct ProxiedVm {
    explicit ProxiedVm(const std::string& name, std::vector<mockvm::MemoryRegionConfig> memory = {})
        : vm(config(std::move(memory))), proxy_path(temp_path(name + "-proxy")), tap_path(temp_path(name + "-tap")) {}
    static mockvm::VmConfig config(std::vector<mockvm::MemoryRegionConfig> memory) {
        mockvm::VmConfig vc;
        vc.ranges = {{0x10000000, 0x1000}};
        vc.memory = std::move(memory);
        vc.log = [](std::string_view) {};
        return vc;
    }
    /// Starts the proxy and opens the tap's file; "" or what failed.
    std::string start() {
        recorder::ProxyOptions po;
        po.target = vm.endpoint();
        po.output = proxy_path;
        po.log = [](std::string_view) {};
        if (std::string e = proxy.start(po); !e.empty()) return e;
        proxy.run_in_thread();
        return tap_writer.open(tap_path, {});
    }
    mockvm::Vm vm;
    const std::string proxy_path, tap_path;
    recorder::RecordingProxy proxy;
    TraceWriter tap_writer;
};

}  // namespace

TEST(EndToEndRecording, ProxyAndInLibraryTapSeeTheSameEvents) {
    ProxiedVm rig("e2e", {{0x80000000, 0x10000}});
    ASSERT_EQ(rig.start(), "");
    mockvm::Vm& vm = rig.vm;
    recorder::RecordingProxy& proxy = rig.proxy;
    TraceWriter& tap_writer = rig.tap_writer;
    const std::string &proxy_path = rig.proxy_path, &tap_path = rig.tap_path;
    {
        TraceTap tap(tap_writer);
        ClientOptions co;
        co.tap = &tap;
        co.log = [](std::string_view) {};
        co.dma_timeout = std::chrono::milliseconds(5000);
        Client client(co);
        ASSERT_EQ(client.connect("127.0.0.1:" + std::to_string(proxy.port())), 0);
        Regs regs(client);
        ASSERT_EQ(client.register_range(0, regs), 0);
        std::atomic<bool> stop{false};
        std::thread loop([&] {
            while (!stop) client.run_for(10'000);
        });
        ASSERT_TRUE(vm.wait_for_claim(0, std::chrono::milliseconds(5000)));
        EXPECT_EQ(vm.writel(0x10000004, 42, true), 0);
        EXPECT_EQ(vm.readl(0x10000004).value, 42u);
        EXPECT_EQ(vm.writel(0x10000008, 7), 0);  // posted
        EXPECT_EQ(vm.readl(0x10000008).value, 7u);
        EXPECT_EQ(vm.writel(0x1000003c, 0x100, true), 0);  // starts a DMA
        EXPECT_EQ(client.irq_update(0, 3, true), 0);
        // Wait for the VM to see it, so the next read comes after it from both vantage points.
        EXPECT_TRUE(vm.wait_irq(0, 3, true, std::chrono::milliseconds(5000)));
        EXPECT_EQ(vm.readl(0x10000000).value, 0u);
        stop = true;
        loop.join();
        client.disconnect();
    }
    EXPECT_EQ(tap_writer.close(), "");
    for (int i = 0; i < 500 && proxy.records() < 12; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    proxy.stop();

    ReadAll p = read_file(proxy_path), t = read_file(tap_path);
    ASSERT_EQ(p.status, ReadStatus::End) << p.message;
    ASSERT_EQ(t.status, ReadStatus::End) << t.message;
    // The typed events, without connections (their timing differs between the two vantage points).
    auto typed = [](ReadAll& r) {
        std::vector<Event> v;
        for (auto& o : r.events)
            if (o.ev.kind != EventKind::Connection) v.push_back(o.event());
        return v;
    };
    const auto pe = typed(p), te = typed(t);
    ASSERT_EQ(pe.size(), te.size());
    for (std::size_t i = 0; i < pe.size(); ++i) {
        const Difference d = compare_events(pe[i], te[i]);
        EXPECT_TRUE(d.field.empty()) << "event " << i << ": " << d.field << " " << d.a << " vs " << d.b << "\n  "
                                     << format_event(pe[i]) << "\n  " << format_event(te[i]);
    }
    // What they hold: claim, 5 MMIO, a DMA caused by the doorbell write, the IRQ.
    std::vector<std::string> kinds;
    for (const Event& e : pe) kinds.push_back(kind_name(e.kind));
    const std::vector<std::string> want = {"claim", "mmio", "mmio", "mmio", "mmio", "mmio", "dma", "irq", "mmio"};
    ASSERT_EQ(kinds, want);
    EXPECT_EQ(pe[1].op, Op::WriteAck);
    EXPECT_EQ(data_value({pe[2].data.data(), 4}), 42u);
    EXPECT_EQ(pe[3].op, Op::Write);
    EXPECT_EQ(pe[6].address, 0x80000100u);
    EXPECT_EQ(pe[6].status, Status::Complete);
    ASSERT_NE(pe[6].cause, kNoCause);
    EXPECT_EQ(p.events[pe[6].cause].ev.address, 0x1000003cu);  // the doorbell write caused it
}

// A device that takes 2 ms to answer a read: a recording must show that as the
// transaction's latency, whichever way it records (the in-library tap gets a
// receive's frames in one batch: the requests keep the time they came in, the
// replies the time they went out), one read at a time and pipelined.
TEST(EndToEndRecording, LatencyOfASlowDeviceIsRecorded) {
    struct Slow : MmioHandler {
        int read(std::uint64_t, std::size_t len, void* buf, unsigned) override {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            std::memset(buf, 0x5a, len);
            return 0;
        }
        int write(std::uint64_t, std::size_t, const void*, unsigned) override { return 0; }
    };
    ProxiedVm rig("slow");
    ASSERT_EQ(rig.start(), "");
    mockvm::Vm& vm = rig.vm;
    recorder::RecordingProxy& proxy = rig.proxy;
    TraceWriter& tap_writer = rig.tap_writer;
    const std::string &proxy_path = rig.proxy_path, &tap_path = rig.tap_path;
    {
        TraceTap tap(tap_writer);
        ClientOptions co;
        co.tap = &tap;
        co.log = [](std::string_view) {};
        Client client(co);
        ASSERT_EQ(client.connect("127.0.0.1:" + std::to_string(proxy.port())), 0);
        Slow slow;
        ASSERT_EQ(client.register_range(0, slow), 0);
        std::atomic<bool> stop{false};
        std::thread loop([&] {
            while (!stop) client.run_for(10'000);
        });
        ASSERT_TRUE(vm.wait_for_claim(0, std::chrono::milliseconds(5000)));
        for (int i = 0; i < 3; ++i) EXPECT_EQ(vm.readl(0x10000000 + 4 * i).value, 0x5a5a5a5au);
        const std::vector<std::uint64_t> addrs = {0x10000010, 0x10000014, 0x10000018, 0x1000001c};
        std::vector<std::uint64_t> out(addrs.size());
        EXPECT_EQ(vm.read_many(addrs, 4, out, 4), 0);
        stop = true;
        loop.join();
        client.disconnect();
    }
    EXPECT_EQ(tap_writer.close(), "");
    for (int i = 0; i < 500 && proxy.records() < 9; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    proxy.stop();
    for (const std::string& path : {tap_path, proxy_path}) {
        SCOPED_TRACE(path == tap_path ? "in-library tap" : "proxy");
        ReadAll r = read_file(path);
        ASSERT_EQ(r.status, ReadStatus::End) << r.message;
        int reads = 0;
        for (auto& o : r.events) {
            if (o.ev.kind != EventKind::Mmio) continue;
            ++reads;
            EXPECT_EQ(o.ev.status, Status::Complete);
            EXPECT_GE(o.ev.reply_after_ns, 2'000'000u) << format_event(o.event());
        }
        EXPECT_EQ(reads, 7);
    }
}

// Not a test (speed varies by machine): run with --gtest_also_run_disabled_tests
// to print pipelined throughput direct, through the proxy, and with the tap.
TEST(EndToEndRecording, DISABLED_MeasureCost) {
    auto measure = [](int mode) {  // 0 direct, 1 proxy, 2 in-library tap
        mockvm::VmConfig vc;
        vc.ranges = {{0x10000000, 0x1000}};
        vc.log = [](std::string_view) {};
        mockvm::Vm vm(vc);
        recorder::RecordingProxy proxy;
        std::string target = vm.endpoint();
        if (mode == 1) {
            recorder::ProxyOptions po;
            po.target = vm.endpoint();
            po.output = temp_path("bench-proxy");
            EXPECT_EQ(proxy.start(po), "");
            proxy.run_in_thread();
            target = "127.0.0.1:" + std::to_string(proxy.port());
        }
        TraceWriter w;
        std::unique_ptr<TraceTap> tap;
        if (mode == 2) {
            EXPECT_EQ(w.open(temp_path("bench-tap"), {}), "");
            tap = std::make_unique<TraceTap>(w);
        }
        ClientOptions co;
        co.tap = tap.get();
        Client client(co);
        EXPECT_EQ(client.connect(target), 0);
        Regs regs(client);
        EXPECT_EQ(client.register_range(0, regs), 0);
        std::atomic<bool> stop{false};
        std::thread loop([&] {
            while (!stop) client.run_for(10'000);
        });
        EXPECT_TRUE(vm.wait_for_claim(0, std::chrono::milliseconds(5000)));
        constexpr std::size_t n = 200'000;
        std::vector<std::uint64_t> addrs(n), out(n);
        for (std::size_t i = 0; i < n; ++i) addrs[i] = 0x10000000 + (i % 8) * 4;
        // Round trip: one read at a time.
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 2000; ++i) (void)vm.readl(0x10000000);
        const auto t1 = std::chrono::steady_clock::now();
        EXPECT_EQ(vm.read_many(addrs, 4, out, 64), 0);
        const auto t2 = std::chrono::steady_clock::now();
        stop = true;
        loop.join();
        client.disconnect();
        const double rtt_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / 2000;
        const double rate = n / std::chrono::duration<double>(t2 - t1).count();
        return std::pair{rtt_us, rate};
    };
    for (int round = 0; round < 2; ++round) {
        const auto d = measure(0), p = measure(1), t = measure(2);
        std::printf("direct: %.1f us RTT, %.0f reads/s | proxy: %.1f us RTT (+%.1f), %.0f reads/s (%.2fx) | "
                    "tap: %.1f us RTT, %.0f reads/s (%.2fx)\n",
                    d.first, d.second, p.first, p.first - d.first, p.second, p.second / d.second, t.first, t.second,
                    t.second / d.second);
    }
}
