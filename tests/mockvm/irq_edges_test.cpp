// Edge-counting IRQ checks and pair accesses, in the driver API and in
// scripts (irq_count, irq_wait_edge, irq_clear, readp, writep), against a
// raw-socket device whose interrupt is a pulse: it raises and drops the line
// in two back-to-back frames, which a level wait cannot see.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "coreio/mockvm/script.hpp"
#include "raw_client.hpp"

using namespace std::chrono_literals;
using coreio::Frame;
using coreio::mockvm::parse_script;
using coreio::mockvm::run_script;
using coreio::mockvm::ScriptError;
using coreio::mockvm::Vm;
using K = coreio::mockvm::ScriptCommand::Kind;

namespace {

constexpr std::uint64_t kBase = 0xfef00000;
constexpr std::uint64_t kPulse = 0xf04;  // writing N sends N pulses on line 1

class PulseDevice : public ::testing::Test {
protected:
    PulseDevice() {
        coreio::mockvm::VmConfig c;
        c.ranges = {{kBase, 0x1000}};
        c.timeout = 10000ms;
        c.log = [](std::string_view) {};
        vm.emplace(c);
        client.emplace(vm->port());
        client->send_main(Frame::claim(0));
        EXPECT_TRUE(vm->wait_for_claim(0, 10000ms));
        client->serve([this](Frame& f) {
            std::lock_guard lock(mu);
            if (!coreio::is_access_op(f.op())) return;
            const std::size_t off = f.address() & 0xfff;
            const bool read = coreio::is_read_op(f.op());
            const std::size_t n = f.size();
            if (off + 2 * n > regs.size()) {
                f.set_error(true);
                return;
            }
            if (read) {
                std::memcpy(f.payload(), &regs[off], n);
                if (coreio::is_pair_op(f.op())) std::memcpy(f.pair_second(), &regs[off + n], n);
                return;
            }
            std::memcpy(&regs[off], f.payload(), n);
            if (coreio::is_pair_op(f.op())) std::memcpy(&regs[off + n], f.pair_second(), n);
            if (off == kPulse)
                for (unsigned i = 0; i < regs[kPulse]; ++i) {
                    client->send_main(Frame::irq_update(0, 1, 1));
                    client->send_main(Frame::irq_update(0, 1, 0));
                }
        });
    }
    /// Posted writes and the pulses they cause are in before the ping's echo.
    void pulse(unsigned n) {
        ASSERT_EQ(vm->writeb(kBase + kPulse, n), 0);
        ASSERT_EQ(vm->ping(), 0);
    }
    coreio::mockvm::ScriptResult run(const std::string& text) {
        out.str("");
        return run_script(*vm, parse_script(text, "edges.txt"), out);
    }

    std::optional<Vm> vm;
    std::optional<coreio::testing::RawClient> client;
    std::mutex mu;
    std::array<std::uint8_t, 4096> regs{};
    std::ostringstream out;
};

TEST_F(PulseDevice, LevelWaitMissesAPulseEdgeWaitCatchesIt) {
    pulse(1);
    EXPECT_FALSE(vm->irq_level(0, 1));
    EXPECT_FALSE(vm->wait_irq(0, 1, true, 20ms));  // the level is long gone
    EXPECT_TRUE(vm->irq_wait_edge(0, 1, Vm::IrqEdge::Rising, 0ms));  // latched
    EXPECT_TRUE(vm->irq_wait_edge(0, 1, Vm::IrqEdge::Falling, 0ms));
    EXPECT_EQ(vm->irq_falling_edges(0, 1), 1u);
    // Checked: no edge is left to report.
    EXPECT_FALSE(vm->irq_wait_edge(0, 1, Vm::IrqEdge::Rising, 20ms));
    EXPECT_FALSE(vm->irq_wait_edge(0, 1, Vm::IrqEdge::Falling, 20ms));
}

TEST_F(PulseDevice, WaitEdgeWakesForAPulseThatComesLater) {
    std::thread later([this] {
        std::this_thread::sleep_for(30ms);
        pulse(1);
    });
    EXPECT_TRUE(vm->irq_wait_edge(0, 1, Vm::IrqEdge::Rising, 10000ms));
    later.join();
    EXPECT_EQ(vm->irq_count(0, 1), 1u);
}

TEST_F(PulseDevice, CountRestartsAtClear) {
    pulse(3);
    EXPECT_EQ(vm->irq_count(0, 1), 3u);
    EXPECT_EQ(vm->irq_count(0, 0), 0u);
    vm->irq_clear(0, 1);
    EXPECT_EQ(vm->irq_count(0, 1), 0u);
    EXPECT_EQ(vm->irq_edges(0, 1), 3u);  // the VM's own total is untouched
    EXPECT_FALSE(vm->irq_wait_edge(0, 1, Vm::IrqEdge::Rising, 10ms));  // cleared edges are not reported
    pulse(2);
    EXPECT_EQ(vm->irq_count(0, 1), 2u);
    EXPECT_EQ(vm->irq_count(9, 1), 0u);  // out of range: nothing
    EXPECT_FALSE(vm->irq_wait_edge(0, 8, Vm::IrqEdge::Rising, 0ms));
}

// Edges are the VM's line going 0 -> 1 and 1 -> 0, whoever drives it: a
// second client raising a line already high is no rising edge.
TEST_F(PulseDevice, EdgesFollowTheVmLineNotOneClientsView) {
    client->send_main(Frame::irq_update(0, 0, 1));
    ASSERT_TRUE(vm->wait_irq(0, 0, true, 10000ms));
    coreio::testing::RawClient other(vm->port(), true);
    other.send_main(Frame::irq_update(0, 0, 1));  // already high: no edge
    other.send_main(Frame::irq_update(0, 0, 0));
    ASSERT_TRUE(vm->wait_irq(0, 0, false, 10000ms));
    EXPECT_EQ(vm->irq_edges(0, 0), 1u);
    EXPECT_EQ(vm->irq_falling_edges(0, 0), 1u);
}

TEST_F(PulseDevice, ScriptEdgeCommands) {
    const auto r = run(R"(
writeb 0xfef00f04 2
ping
irq_wait 0 1 1 20                 # a level wait misses the pulses
irq_count 0 1 expect 2
irq_wait_edge 0 1 rising 1000
irq_wait_edge 0 1 falling
irq_wait_edge 0 1 rising 20       # already checked: times out
irq_clear 0 1
irq_count 0 1 expect 0
irq_count 0 1 expect 5
writeb 0xfef00f04 1
irq_wait_edge 0 1 falling 5000
irq_count 0 1
)");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.executed, 13u);
    EXPECT_EQ(r.failures, 3u) << out.str();
    const std::string o = out.str();
    EXPECT_NE(o.find("FAIL edges.txt:4: irq_wait 0 1 1: timed out"), std::string::npos) << o;
    EXPECT_NE(o.find("FAIL edges.txt:8: irq_wait_edge 0 1 rising: no such edge within 20 ms"), std::string::npos) << o;
    EXPECT_NE(o.find("FAIL edges.txt:11: irq_count 0 1: expected 5 rising edge(s), got 0"), std::string::npos) << o;
    EXPECT_NE(o.find("OK 2\n"), std::string::npos) << o;
    EXPECT_EQ(o.substr(o.size() - 5), "OK 1\n") << o;
}

TEST_F(PulseDevice, ScriptPairAccesses) {
    const auto r = run(R"(
writep 0xfef00020 4 0x01020304 0x05060708
readp 0xfef00020 4 expect 0x01020304 0x05060708
readl 0xfef00024 expect 0x08070605
writep 0xfef00040 16 0x000102030405060708090a0b0c0d0e0f 0xf0f1f2f3f4f5f6f7f8f9fafbfcfdfeff
readp 0xfef00040 16
readp 0xfef00020 2 expect 0x0102 0x0000
)");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.failures, 1u) << out.str();
    const std::string o = out.str();
    EXPECT_NE(o.find("OK 0x01020304 0x05060708\n"), std::string::npos) << o;
    EXPECT_NE(o.find("OK 0x000102030405060708090a0b0c0d0e0f 0xf0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\n"), std::string::npos)
        << o;
    EXPECT_NE(o.find("FAIL edges.txt:7: readp 0xfef00020: expected 0x0102 0x0000, got 0x0102 0x0304"),
              std::string::npos)
        << o;
    // A pair beyond the range is an error that stops the run.
    const auto e = run("readp 0xfef00ff8 8\n");
    EXPECT_EQ(e.error, "edges.txt:1: readp 0xfef00ff8: address/size not inside one configured MMIO range");
}

TEST(ScriptParseEdges, CommandsAndFields) {
    const auto s = parse_script("irq_count 2 3\nirq_count 0 7 expect 4\nirq_wait_edge 1 2 falling 250\n"
                                "irq_wait_edge 0 0 rising\nirq_clear 7 7\nreadp 0x10 8\n"
                                "readp 0x10 1 expect 0xaa 0xbb\nwritep 0x20 2 0x0102 0x0304\n");
    const auto& c = s.commands;
    ASSERT_EQ(c.size(), 8u);
    EXPECT_EQ(c[0].kind, K::IrqCount);
    EXPECT_EQ(c[0].rid, 2u);
    EXPECT_EQ(c[0].irq_line, 3u);
    EXPECT_FALSE(c[0].has_expect);
    EXPECT_TRUE(c[1].has_expect);
    EXPECT_EQ(c[2].kind, K::IrqWaitEdge);
    EXPECT_FALSE(c[2].rising);
    EXPECT_EQ(c[2].ms, 250);
    EXPECT_TRUE(c[3].rising);
    EXPECT_EQ(c[3].ms, -1);
    EXPECT_EQ(c[4].kind, K::IrqClear);
    EXPECT_EQ(c[5].kind, K::ReadPair);
    EXPECT_EQ(c[5].size, 8u);
    EXPECT_EQ(c[6].expect, (std::vector<std::byte>{std::byte{0xaa}, std::byte{0xbb}}));
    EXPECT_EQ(c[7].kind, K::WritePair);
    EXPECT_EQ(c[7].data, (std::vector<std::byte>{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}}));
}

TEST(ScriptParseEdges, ErrorsNameTheLineAndTheProblem) {
    const std::pair<const char*, const char*> cases[] = {
        {"irq_count 8 0", "edges:1: irq_count: RID 8 out of range 0..7"},
        {"irq_count 0 8", "irq_count: LINE 8 out of range 0..7"},
        {"irq_count 0 0 expect", "irq_count takes RID LINE [expect N], got 3 argument(s)"},
        {"irq_count 0 0 wanted 1", "irq_count: expected 'expect', got 'wanted'"},
        {"irq_wait_edge 0 0 up", "irq_wait_edge: edge 'up' is not rising or falling"},
        {"irq_wait_edge 0 0", "irq_wait_edge takes RID LINE rising|falling [TIMEOUT_MS], got 2 argument(s)"},
        {"irq_wait_edge 0 0 rising 99999999", "over an hour"},
        {"irq_clear 0", "irq_clear takes RID LINE, got 1 argument(s)"},
        {"readp 0x0 17", "readp: SIZE 17 out of range 1..16"},
        {"readp 0x0 0", "readp: SIZE 0 out of range 1..16"},
        {"readp 0x0 4 expect 0x01020304", "readp takes ADDR SIZE [expect 0xHEX1 0xHEX2], got 4 argument(s)"},
        {"writep 0x0 4 0x01020304", "writep takes ADDR SIZE 0xHEX1 0xHEX2, got 3 argument(s)"},
        {"writep 0x0 2 0x0102 0x030405", "writep: second element"},
        {"irq_edge 0 0", "unknown command 'irq_edge'"},
    };
    for (const auto& [text, want] : cases) {
        try {
            parse_script(text, "edges");
            ADD_FAILURE() << "no error for: " << text;
        } catch (const ScriptError& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << text << " -> " << e.what();
        }
    }
}

}  // namespace
