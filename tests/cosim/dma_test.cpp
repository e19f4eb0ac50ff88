// The AXI4 master adapter with the DMA copy engine, against a guest-memory
// double (no network): aligned and unaligned copies, narrow beats, 256-beat
// bursts, 4 KiB splitting, faults becoming SLVERR, reset mid-copy; the AXI4
// and APB checkers watch every cycle.
#include "cosim_test_util.hpp"
#include "dma-copy_model.hpp"

using namespace cosim_test;

namespace {

constexpr std::uint64_t kSrcLo = 0x04, kSrcHi = 0x08, kDstLo = 0x0c, kDstHi = 0x10, kLen = 0x14, kCtrl = 0x18,
                        kStatus = 0x1c, kConfig = 0x20, kDone = 0x24;
constexpr std::uint64_t kMemBase = 0x8000'0000ull;

class DmaCopy : public ::testing::Test {
protected:
    DmaCopy()
        : rig(coreio::cosim::models::make_dma_copy(std::nullopt)),
          mem(kMemBase, 64 * 1024),
          master(rig.sim, rig.model->ports().axi, mem),
          axi_checker(rig.sim, rig.model->ports().axi) {
        for (std::uint64_t i = 0; i < 32 * 1024; ++i) mem.at(kMemBase + i) = static_cast<std::uint8_t>(i * 7 + 3);
    }
    ~DmaCopy() override {
        rig.expect_clean();
        for (const auto& v : axi_checker.violations()) ADD_FAILURE() << v;
    }
    void start(std::uint64_t src, std::uint64_t dst, std::uint32_t len, unsigned size = 3, unsigned maxlen = 15) {
        ASSERT_EQ(rig.wr(kSrcLo, src & 0xffffffff), BusStatus::Ok);
        ASSERT_EQ(rig.wr(kSrcHi, src >> 32), BusStatus::Ok);
        ASSERT_EQ(rig.wr(kDstLo, dst & 0xffffffff), BusStatus::Ok);
        ASSERT_EQ(rig.wr(kDstHi, dst >> 32), BusStatus::Ok);
        ASSERT_EQ(rig.wr(kLen, len), BusStatus::Ok);
        ASSERT_EQ(rig.wr(kConfig, size | (maxlen << 8)), BusStatus::Ok);
        ASSERT_EQ(rig.wr(kCtrl, 0x3), BusStatus::Ok);  // start, irq enable
    }
    /// Clocks until the IRQ rises (bounded); returns STATUS.
    std::uint32_t wait_done() {
        for (int i = 0; i < 200 && rig.sim.irq_levels() == 0; ++i) rig.sim.run(100);
        EXPECT_EQ(rig.sim.irq_levels(), 1u);
        return rig.rd32(kStatus);
    }
    void expect_copied(std::uint64_t src, std::uint64_t dst, std::size_t len) {
        for (std::size_t i = 0; i < len; ++i)
            ASSERT_EQ(mem.at(dst + i), mem.at(src + i)) << "byte " << i << " of " << len;
        // Bytes just outside the destination stay zero (memory above 32 KiB starts zeroed).
        EXPECT_EQ(mem.at(dst - 1), 0u);
        EXPECT_EQ(mem.at(dst + len), 0u);
    }
    Rig rig;
    FakeMemory mem;
    AxiMasterAdapter master;
    Axi4Checker axi_checker;
};

}  // namespace

TEST_F(DmaCopy, AlignedCopy) {
    const std::uint64_t src = kMemBase, dst = kMemBase + 0x9000;
    start(src, dst, 512);
    EXPECT_EQ(wait_done(), 0x2u);  // done, not busy, no error
    expect_copied(src, dst, 512);
    EXPECT_EQ(rig.rd32(kDone), 512u);
    EXPECT_EQ(master.read_bursts(), 4u);  // 16 beats of 8 bytes per burst
    EXPECT_EQ(master.write_bursts(), 4u);
    EXPECT_EQ(mem.writes, 4);  // one DMA per full burst
    ASSERT_EQ(rig.wr(kStatus, 0x2), BusStatus::Ok);
    EXPECT_EQ(rig.sim.irq_levels(), 0u);
}

TEST_F(DmaCopy, UnalignedNarrowCopyAcross4KiB) {
    // 4-byte beats, unaligned start and end, crossing a 4 KiB boundary in both.
    const std::uint64_t src = kMemBase + 0x0f03, dst = kMemBase + 0x9f83;
    start(src, dst, 1001, 2, 255);
    EXPECT_EQ(wait_done(), 0x2u);
    expect_copied(src, dst, 1001);
}

TEST_F(DmaCopy, ByteBeatsAndHalfwordBeats) {
    start(kMemBase + 5, kMemBase + 0x8005, 37, 0, 7);
    EXPECT_EQ(wait_done(), 0x2u);
    expect_copied(kMemBase + 5, kMemBase + 0x8005, 37);
    ASSERT_EQ(rig.wr(kStatus, 0x2), BusStatus::Ok);
    start(kMemBase + 0x102, kMemBase + 0xa102, 61, 1, 3);
    EXPECT_EQ(wait_done(), 0x2u);
    expect_copied(kMemBase + 0x102, kMemBase + 0xa102, 61);
}

TEST_F(DmaCopy, FullLength256BeatBurst) {
    start(kMemBase + 0x1000, kMemBase + 0xb000, 2048, 3, 255);
    EXPECT_EQ(wait_done(), 0x2u);
    expect_copied(kMemBase + 0x1000, kMemBase + 0xb000, 2048);
    EXPECT_EQ(master.read_bursts(), 1u);
    EXPECT_EQ(master.write_bursts(), 1u);
    EXPECT_EQ(mem.reads, 1);
    EXPECT_EQ(mem.writes, 1);
}

TEST_F(DmaCopy, FaultBecomesSlaveErrorAndEngineError) {
    // Source beyond guest memory: the read burst answers SLVERR.
    start(kMemBase + 0x100000, kMemBase + 0x9000, 64);
    EXPECT_EQ(wait_done(), 0x4u);
    EXPECT_GE(master.faults(), 1u);
    EXPECT_EQ(mem.at(kMemBase + 0x9000), 0u);
    ASSERT_EQ(rig.wr(kStatus, 0x4), BusStatus::Ok);
    // Destination beyond memory: the write burst answers SLVERR.
    start(kMemBase, kMemBase + 0x10000 - 8, 64);
    EXPECT_EQ(wait_done(), 0x4u);
}

TEST_F(DmaCopy, ResetMidCopyStopsTheEngine) {
    start(kMemBase, kMemBase + 0x9000, 16 * 1024, 3, 15);
    rig.sim.run(200);
    EXPECT_EQ(rig.rd32(kStatus) & 1u, 1u);  // busy
    rig.bus->idle();
    rig.sim.reset(4);
    EXPECT_EQ(rig.rd32(kStatus), 0u);
    const std::uint64_t bursts = master.write_bursts();
    rig.sim.run(1000);
    EXPECT_EQ(master.write_bursts(), bursts);  // nothing more after reset
    // And the engine works again afterwards.
    start(kMemBase + 0x40, kMemBase + 0xc040, 100);
    EXPECT_EQ(wait_done(), 0x2u);
    expect_copied(kMemBase + 0x40, kMemBase + 0xc040, 100);
}

TEST_F(DmaCopy, MisalignedLanesAreRefused) {
    start(kMemBase + 1, kMemBase + 0x9002, 16);
    EXPECT_EQ(wait_done(), 0x4u);
    EXPECT_EQ(master.read_bursts(), 0u);
}
