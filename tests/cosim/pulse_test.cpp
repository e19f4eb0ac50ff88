// A one-cycle interrupt pulse from RTL (apb_zero_wait's `pulse`), driven
// through the mock VM by a script as a user would: a level wait misses it,
// irq_wait_edge and irq_count catch it, every time.
#include <atomic>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "apb-zero-wait_model.hpp"
#include "coreio/cosim/bridge.hpp"
#include "coreio/mockvm/script.hpp"
#include "coreio/mockvm/vm.hpp"

using namespace coreio::cosim;
using namespace std::chrono_literals;
namespace mockvm = coreio::mockvm;

namespace {

constexpr std::uint64_t kBase = 0x10000000;

/// apb_zero_wait as a device of `vm` on its own thread, clocked at `idle_rate` between accesses.
class PulseDevice {
public:
    PulseDevice(mockvm::Vm& vm, std::uint64_t idle_rate)
        : model_(models::make_apb_zero_wait(std::nullopt)),
          bridge_(*model_, options(), [this](unsigned line, bool level) { client_.irq_update(0, line, level); },
                  nullptr) {
        EXPECT_EQ(client_.connect(vm.endpoint()), 0);
        EXPECT_EQ(client_.register_range(0, bridge_), 0);
        EXPECT_TRUE(vm.wait_for_claim(0, 5000ms));
        thread_ = std::thread([this, idle_rate] { serve(client_, bridge_, ServeOptions{idle_rate}, stop_); });
    }
    ~PulseDevice() {
        stop_ = true;
        thread_.join();
        client_.disconnect();
    }

private:
    static BridgeOptions options() {
        BridgeOptions o;
        o.base = kBase;
        o.range_size = 0x10000;
        o.addr_bits = models::apb_zero_wait_defaults.addr_bits;
        return o;
    }
    std::unique_ptr<Model> model_;
    coreio::Client client_;
    Bridge bridge_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

mockvm::VmConfig vm_config() {
    mockvm::VmConfig c;
    c.ranges = {{kBase, 0x10000}};
    c.timeout = 5000ms;
    c.log = [](std::string_view) {};
    return c;
}

}  // namespace

TEST(RtlPulse, LevelWaitMissesItEdgeCommandsCatchIt) {
    // Clock frozen between accesses: the pulse armed by the write fires and
    // ends inside the next access, before its reply, so the outcome is fixed.
    mockvm::Vm vm(vm_config());
    PulseDevice dev(vm, 0);
    std::ostringstream out;
    const auto r = mockvm::run_script(vm, mockvm::parse_script(R"(
writel 0x10000008 1
readl 0x10000000 expect 0x5a45524f
irq_wait 0 0 1 50
irq_wait_edge 0 0 rising 5000
irq_wait_edge 0 0 falling 5000
irq_count 0 0 expect 1
irq_wait_edge 0 0 rising 50
)", "pulse.script"), out);
    EXPECT_EQ(r.failures, 2u) << out.str();
    EXPECT_NE(out.str().find("FAIL pulse.script:4: irq_wait 0 0 1: timed out"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("FAIL pulse.script:8: irq_wait_edge 0 0 rising: no such edge"), std::string::npos)
        << out.str();
}

TEST(RtlPulse, EdgeWaitCatchesAPulseFromTheIdleClockTenTimesOfTen) {
    // Clocked by wall time as coreio-cosim-NAME does: the pulse comes while
    // the script already waits, or before; either way it is caught.
    mockvm::Vm vm(vm_config());
    PulseDevice dev(vm, 1000000);
    const auto script = mockvm::parse_script(R"(
irq_clear 0 0
writel 0x10000008 300
irq_wait_edge 0 0 rising 5000
irq_wait_edge 0 0 falling 5000
irq_count 0 0 expect 1
)", "pulse.script");
    for (int run = 0; run < 10; ++run) {
        std::ostringstream out;
        const auto r = mockvm::run_script(vm, script, out);
        EXPECT_TRUE(r.ok) << "run " << run << ":\n" << out.str() << r.error;
    }
}
