// The GICv2 subset as bare-metal code drives it: enable, prioritise, acknowledge, end.
#include <gtest/gtest.h>

#include "coreio/mockvm/guest/gic.hpp"

namespace coreio::mockvm::guest {
namespace {

constexpr std::uint64_t kCtlr = 0x000, kIsenabler = 0x100, kIcenabler = 0x180, kIspendr = 0x200,
                        kIcpendr = 0x280, kIsactiver = 0x300, kIpriorityr = 0x400, kItargetsr = 0x800;
constexpr std::uint64_t kCpuCtlr = 0x00, kPmr = 0x04, kIar = 0x0c, kEoir = 0x10;
constexpr unsigned kSpi = 33;

/// Distributor and CPU interface on, every priority unmasked, kSpi enabled at `priority`.
Gic enabled_gic(std::uint8_t priority = 0xa0) {
    Gic g;
    g.write_distributor(kCtlr, 4, 1);
    g.write_cpu_interface(kCpuCtlr, 4, 1);
    g.write_cpu_interface(kPmr, 4, 0xff);
    g.write_distributor(kIpriorityr + kSpi, 1, priority);
    g.write_distributor(kItargetsr + kSpi, 1, 1);
    g.write_distributor(kIsenabler + 4, 4, 1u << (kSpi - 32));
    return g;
}

TEST(Gic, LevelLineIsAcknowledgedAndEnded) {
    Gic g = enabled_gic();
    EXPECT_FALSE(g.irq_signalled());
    g.set_level(kSpi, true);
    EXPECT_TRUE(g.irq_signalled());
    EXPECT_EQ(g.read_cpu_interface(kIar, 4), kSpi);
    EXPECT_FALSE(g.irq_signalled()) << "active: not signalled again before EOI";
    EXPECT_EQ(g.read_distributor(kIsactiver + 4, 4), 1u << (kSpi - 32));
    EXPECT_EQ(g.read_cpu_interface(kIar, 4), Gic::kSpurious);
    g.write_cpu_interface(kEoir, 4, kSpi);
    EXPECT_TRUE(g.irq_signalled()) << "a line still high pends again after EOI";
    g.set_level(kSpi, false);
    EXPECT_FALSE(g.irq_signalled());
}

TEST(Gic, EdgeStaysPendingUntilAcknowledged) {
    Gic g = enabled_gic();
    g.latch_edge(kSpi);  // a pulse: the line is already low again
    EXPECT_TRUE(g.irq_signalled());
    EXPECT_EQ(g.read_cpu_interface(kIar, 4), kSpi);
    g.write_cpu_interface(kEoir, 4, kSpi);
    EXPECT_FALSE(g.irq_signalled());
}

TEST(Gic, DisabledMaskedOrGatedInterruptsAreNotSignalled) {
    Gic g = enabled_gic();
    g.set_level(kSpi, true);
    g.write_distributor(kIcenabler + 4, 4, 1u << (kSpi - 32));
    EXPECT_FALSE(g.irq_signalled());
    EXPECT_EQ(g.read_distributor(kIsenabler + 4, 4), 0u);
    g.write_distributor(kIsenabler + 4, 4, 1u << (kSpi - 32));
    g.write_cpu_interface(kPmr, 4, 0xa0);  // priority 0xa0 is not higher than the mask
    EXPECT_FALSE(g.irq_signalled());
    g.write_cpu_interface(kPmr, 4, 0xff);
    g.write_distributor(kCtlr, 4, 0);
    EXPECT_FALSE(g.irq_signalled());
    g.write_distributor(kCtlr, 4, 1);
    EXPECT_TRUE(g.irq_signalled());
}

TEST(Gic, SoftwarePendAndClear) {
    Gic g = enabled_gic();
    g.write_distributor(kIspendr + 4, 4, 1u << (kSpi - 32));
    EXPECT_EQ(g.read_distributor(kIspendr + 4, 4), 1u << (kSpi - 32));
    EXPECT_TRUE(g.irq_signalled());
    g.write_distributor(kIcpendr + 4, 4, 1u << (kSpi - 32));
    EXPECT_FALSE(g.irq_signalled());
}

TEST(Gic, HighestPriorityFirstThenLowestId) {
    Gic g = enabled_gic(0xa0);
    g.write_distributor(kIpriorityr + 40, 1, 0x80);
    g.write_distributor(kIpriorityr + 41, 1, 0x80);
    g.write_distributor(kIsenabler + 4, 4, (1u << 8) | (1u << 9) | (1u << (kSpi - 32)));
    g.set_level(kSpi, true);
    g.set_level(41, true);
    g.set_level(40, true);
    EXPECT_EQ(g.read_cpu_interface(kIar, 4), 40u);
    EXPECT_EQ(g.read_cpu_interface(kIar, 4), Gic::kSpurious) << "41 has the running priority: no preemption";
    g.write_cpu_interface(kEoir, 4, 40);
    g.set_level(40, false);
    EXPECT_EQ(g.read_cpu_interface(kIar, 4), 41u);
}

TEST(Gic, PriorityAndTargetsReadBackByByteAndWord) {
    Gic g;
    g.write_distributor(kIpriorityr + 32, 4, 0x44332211);
    EXPECT_EQ(g.read_distributor(kIpriorityr + 33, 1), 0x22u);
    EXPECT_EQ(g.read_distributor(kIpriorityr + 32, 4), 0x44332211u);
    EXPECT_EQ(g.read_distributor(kItargetsr + 0, 4), 0x01010101u) << "SGI/PPI targets read as CPU 0";
    g.write_distributor(kItargetsr + 32, 1, 1);
    EXPECT_EQ(g.read_distributor(kItargetsr + 32, 1), 1u);
    EXPECT_EQ(g.read_distributor(0x004, 4) & 0x1f, 2u) << "TYPER: 96 interrupts";
}

}  // namespace
}  // namespace coreio::mockvm::guest
