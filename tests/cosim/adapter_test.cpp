// Slave adapters, Sim and checkers against the example models directly (no
// network): register access through APB, AXI4-Lite (64-bit) and Wishbone
// (classic and pipelined), byte strobes, beat splitting, wait states, bus
// errors, the timer IRQ, reset, determinism and trace files.
#include <filesystem>
#include <fstream>

#include "cosim_test_util.hpp"
#include "dma-copy_model.hpp"
#include "renamed-apb_model.hpp"
#include "timer-apb_model.hpp"
#include "timer-axil_model.hpp"
#include "timer-wb_model.hpp"

using namespace cosim_test;
namespace models = coreio::cosim::models;

namespace {

struct BusCase {
    const char* name;
    std::unique_ptr<Model> (*make)(std::optional<TraceFormat>);
    bool pipelined;
    unsigned bus_bytes;
};

const BusCase kCases[] = {
    {"apb", &models::make_timer_apb, false, 4},
    {"axil", &models::make_timer_axil, false, 8},
    {"wb_classic", &models::make_timer_wb, false, 4},
    {"wb_pipelined", &models::make_timer_wb, true, 4},
};

/// Names the case in test listings instead of dumping its bytes.
[[maybe_unused]] void PrintTo(const BusCase& c, std::ostream* os) { *os << c.name; }

class TimerBus : public ::testing::TestWithParam<BusCase> {
protected:
    void SetUp() override { rig = std::make_unique<Rig>(GetParam().make(std::nullopt), GetParam().pipelined); }
    void TearDown() override {
        if (rig) rig->expect_clean();
    }
    std::unique_ptr<Rig> rig;
};

constexpr std::uint32_t kId = 0x434f5449;
constexpr std::uint64_t kScratch0 = 0x04, kScratch1 = 0x08, kCtrl = 0x0c, kLoad = 0x10, kCount = 0x14,
                        kStatus = 0x18, kCyclesLo = 0x1c, kWait = 0x24;

}  // namespace

TEST_P(TimerBus, ReadsIdAndBusWidth) {
    EXPECT_EQ(rig->bus->bus_bytes(), GetParam().bus_bytes);
    EXPECT_EQ(rig->rd32(0), kId);
}

TEST_P(TimerBus, ByteStrobesFromSizeAndAddress) {
    ASSERT_EQ(rig->wr(kScratch0, 0x11223344), BusStatus::Ok);
    ASSERT_EQ(rig->wr(kScratch0 + 1, 0xaa, 1), BusStatus::Ok);
    ASSERT_EQ(rig->wr(kScratch0 + 2, 0xbbcc, 2), BusStatus::Ok);
    EXPECT_EQ(rig->rd32(kScratch0), 0xbbccaa44u);
    std::uint8_t b = 0;
    ASSERT_EQ(bus_read(*rig->bus, kScratch0 + 3, 1, &b, 0), BusStatus::Ok);
    EXPECT_EQ(b, 0xbb);
    // Neighbour untouched.
    EXPECT_EQ(rig->rd32(kScratch1), 0u);
}

TEST_P(TimerBus, WideAccessesSplitIntoBeats) {
    // 8 bytes across SCRATCH0/SCRATCH1 (two beats on a 32-bit bus, one on 64).
    ASSERT_EQ(rig->wr(kScratch0, 0x8877665544332211ull, 8), BusStatus::Ok);
    EXPECT_EQ(rig->rd32(kScratch0), 0x44332211u);
    EXPECT_EQ(rig->rd32(kScratch1), 0x88776655u);
    // A 32-byte read spanning the map's start, unaligned 6-byte read.
    std::uint8_t buf[32]{};
    ASSERT_EQ(bus_read(*rig->bus, 0, 32, buf, 0), BusStatus::Ok);
    std::uint32_t id;
    std::memcpy(&id, buf, 4);
    EXPECT_EQ(id, kId);
    EXPECT_EQ(buf[4], 0x11);
    EXPECT_EQ(buf[11], 0x88);
    std::uint8_t six[6]{};
    ASSERT_EQ(bus_read(*rig->bus, kScratch0 + 2, 6, six, 0), BusStatus::Ok);
    const std::uint8_t want[6] = {0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    EXPECT_EQ(std::memcmp(six, want, 6), 0);
}

TEST_P(TimerBus, UnmappedAddressIsABusError) {
    std::uint8_t b[4];
    EXPECT_EQ(bus_read(*rig->bus, 0x40, 4, b, 0), BusStatus::SlaveError);
    EXPECT_EQ(rig->wr(0x44, 1), BusStatus::SlaveError);
    // The bus still works afterwards.
    EXPECT_EQ(rig->rd32(0), kId);
}

TEST_P(TimerBus, WaitStatesStretchAccesses) {
    std::uint64_t c0 = rig->sim.cycles();
    rig->rd32(0);
    const std::uint64_t fast = rig->sim.cycles() - c0;
    ASSERT_EQ(rig->wr(kWait, 7), BusStatus::Ok);
    c0 = rig->sim.cycles();
    EXPECT_EQ(rig->rd32(0), kId);
    const std::uint64_t slow = rig->sim.cycles() - c0;
    EXPECT_EQ(slow, fast + 7);
    ASSERT_EQ(rig->wr(kScratch1, 0x5a5a), BusStatus::Ok);
    EXPECT_EQ(rig->rd32(kScratch1), 0x5a5au);
}

TEST_P(TimerBus, TimerRaisesAndClearsIrq) {
    ASSERT_EQ(rig->wr(kLoad, 50), BusStatus::Ok);
    ASSERT_EQ(rig->wr(kCtrl, 0x5), BusStatus::Ok);  // enable, irq enable, one-shot
    EXPECT_EQ(rig->sim.irq_levels(), 0u);
    rig->sim.run(30);
    EXPECT_EQ(rig->sim.irq_levels(), 0u);
    EXPECT_LT(rig->rd32(kCount), 50u);
    rig->sim.run(40);
    EXPECT_EQ(rig->sim.irq_levels(), 1u);
    ASSERT_EQ(rig->irq_changes.size(), 1u);
    EXPECT_EQ(rig->irq_changes[0], 1u);
    EXPECT_EQ(rig->rd32(kStatus), 1u);
    ASSERT_EQ(rig->wr(kStatus, 1), BusStatus::Ok);
    EXPECT_EQ(rig->sim.irq_levels(), 0u);
    ASSERT_EQ(rig->irq_changes.size(), 2u);
    EXPECT_EQ(rig->irq_changes[1], 0u);
    // One-shot: disabled itself.
    EXPECT_EQ(rig->rd32(kCtrl) & 1u, 0u);
}

TEST_P(TimerBus, IrqChangeIsReportedTheCycleItHappens) {
    ASSERT_EQ(rig->wr(kLoad, 0), BusStatus::Ok);
    std::uint64_t at = 0;
    rig->sim.set_irq_listener([&](std::uint32_t, std::uint32_t) { at = rig->sim.cycles(); });
    ASSERT_EQ(rig->wr(kCtrl, 0x5), BusStatus::Ok);
    const std::uint64_t c0 = rig->sim.cycles();
    rig->sim.run(1000);
    ASSERT_NE(at, 0u);
    EXPECT_LE(at, c0 + 2);  // count 0 expires on the first enabled edge
}

TEST_P(TimerBus, ResetClearsRegisters) {
    ASSERT_EQ(rig->wr(kScratch0, 0x1234), BusStatus::Ok);
    ASSERT_EQ(rig->wr(kLoad, 0), BusStatus::Ok);
    ASSERT_EQ(rig->wr(kCtrl, 0x7), BusStatus::Ok);
    rig->sim.run(10);
    EXPECT_EQ(rig->sim.irq_levels(), 1u);
    rig->bus->idle();
    rig->sim.reset(3);
    EXPECT_EQ(rig->sim.irq_levels(), 0u);
    EXPECT_EQ(rig->rd32(kScratch0), 0u);
    EXPECT_EQ(rig->rd32(kCtrl), 0u);
    EXPECT_LT(rig->rd32(kCyclesLo), 20u);
}

TEST_P(TimerBus, SameAccessesGiveSameCycleCounts) {
    auto script = [](Rig& r) {
        EXPECT_EQ(r.wr(kWait, 3), BusStatus::Ok);
        EXPECT_EQ(r.wr(kScratch0, 0x99, 1), BusStatus::Ok);
        r.sim.run(17);
        r.rd32(kScratch0);
        return std::make_pair(r.sim.cycles(), r.rd32(kCyclesLo));
    };
    Rig other(GetParam().make(std::nullopt), GetParam().pipelined);
    const auto a = script(*rig);
    const auto b = script(other);
    EXPECT_EQ(a, b);
    other.expect_clean();
}

INSTANTIATE_TEST_SUITE_P(Buses, TimerBus, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(AxiLite, DecodeErrorIsDistinct) {
    Rig rig(models::make_timer_axil(std::nullopt));
    std::uint8_t b[4];
    EXPECT_EQ(bus_read(*rig.bus, 0x800, 4, b, 0), BusStatus::DecodeError);
    EXPECT_EQ(rig.wr(0x900, 1), BusStatus::DecodeError);
    EXPECT_EQ(rig.wr(0x40, 1), BusStatus::SlaveError);
    rig.expect_clean();
}

TEST(ProtPins, FlagsMapToProt) {
    EXPECT_EQ(prot_from_flags(0), 2u);       // unprivileged, non-secure, data
    EXPECT_EQ(prot_from_flags(4 | 8), 1u);   // privileged, secure
    EXPECT_EQ(prot_from_flags(2), 6u);       // instruction fetch
}

// ---- a hand-made model whose slave never answers ----

namespace {
class DeadModel final : public Model {
public:
    DeadModel() {
        p_.clock = Signal(&clk_);
        p_.reset = Signal(&rst_);
        p_.bus = BusKind::Apb;
        p_.apb.psel = Signal(&psel_);
        p_.apb.penable = Signal(&pen_);
        p_.apb.pwrite = Signal(&pwrite_);
        p_.apb.paddr = Signal(&paddr_);
        p_.apb.pwdata = Signal(&pwdata_);
        p_.apb.prdata = Signal(&prdata_);
        p_.apb.pready = Signal(&pready_);
    }
    const char* name() const override { return "dead"; }
    const Ports& ports() const override { return p_; }
    void eval() override {}
    std::uint64_t run_fast(std::uint64_t n, std::uint32_t) override { return n; }
    bool can_trace(TraceFormat) const override { return false; }
    bool trace_open(TraceFormat, const std::string&, std::string& e) override {
        e = "no";
        return false;
    }
    void trace_dump(std::uint64_t) override {}
    void trace_close() override {}
    std::uint8_t clk_ = 0, rst_ = 0, psel_ = 0, pen_ = 0, pwrite_ = 0, pready_ = 0;
    std::uint16_t paddr_ = 0;
    std::uint32_t pwdata_ = 0, prdata_ = 0;

private:
    Ports p_;
};
}  // namespace

TEST(Timeout, SilentSlaveFailsAfterTimeoutCycles) {
    DeadModel m;
    Sim sim(m);
    ApbChecker checker(sim, m.ports().apb);
    SlaveOptions o;
    o.timeout_cycles = 50;
    auto bus = make_slave_adapter(sim, m.ports(), o);
    std::uint64_t v = 0;
    EXPECT_EQ(bus->read(0, v, 0), BusStatus::Timeout);
    EXPECT_LE(sim.cycles(), 60u);
    EXPECT_EQ(m.psel_, 0u);  // bus left idle
    std::string err;
    TraceOptions t;
    t.format = TraceFormat::Fst;
    t.path = "x.fst";
    EXPECT_FALSE(sim.set_trace(t, err));
    EXPECT_NE(err.find("without fst"), std::string::npos) << err;
}

TEST(Checkers, ApbCheckerCatchesBrokenHandshakes) {
    DeadModel m;
    Sim sim(m);
    ApbChecker checker(sim, m.ports().apb);
    m.psel_ = 1, m.pen_ = 1;  // access phase with no setup
    sim.cycle();
    m.pen_ = 0;  // PENABLE dropped while PREADY low
    sim.cycle();
    m.pen_ = 1, m.paddr_ = 4;
    sim.cycle();
    m.paddr_ = 8;  // address changed during the transfer
    sim.cycle();
    ASSERT_GE(checker.violations().size(), 3u);
    EXPECT_NE(checker.violations()[0].find("without a setup cycle"), std::string::npos);
}

TEST(Checkers, AxiLiteCheckerCatchesValidDrop) {
    Rig rig(models::make_timer_axil(std::nullopt));
    auto& p = rig.model->ports().axil;
    // Keep offering reads without taking the data: after two the slave is
    // full and the third waits; dropping it then breaks the rule.
    p.arvalid.set(1);
    p.araddr.set(0);
    p.rready.set(0);
    rig.sim.run(12);
    p.arvalid.set(0);
    rig.sim.cycle();
    ASSERT_FALSE(rig.checker->violations().empty());
    EXPECT_NE(rig.checker->violations()[0].find("AR: VALID dropped before READY"), std::string::npos)
        << rig.checker->violations()[0];
}

TEST(Checkers, WishboneCheckerCatchesStbWithoutCyc) {
    Rig rig(models::make_timer_wb(std::nullopt));
    auto& p = rig.model->ports().wb;
    p.stb.set(1);
    p.cyc.set(0);
    rig.sim.cycle();
    p.stb.set(0);
    rig.sim.cycle();
    ASSERT_FALSE(rig.checker->violations().empty());
    EXPECT_NE(rig.checker->violations()[0].find("STB without CYC"), std::string::npos);
}

TEST(Trace, WritesFstAndVcdBetweenTriggers) {
    const auto dir = std::filesystem::temp_directory_path() / ("coreio-cosim-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);  // left by a dead process with the same id
    std::filesystem::create_directories(dir);
    for (TraceFormat f : {TraceFormat::Fst, TraceFormat::Vcd}) {
        Rig rig(models::make_timer_apb(f));
        const auto path = (dir / (std::string("t.") + trace_format_name(f))).string();
        TraceOptions t;
        t.format = f;
        t.path = path;
        t.start_cycle = rig.sim.cycles() + 10;
        t.stop_cycle = rig.sim.cycles() + 40;
        std::string err;
        ASSERT_TRUE(rig.sim.set_trace(t, err)) << err;
        EXPECT_FALSE(rig.sim.tracing());
        rig.sim.run(20);
        EXPECT_TRUE(rig.sim.tracing());
        rig.rd32(0);
        rig.sim.run(100);
        EXPECT_FALSE(rig.sim.tracing());
        ASSERT_TRUE(std::filesystem::exists(path));
        EXPECT_GT(std::filesystem::file_size(path), 100u);
        if (f == TraceFormat::Vcd) {
            std::ifstream in(path);
            const std::string text((std::istreambuf_iterator<char>(in)), {});
            EXPECT_NE(text.find("PADDR"), std::string::npos);
            EXPECT_NE(text.find("#"), std::string::npos);
        }
    }
    // Address triggers.
    Rig rig(models::make_timer_apb(TraceFormat::Vcd));
    TraceOptions t;
    t.format = TraceFormat::Vcd;
    t.path = (dir / "addr.vcd").string();
    t.start_addr = 0x1000;
    t.stop_addr = 0x2000;
    std::string err;
    ASSERT_TRUE(rig.sim.set_trace(t, err)) << err;
    rig.sim.note_access(0x1004);
    EXPECT_FALSE(rig.sim.tracing());
    rig.sim.note_access(0x1000);
    EXPECT_TRUE(rig.sim.tracing());
    rig.sim.run(5);
    rig.sim.note_access(0x2000);
    EXPECT_FALSE(rig.sim.tracing());
    EXPECT_TRUE(std::filesystem::exists(t.path));
    // A path that cannot be opened is reported at once.
    TraceOptions bad;
    bad.format = TraceFormat::Vcd;
    bad.path = (dir / "no-such-dir" / "x.vcd").string();
    Rig rig2(models::make_timer_apb(TraceFormat::Vcd));
    EXPECT_FALSE(rig2.sim.set_trace(bad, err));
    EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
    std::filesystem::remove_all(dir);
}

TEST(Helper, RenamedPortsOptionalPinsResetPolarityAndIrqVector) {
    Rig rig(models::make_renamed_apb(std::nullopt));
    const Ports& p = rig.model->ports();
    EXPECT_FALSE(p.apb.pready.bound());
    EXPECT_FALSE(p.apb.pstrb.bound());
    EXPECT_FALSE(p.apb.pslverr.bound());
    EXPECT_FALSE(p.reset_active_low);
    EXPECT_EQ(p.num_irqs, 1u);
    EXPECT_EQ(models::renamed_apb_defaults.addr_bits, 8u);
    EXPECT_FALSE(models::make_renamed_apb(TraceFormat::Fst));  // built with TRACE vcd only
    EXPECT_EQ(rig.rd32(0), 0x52454e41u);
    EXPECT_EQ(rig.wr(4, 0xcafe), BusStatus::Ok);
    EXPECT_EQ(rig.rd32(4), 0xcafeu);
    EXPECT_EQ(rig.wr(8, 2), BusStatus::Ok);
    EXPECT_EQ(rig.sim.irq_levels(), 2u);
    EXPECT_EQ(rig.wr(8, 3), BusStatus::Ok);
    EXPECT_EQ(rig.sim.irq_levels(), 3u);
    ASSERT_EQ(rig.irq_changes.size(), 2u);
    // The active-high reset clears the model and its lines.
    rig.sim.reset(2);
    EXPECT_EQ(rig.sim.irq_levels(), 0u);
    EXPECT_EQ(rig.rd32(4), 0u);
    rig.expect_clean();
}
