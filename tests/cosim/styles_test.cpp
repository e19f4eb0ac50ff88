// The bridge against slaves written in other people's styles (tests/cosim/rtl):
// an AXI4-Lite RAM that answers in the same cycle as it accepts and takes AW
// and W only together; a slave that takes AW and W in either order; one
// behind a register slice; APB with PREADY tied high; Wishbone with ACK in
// the request cycle and with stalls. Each through its adapter with the
// protocol checker watching. Also what coreio_add_cosim() derived for them
// (no interrupt port, explicit reset polarity, address width, prefix
// mapping), address-width bus errors, the reset-polarity start-up check and
// the initial reset in the waveform.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apb-zero-wait_model.hpp"
#include "axil-either_model.hpp"
#include "axil-regout_model.hpp"
#include "axil-sliced_model.hpp"
#include "axil-wrong-reset_model.hpp"
#include "coreio/cosim/bridge.hpp"
#include "coreio/cosim/reset_check.hpp"
#include "cosim_test_util.hpp"
#include "wb-stall_model.hpp"

using namespace cosim_test;
namespace models = coreio::cosim::models;

namespace {

/// Cycles one 32-bit read at `addr` takes.
std::uint64_t read_cycles(Rig& rig, std::uint64_t addr) {
    const std::uint64_t c0 = rig.sim.cycles();
    rig.rd32(addr);
    return rig.sim.cycles() - c0;
}

}  // namespace

// ---- AXI4-Lite ----

TEST(AxiLiteRegisteredOutput, ResponseInTheAcceptCycleIsTaken) {
    Rig rig(models::make_axil_regout(std::nullopt));
    ASSERT_EQ(rig.wr(0x10, 0xdeadbeef), BusStatus::Ok);
    EXPECT_EQ(rig.rd32(0x10), 0xdeadbeefu);
    // AW+W offered, AWREADY/WREADY/BVALID a cycle later, all taken at that edge.
    EXPECT_LE(read_cycles(rig, 0x10), 3u);
    const std::uint64_t c0 = rig.sim.cycles();
    ASSERT_EQ(rig.wr(0x14, 1), BusStatus::Ok);
    EXPECT_LE(rig.sim.cycles() - c0, 3u);
    rig.expect_clean();
}

TEST(AxiLiteRegisteredOutput, StrobesAndBackToBackAccesses) {
    Rig rig(models::make_axil_regout(std::nullopt));
    for (std::uint32_t i = 0; i < 64; ++i) ASSERT_EQ(rig.wr(0x100 + 4 * i, 0x1000 + i), BusStatus::Ok);
    for (std::uint32_t i = 0; i < 64; ++i) EXPECT_EQ(rig.rd32(0x100 + 4 * i), 0x1000 + i);
    ASSERT_EQ(rig.wr(0x101, 0xab, 1), BusStatus::Ok);
    ASSERT_EQ(rig.wr(0x102, 0xcdef, 2), BusStatus::Ok);
    EXPECT_EQ(rig.rd32(0x100), 0xcdefab00u);
    rig.expect_clean();
}

TEST(AxiLiteRegisteredOutput, HelperDerivedNoIrqActiveHighResetAndAddressWidth) {
    auto m = models::make_axil_regout(std::nullopt);
    const Ports& p = m->ports();
    EXPECT_EQ(p.num_irqs, 0u);  // no interrupt port, none required
    EXPECT_FALSE(p.reset_active_low);
    EXPECT_STREQ(p.reset_name, "rst");
    EXPECT_TRUE(p.axil.awvalid.bound());  // PREFIX s_axil_
    EXPECT_TRUE(p.axil.awprot.bound());
    EXPECT_EQ(models::axil_regout_defaults.addr_bits, 16u);  // from s_axil_awaddr[15:0]
}

TEST(AxiLiteRegisteredOutput, WideAddressDoesNotAlias) {
    Rig rig(models::make_axil_regout(std::nullopt));
    ASSERT_EQ(rig.wr(0xff08, 0x1111), BusStatus::Ok);
    ASSERT_EQ(rig.wr(0x0f08, 0x2222), BusStatus::Ok);
    EXPECT_EQ(rig.rd32(0xff08), 0x1111u);
    EXPECT_EQ(rig.rd32(0x0f08), 0x2222u);
    rig.expect_clean();
}

TEST(AxiLiteEitherOrder, AwFirstWFirstAndGaps) {
    Rig rig(models::make_axil_either(std::nullopt));
    EXPECT_EQ(rig.rd32(0), 0x45495448u);
    for (const std::uint32_t order : {0x00u, 0x01u, 0x30u, 0x31u, 0xf0u, 0xf1u}) {
        ASSERT_EQ(rig.wr(8, order), BusStatus::Ok) << order;
        EXPECT_EQ(rig.rd32(8), order);
        const std::uint32_t v = 0x0bad0000u | order;
        ASSERT_EQ(rig.wr(4, v), BusStatus::Ok) << order;
        EXPECT_EQ(rig.rd32(4), v) << order;
        EXPECT_EQ(rig.wr(0x20, 1), BusStatus::SlaveError) << order;
    }
    // The default `irq` port is found without IRQS.
    ASSERT_EQ(rig.model->ports().num_irqs, 1u);
    ASSERT_EQ(rig.wr(4, 0x80000000u), BusStatus::Ok);
    EXPECT_EQ(rig.sim.irq_levels(), 1u);
    rig.expect_clean();
}

TEST(AxiLiteRegisterSlice, AccessesThroughTheSlice) {
    Rig rig(models::make_axil_sliced(std::nullopt));
    EXPECT_TRUE(rig.model->ports().reset_active_low);
    EXPECT_EQ(rig.model->ports().num_irqs, 0u);
    for (std::uint32_t i = 0; i < 16; ++i) ASSERT_EQ(rig.wr(0xff00 + 4 * i, ~i), BusStatus::Ok);
    for (std::uint32_t i = 0; i < 16; ++i) EXPECT_EQ(rig.rd32(0xff00 + 4 * i), ~i);
    EXPECT_LE(read_cycles(rig, 0xff00), 8u);
    rig.expect_clean();
}

// ---- APB ----

TEST(ApbZeroWait, EveryAccessIsSetupPlusOneCycle) {
    Rig rig(models::make_apb_zero_wait(std::nullopt));
    EXPECT_EQ(rig.rd32(0), 0x5a45524fu);
    EXPECT_EQ(read_cycles(rig, 0), 2u);
    ASSERT_EQ(rig.wr(4, 0x12345678), BusStatus::Ok);
    EXPECT_EQ(rig.rd32(4), 0x12345678u);
    EXPECT_EQ(rig.wr(0x40, 1), BusStatus::SlaveError);
    std::uint8_t b[4];
    EXPECT_EQ(bus_read(*rig.bus, 0x40, 4, b, 0), BusStatus::SlaveError);
    EXPECT_EQ(rig.rd32(4), 0x12345678u);
    rig.expect_clean();
}

TEST(ApbZeroWait, RegisterAt0xFF08IsNotAliasedTo0x0F08) {
    Rig rig(models::make_apb_zero_wait(std::nullopt));
    EXPECT_EQ(models::apb_zero_wait_defaults.addr_bits, 16u);
    ASSERT_EQ(rig.wr(0xff08, 0xcafe), BusStatus::Ok);
    EXPECT_EQ(rig.rd32(0xff08), 0xcafeu);
    std::uint8_t b[4];
    EXPECT_EQ(bus_read(*rig.bus, 0x0f08, 4, b, 0), BusStatus::SlaveError);
    rig.expect_clean();
}

TEST(ApbZeroWait, OneCyclePulseIsSeenAsRiseAndFall) {
    Rig rig(models::make_apb_zero_wait(std::nullopt));
    ASSERT_EQ(rig.wr(8, 5), BusStatus::Ok);
    rig.sim.run(20);
    ASSERT_EQ(rig.irq_changes.size(), 2u);
    EXPECT_EQ(rig.irq_changes[0], 1u);
    EXPECT_EQ(rig.irq_changes[1], 0u);
}

// ---- Wishbone ----

class WbStall : public ::testing::TestWithParam<bool> {};

TEST_P(WbStall, AckInTheRequestCycleAndAfterStalls) {
    Rig rig(models::make_wb_stall(std::nullopt), GetParam(), models::wb_stall_defaults.addr_shift);
    EXPECT_EQ(models::wb_stall_defaults.addr_shift, 2u);
    EXPECT_EQ(models::wb_stall_defaults.addr_bits, 32u);
    EXPECT_EQ(rig.rd32(0), 0x5742534cu);
    EXPECT_EQ(read_cycles(rig, 0), 1u);  // ACK in the request cycle
    ASSERT_EQ(rig.wr(4, 0xa5a5a5a5), BusStatus::Ok);
    ASSERT_EQ(rig.wr(4, 0x5a, 1), BusStatus::Ok);
    EXPECT_EQ(rig.rd32(4), 0xa5a5a55au);
    ASSERT_EQ(rig.wr(8, 3), BusStatus::Ok);
    EXPECT_EQ(read_cycles(rig, 4), 4u);  // three cycles of STALL (or waiting), then ACK
    EXPECT_EQ(rig.rd32(4), 0xa5a5a55au);
    EXPECT_EQ(rig.wr(0, 1), BusStatus::SlaveError);
    EXPECT_EQ(rig.wr(0x10, 1), BusStatus::SlaveError);
    EXPECT_EQ(rig.rd32(8), 3u);
    rig.expect_clean();
}

INSTANTIATE_TEST_SUITE_P(Modes, WbStall, ::testing::Bool(),
                         [](const auto& param_info) { return std::string(param_info.param ? "pipelined" : "classic"); });

// ---- through the Bridge ----

TEST(BridgeAddressWidth, AccessBeyondTheDesignsAddressIsABusError) {
    auto model = models::make_apb_zero_wait(std::nullopt);
    BridgeOptions o;
    o.base = 0x10000000;
    o.range_size = 0x20000;  // twice what the design decodes
    o.addr_bits = models::apb_zero_wait_defaults.addr_bits;
    Bridge bridge(*model, o, {}, nullptr);
    std::uint32_t v = 0xcafe;
    ASSERT_EQ(bridge.write(0x1000ff08, 4, &v, 0), 0);
    v = 0;
    ASSERT_EQ(bridge.read(0x1000ff08, 4, &v, 0), 0);
    EXPECT_EQ(v, 0xcafeu);
    EXPECT_EQ(bridge.read(0x10010004, 4, &v, 0), 1);   // would alias DATA at 0x0004 if masked
    EXPECT_EQ(bridge.write(0x1000fffe, 4, &v, 0), 1);  // straddles the design's end
    EXPECT_EQ(bridge.read(0x0fff0000, 4, &v, 0), 1);   // below the range
    EXPECT_EQ(bridge.read(0x10020000, 4, &v, 0), 1);   // past the range
    EXPECT_EQ(bridge.bus_errors(), 4u);
}

TEST(BridgeAddressWidth, UnknownRangeTakesTheLowBitsOfTheAddress) {
    auto model = models::make_apb_zero_wait(std::nullopt);
    BridgeOptions o;
    o.addr_bits = models::apb_zero_wait_defaults.addr_bits;  // 16: a 64 KiB-aligned range needs no base
    Bridge bridge(*model, o, {}, nullptr);
    std::uint32_t v = 0x77;
    ASSERT_EQ(bridge.write(0xfef0ff08, 4, &v, 0), 0);
    v = 0;
    ASSERT_EQ(bridge.read(0xfef0ff08, 4, &v, 0), 0);
    EXPECT_EQ(v, 0x77u);
    ASSERT_EQ(bridge.read(0xfef00000, 4, &v, 0), 0);
    EXPECT_EQ(v, 0x5a45524fu);
}

TEST(ResetPolarity, WrongPolarityIsReportedAtStartUp) {
    // axil_regout_ram (reset active high) configured as RESET rst ACTIVE_LOW.
    SlaveOptions o;
    o.timeout_cycles = 1000;
    const std::string msg = check_reset_polarity(&models::make_axil_wrong_reset, o, 4);
    EXPECT_NE(msg.find("RESET rst ACTIVE_HIGH"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sits in reset"), std::string::npos) << msg;
    EXPECT_EQ(check_reset_polarity(&models::make_axil_regout, o, 4), "");
    EXPECT_EQ(check_reset_polarity(&models::make_axil_sliced, o, 4), "");
    // A design that answers even in reset (PREADY tied high) gives no false alarm.
    EXPECT_EQ(check_reset_polarity(&models::make_apb_zero_wait, o, 4), "");
}

TEST(Waveform, StartsWithTheInitialReset) {
    const auto path = std::filesystem::temp_directory_path() / ("coreio-styles-" + std::to_string(::getpid()) + ".vcd");
    {
        auto model = models::make_apb_zero_wait(TraceFormat::Vcd);
        BridgeOptions o;
        o.trace.format = TraceFormat::Vcd;
        o.trace.path = path.string();
        o.reset_cycles = 4;
        Bridge bridge(*model, o, {}, nullptr);
        bridge.run_idle(10);
    }
    std::ifstream in(path);
    std::string line, rst_id;
    std::vector<std::string> rst_values;  // the top-level rst's value at each change, in order
    while (std::getline(in, line)) {
        std::istringstream w(line);
        std::string kw, type, width, id, name;
        if (rst_id.empty() && (w >> kw >> type >> width >> id >> name) && kw == "$var" && name == "rst")
            rst_id = id;
        else if (!rst_id.empty() && line.size() == rst_id.size() + 1 && line.substr(1) == rst_id)
            rst_values.push_back(line.substr(0, 1));
    }
    std::filesystem::remove(path);
    ASSERT_FALSE(rst_id.empty());
    ASSERT_GE(rst_values.size(), 2u);
    EXPECT_EQ(rst_values[0], "1");  // asserted (active high) from the first sample on
    EXPECT_EQ(rst_values[1], "0");
}
