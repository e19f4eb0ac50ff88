// A device on the C API that starts its DMA from its main loop after a posted
// write returned (deferred_dma_device.c), recorded under the mock VM and
// replayed over TCP: the replay must wait for the DMA and IRQ the trace shows
// before it sends the next request, not call them missing.
#include <gtest/gtest.h>

#include <csignal>
#include <spawn.h>
#include <sys/wait.h>

#include "coreio/replayer/replay.hpp"
#include "replay_util.hpp"

extern char** environ;

using namespace coreio;
using namespace coreio::replayer;
using namespace coreio::testing;

namespace {

/// The C device as a process connected to `target`; killed and reaped on destruction.
class DeviceProcess {
public:
    explicit DeviceProcess(const std::string& target) {
        std::string bin = COREIO_DEFERRED_DMA_BIN;
        char* argv[] = {bin.data(), const_cast<char*>(target.c_str()), nullptr};
        if (::posix_spawn(&pid_, bin.c_str(), nullptr, nullptr, argv, environ) != 0) pid_ = -1;
    }
    ~DeviceProcess() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    bool started() const { return pid_ > 0; }

private:
    pid_t pid_ = -1;
};

constexpr std::uint64_t kSrc = kMem + 0x100;

std::string record(const std::string& path) {
    trace::TraceWriter writer;
    trace::TraceHeader h;
    h.tool = "deferred-dma-test";
    h.observer = trace::Observer::Vm;
    h.ranges = {{0, kBase, 0x1000, "dev"}};
    h.memory = {{0, 0, kMem, kMemSize, "ram"}};
    if (std::string err = writer.open(path, h); !err.empty()) return err;
    {
        trace::TapOptions to;
        to.observer = trace::Observer::Vm;
        trace::TraceTap tap(writer, to);
        mockvm::VmConfig c;
        c.ranges = {{kBase, 0x1000}};
        c.memory = {{kMem, kMemSize}};
        c.tap = &tap;
        c.log = [](std::string_view) {};
        c.timeout = std::chrono::seconds(10);
        mockvm::Vm vm(c);
        for (unsigned i = 0; i < 16; ++i) vm.memory().write(kSrc + i, std::as_bytes(std::span(&i, 1)).first(1));
        DeviceProcess dev(vm.endpoint());
        if (!dev.started()) return "cannot start " COREIO_DEFERRED_DMA_BIN;
        if (!vm.wait_for_claim(0, std::chrono::seconds(10))) return "device did not claim";
        for (int round = 0; round < 3; ++round) {
            vm.writeq(kBase + 0x00, kSrc);
            vm.writeq(kBase + 0x08, 1);  // posted: the DMA starts after it returns
            if (!vm.wait_irq(0, 0, true, std::chrono::seconds(10))) return "no IRQ while recording";
            if (vm.readq(kBase + 0x10).value != 120) return "wrong status while recording";
            vm.writeq(kBase + 0x18, 1);
            if (!vm.wait_irq(0, 0, false, std::chrono::seconds(10))) return "IRQ stayed high while recording";
        }
        vm.ping();
        vm.drop_clients();
        tap.finish();
    }
    return writer.close();
}

TEST(DeferredDma, ReplayWaitsForDeviceRecordsTheTraceShowsBeforeTheNextRequest) {
    const std::string path = temp_path("deferred-dma");
    ASSERT_EQ(record(path), "");
    Scenario sc;
    ASSERT_EQ(load_scenario(path, sc), "");
    ASSERT_EQ(sc.dmas.size(), 3u);
    ASSERT_EQ(sc.irqs.size(), 6u);
    for (int run = 0; run < 3; ++run) {
        ReplayOptions o;
        o.timeout = std::chrono::seconds(10);
        Player player(o, sc.ranges, sc.memory);
        TcpLink link(player, {});
        DeviceProcess dev("127.0.0.1:" + std::to_string(link.port()));
        ASSERT_TRUE(dev.started());
        ASSERT_EQ(link.accept(std::chrono::seconds(10)), 0);
        const ReplayReport rep = player.run(sc, link);
        EXPECT_TRUE(rep.passed()) << rep.summary();
        EXPECT_EQ(rep.counts.dmas, 3u);
        EXPECT_EQ(rep.counts.irqs, 6u);
    }
    std::remove(path.c_str());
}

}  // namespace
