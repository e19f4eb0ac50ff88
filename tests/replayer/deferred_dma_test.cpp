// A device on the C API that starts its DMA from its main loop after a posted
// write returned (deferred_dma_device.c), recorded under the mock VM and
// replayed over TCP: the replay must wait for the DMA and IRQ the trace shows
// before it sends the next request, not call them missing.
#include <gtest/gtest.h>

#include "coreio/replayer/process.hpp"
#include "coreio/replayer/replay.hpp"
#include "replay_util.hpp"

using namespace coreio;
using namespace coreio::replayer;
using namespace coreio::testing;

namespace {

/// The C device as a process connected to `target` (killed with its group when `dev` goes).
bool start_device(replayer::DeviceProcess& dev, const std::string& target) {
    return dev.start("'" COREIO_DEFERRED_DMA_BIN "' \"$COREHDL_VM\"", target) == 0;
}

constexpr std::uint64_t kSrc = kMem + 0x100;

std::string record(const std::string& path) {
    return record_mockvm_trace(path, [](mockvm::Vm& vm) -> std::string {
        for (unsigned i = 0; i < 16; ++i) vm.memory().write(kSrc + i, std::as_bytes(std::span(&i, 1)).first(1));
        replayer::DeviceProcess dev;
        if (!start_device(dev, vm.endpoint())) return "cannot start " COREIO_DEFERRED_DMA_BIN;
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
        return "";
    });
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
        replayer::DeviceProcess dev;
        ASSERT_TRUE(start_device(dev, "127.0.0.1:" + std::to_string(link.port())));
        ASSERT_EQ(link.accept(std::chrono::seconds(10)), 0);
        const ReplayReport rep = player.run(sc, link);
        EXPECT_TRUE(rep.passed()) << rep.summary();
        EXPECT_EQ(rep.counts.dmas, 3u);
        EXPECT_EQ(rep.counts.irqs, 6u);
    }
    std::remove(path.c_str());
}

}  // namespace
