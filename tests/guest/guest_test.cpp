// The guest CPU end to end: hand-assembled AArch64 programs run in a Vm whose
// range 0 is served by a libcoreio device over 127.0.0.1 TCP.
#include <gtest/gtest.h>

#include <sstream>

#include "coreio/mockvm/guest/console.hpp"
#include "coreio/mockvm/guest/guest.hpp"
#include "coreio/mockvm/guest/platform.hpp"
#include "guest_test_support.hpp"

namespace coreio::mockvm::guest {
namespace {

using namespace std::chrono_literals;
using testing::kLoadAddress;
using testing::make_elf;
using testing::ServedDevice;
using testing::write_temp;

#include "programs.inc"

constexpr std::uint64_t kScratch = kLoadAddress + 0x1000;

VmConfig vm_config() {
    VmConfig c;
    c.ranges = {{0xfef00000, 0x1000}, {0xfef10000, 0x1000}};
    c.memory = {{0x80000000, 16 << 20}};
    c.timeout = 5000ms;
    c.log = [](std::string_view) {};
    return c;
}

struct GuestRun {
    GuestResult result;
    std::string console;
};

/// Runs `code` to its end in `vm` (a device may serve it already).
GuestRun run_code(Vm& vm, const std::vector<std::uint32_t>& code, const std::string& name, GuestConfig config = {}) {
    std::ostringstream console;
    config.firmware = write_temp(name + ".elf", make_elf(code));
    config.console = &console;
    if (config.max_instructions == 0) config.max_instructions = 10'000'000;  // a broken test ends
    Guest g(vm, config);
    GuestRun r{g.run(), {}};
    r.console = console.str();
    return r;
}

template <class Fn>
GuestConfig config_with(Fn&& set) {
    GuestConfig c;
    set(c);
    return c;
}

std::uint64_t scratch(Vm& vm, unsigned index) {
    std::uint64_t v = 0;
    EXPECT_TRUE(vm.memory().read(kScratch + 8 * index, std::as_writable_bytes(std::span(&v, 1))));
    return v;
}

TEST(GuestCpu, PowerOffValueIsTheExitValue) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kExit42, "exit42");
    EXPECT_TRUE(r.result.exited) << r.result.error;
    EXPECT_EQ(r.result.exit_value, 42u);
    EXPECT_GT(r.result.instructions, 0u);
}

TEST(GuestCpu, UartPrintsAndSaysReady) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kUart, "uart");
    ASSERT_TRUE(r.result.exited) << r.result.error;
    EXPECT_EQ(r.console, "hi\n");
    EXPECT_EQ(r.result.exit_value, Console::kFlagRxEmpty | Console::kFlagTxEmpty);  // FR as read
}

TEST(GuestCpu, LoadsAndStoresOfEveryWidthReachTheDevice) {
    Vm vm(vm_config());
    ServedDevice dev(vm.endpoint());
    ASSERT_TRUE(vm.wait_for_claim(0, 5s));
    const GuestRun r = run_code(vm, kWidths, "widths");
    ASSERT_TRUE(r.result.exited) << r.result.error;
    ASSERT_EQ(vm.ping(), 0);  // the device has handled every posted write before the echo
    EXPECT_EQ(scratch(vm, 0), 0x11u);
    EXPECT_EQ(scratch(vm, 1), 0x2233u);
    EXPECT_EQ(scratch(vm, 2), 0x66774455u);
    EXPECT_EQ(scratch(vm, 3), 0xeeffccddaabb8899u);
    EXPECT_EQ(scratch(vm, 4), 0x6677445522330011u);  // ldp: bytes 0..7 as written by strb/strh/str
    EXPECT_EQ(scratch(vm, 5), 0xeeffccddaabb8899u);
    // strb, strh, str w, str x, ldrb, ldrh, ldr w, ldr x, then ldp and stp as two 8-byte accesses each.
    EXPECT_EQ(dev.device.sizes(), (std::vector<std::size_t>{1, 2, 4, 8, 1, 2, 4, 8, 8, 8, 8, 8}));
    EXPECT_EQ(r.result.mmio_accesses, 12u);
}

TEST(GuestCpu, UnclaimedRangeReadsTheVmsFillBytes) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kReadRange1Byte, "unclaimed");
    ASSERT_TRUE(r.result.exited) << r.result.error;
    EXPECT_EQ(r.result.exit_value, 0xaau);
    EXPECT_EQ(vm.counters().unclaimed_accesses, 1u);
}

TEST(GuestCpu, BusErrorStopsTheRunNamingTheAddress) {
    Vm vm(vm_config());
    ServedDevice dev(vm.endpoint());
    ASSERT_TRUE(vm.wait_for_claim(0, 5s));
    const GuestRun r = run_code(vm, kReadWord, "buserror");
    EXPECT_FALSE(r.result.exited);
    EXPECT_NE(r.result.error.find("0xfef00040"), std::string::npos) << r.result.error;
    EXPECT_NE(r.result.error.find("bus error"), std::string::npos) << r.result.error;
}

TEST(GuestCpu, AccessToNothingStopsTheRun) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kUnmapped, "unmapped");
    EXPECT_FALSE(r.result.exited);
    EXPECT_NE(r.result.error.find("read of 4 bytes at 0x40000000: nothing there"), std::string::npos)
        << r.result.error;
}

TEST(GuestCpu, CounterCountsInstructionsNotTime) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kCounter, "counter");
    ASSERT_TRUE(r.result.exited) << r.result.error;
    EXPECT_EQ(scratch(vm, 0), kCounterFrequencyHz);
    // Counted per block as it starts: the first block is 5 instructions (to the
    // branch), so the first read sees 5 and the read after the branch 5 + 8
    // (the second block, up to its `b .`).
    EXPECT_EQ(scratch(vm, 1), 5u);
    EXPECT_EQ(scratch(vm, 2), 13u);
}

TEST(GuestCpu, InstructionLimitStopsASpinningGuest) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kSpin, "spin", config_with([](GuestConfig& c) { c.max_instructions = 1000; }));
    EXPECT_FALSE(r.result.exited);
    EXPECT_NE(r.result.error.find("limit of 1000 instructions"), std::string::npos) << r.result.error;
}

TEST(GuestCpu, SynchronousExceptionStopsTheRun) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kSvc, "svc");
    EXPECT_FALSE(r.result.exited);
    EXPECT_NE(r.result.error.find("svc"), std::string::npos) << r.result.error;
}

TEST(GuestCpu, WfiWithNothingToWakeItTimesOut) {
    Vm vm(vm_config());
    const GuestRun r = run_code(vm, kWfiAlone, "wfi", config_with([](GuestConfig& c) { c.wfi_timeout = 50ms; }));
    EXPECT_FALSE(r.result.exited);
    EXPECT_NE(r.result.error.find("wfi at 0x80000000: no interrupt within 50 ms"), std::string::npos)
        << r.result.error;
}

TEST(GuestCpu, DeviceIrqIsTakenThroughTheGicAndVbar) {
    Vm vm(vm_config());
    ServedDevice dev(vm.endpoint());
    ASSERT_TRUE(vm.wait_for_claim(0, 5s));
    const GuestRun r = run_code(vm, testing::with_irq_vector(kIrq, kIrqHandler), "irq");
    ASSERT_TRUE(r.result.exited) << r.result.error;
    EXPECT_EQ(r.result.exit_value, 7u);
    EXPECT_EQ(scratch(vm, 0), device_intid(0, 0));  // IAR
    EXPECT_EQ(scratch(vm, 1), kLoadAddress + 0x4c);  // ELR: the instruction after the wfi
    EXPECT_EQ(scratch(vm, 2) & 0x3cf, 0x345u);       // SPSR: EL1h, D, A, F masked as at reset, I clear
    EXPECT_EQ(r.result.interrupts, 1u);
}

TEST(GuestCpu, BuiltInDeviceOverlapIsRejected) {
    VmConfig c = vm_config();
    c.ranges.push_back({kUartBase, 0x1000});
    Vm vm(c);
    GuestConfig g;
    g.firmware = write_temp("overlap.elf", make_elf(kExit42));
    try {
        Guest guest(vm, g);
        FAIL() << "accepted a range over the UART";
    } catch (const GuestError& e) {
        EXPECT_NE(std::string(e.what()).find("overlaps the guest's built-in device at 0x9000000"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace coreio::mockvm::guest
