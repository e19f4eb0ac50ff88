// Scenario scripts: the parser (every command, every error names the line) and
// runs against a Vm with a raw-socket device.
#include <gtest/gtest.h>

#include <array>
#include <mutex>
#include <thread>
#include <sstream>

#include "coreio/mockvm/demo.hpp"
#include "coreio/mockvm/script.hpp"
#include "raw_client.hpp"

using namespace std::chrono_literals;
using coreio::Frame;
using coreio::Op;
using coreio::mockvm::parse_script;
using coreio::mockvm::run_script;
using coreio::mockvm::Script;
using coreio::mockvm::ScriptCommand;
using coreio::mockvm::ScriptError;
using K = coreio::mockvm::ScriptCommand::Kind;

namespace {

TEST(ScriptParse, EveryCommand) {
    const Script s = parse_script(R"(# a comment line
writeb 0xfef00000 0x12
writew 0xfef00002 0x1234   # trailing comment
writel 0xfef00004 305419896
writeq 0xfef00008 0x1122334455667788
readb 0xfef00000
readl 0xfef00004 expect 0x12345678
write 0xfef00010 3 0xaabbcc
read 0xfef00010 3 expect 0xaabbcc
read 0xfef00010 32

memwrite 0x80000000 4 0x01020304
memread 0x80000000 4 expect 0x01020304
memset 0x80000000 0x100 0xff
irq_wait 0 1 1
irq_wait 7 7 0 250
reset
ping
sleep 5
)",
                                  "t.script");
    ASSERT_EQ(s.commands.size(), 17u);
    EXPECT_EQ(s.name, "t.script");
    const auto& c = s.commands;
    EXPECT_EQ(c[0].kind, K::Write);
    EXPECT_EQ(c[0].line, 2u);
    EXPECT_EQ(c[0].size, 1u);
    EXPECT_TRUE(c[0].value_form);
    EXPECT_EQ(c[2].data, (std::vector<std::byte>{std::byte{0x78}, std::byte{0x56}, std::byte{0x34}, std::byte{0x12}}));
    EXPECT_EQ(c[3].size, 8u);
    EXPECT_EQ(c[4].kind, K::Read);
    EXPECT_FALSE(c[4].has_expect);
    EXPECT_TRUE(c[5].has_expect);
    EXPECT_EQ(c[5].expect[0], std::byte{0x78});  // little endian
    EXPECT_EQ(c[6].kind, K::Write);
    EXPECT_FALSE(c[6].value_form);
    EXPECT_EQ(c[6].data, (std::vector<std::byte>{std::byte{0xaa}, std::byte{0xbb}, std::byte{0xcc}}));
    EXPECT_EQ(c[8].size, 32u);
    EXPECT_EQ(c[8].line, 10u);
    EXPECT_EQ(c[9].kind, K::MemWrite);
    EXPECT_EQ(c[10].kind, K::MemRead);
    EXPECT_EQ(c[11].kind, K::MemSet);
    EXPECT_EQ(c[11].size, 0x100u);
    EXPECT_EQ(c[11].fill, 0xff);
    EXPECT_EQ(c[12].kind, K::IrqWait);
    EXPECT_EQ(c[12].ms, -1);
    EXPECT_EQ(c[13].rid, 7u);
    EXPECT_EQ(c[13].ms, 250);
    EXPECT_EQ(c[14].kind, K::Reset);
    EXPECT_EQ(c[15].kind, K::Ping);
    EXPECT_EQ(c[16].kind, K::Sleep);
    EXPECT_EQ(c[16].ms, 5);
}

TEST(ScriptParse, CrLfAndNoFinalNewline) {
    const Script s = parse_script("ping\r\nreset", "x");
    ASSERT_EQ(s.commands.size(), 2u);
    EXPECT_EQ(s.commands[1].line, 2u);
}

struct BadLine {
    const char* text;
    const char* message;
};

TEST(ScriptParse, EveryErrorNamesTheLine) {
    const BadLine cases[] = {
        {"frob 1", "unknown command 'frob'"},
        {"readx 0x10", "unknown command 'readx'"},
        {"writel 0x10", "writel takes ADDR VALUE, got 1 argument(s)"},
        {"writel 0x10 1 2", "writel takes ADDR VALUE, got 3 argument(s)"},
        {"writeb 0x10 0x100", "value 0x100 does not fit in 1 byte(s)"},
        {"writew 0x10 zz", "writew: VALUE: not a number: 'zz'"},
        {"writel 0xzz 1", "writel: ADDR: not a number: '0xzz'"},
        {"writeq 0x10 0x10000000000000000", "number too large"},
        {"readl", "readl takes ADDR [expect VALUE], got 0 argument(s)"},
        {"readl 0x10 expect", "readl takes ADDR [expect VALUE], got 2 argument(s)"},
        {"readl 0x10 expcet 5", "readl: expected 'expect', got 'expcet'"},
        {"readw 0x10 expect 0x10000", "expected value 0x10000 does not fit in 2 byte(s)"},
        {"write 0x10 0 0x", "write: SIZE 0 out of range 1..32"},
        {"write 0x10 33 0x00", "write: SIZE 33 out of range 1..32"},
        {"write 0x10 2 0x001122", "expected 4 hex digits for 2 byte(s), got 6"},
        {"write 0x10 2 1122", "expected 0x followed by hex bytes"},
        {"write 0x10 2 0x11g2", "bad hex digit"},
        {"read 0x10", "read takes ADDR SIZE [expect 0xHEX], got 1 argument(s)"},
        {"read 0x10 4 expect", "read takes ADDR SIZE [expect 0xHEX], got 3 argument(s)"},
        {"read 0x10 4 expect 0x00", "expected data: expected 8 hex digits"},
        {"memwrite 0x10 2", "memwrite takes ADDR SIZE 0xHEX, got 2 argument(s)"},
        {"memread 0x10 0", "memread: SIZE 0 out of range"},
        {"memset 0x10 4 0x100", "memset: BYTE 0x100 is larger than 0xff"},
        {"memset 0x10 0 1", "memset: SIZE 0 out of range"},
        {"irq_wait 8 0 1", "irq_wait: RID 8 out of range 0..7"},
        {"irq_wait 0 8 1", "irq_wait: LINE 8 out of range 0..7"},
        {"irq_wait 0 0 2", "irq_wait: LEVEL 2 is not 0 or 1"},
        {"irq_wait 0 0", "irq_wait takes RID LINE LEVEL [TIMEOUT_MS], got 2 argument(s)"},
        {"irq_wait 0 0 1 99999999", "over an hour"},
        {"reset now", "reset takes no arguments, got 1 argument(s)"},
        {"ping 1", "ping takes no arguments"},
        {"sleep", "sleep takes MS, got 0 argument(s)"},
        {"sleep -5", "sleep: MS: not a number: '-5'"},
    };
    for (const auto& c : cases) {
        const std::string text = "# header\nping\n\n" + std::string(c.text) + "\nping\n";
        try {
            parse_script(text, "s.txt");
            ADD_FAILURE() << "accepted: " << c.text;
        } catch (const ScriptError& e) {
            EXPECT_EQ(e.line(), 4u) << c.text;
            const std::string what = e.what();
            EXPECT_EQ(what.rfind("s.txt:4: ", 0), 0u) << what;
            EXPECT_NE(what.find(c.message), std::string::npos) << "for '" << c.text << "': " << what;
        }
    }
}

TEST(ScriptParse, MissingFileIsAClearError) {
    try {
        coreio::mockvm::load_script("/nonexistent/dir/x.script");
        FAIL();
    } catch (const ScriptError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.script: cannot open"), std::string::npos);
    }
}

// A register-file device answering from a raw-socket client.
class ScriptRun : public ::testing::Test {
protected:
    ScriptRun() {
        coreio::mockvm::VmConfig c;
        c.ranges = {{0xfef00000, 0x1000}};
        c.memory = {{0x80000000, 0x1000}};
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
            if (off == 0xff0) {
                f.set_error(true);
                return;
            }
            if (coreio::is_read_op(f.op()))
                std::memcpy(f.payload(), &regs[off], f.size());
            else
                std::memcpy(&regs[off], f.payload(), f.size());
            if (off == 0xf00 && !coreio::is_read_op(f.op()))
                client->send_main(Frame::irq_update(0, 0, regs[0xf00] & 1));
        });
    }
    coreio::mockvm::ScriptResult run(const std::string& text) {
        out.str("");
        return run_script(*vm, parse_script(text, "run.txt"), out);
    }

    std::optional<coreio::mockvm::Vm> vm;
    std::optional<coreio::testing::RawClient> client;
    std::mutex mu;
    std::array<std::uint8_t, 4096> regs{};
    std::ostringstream out;
};

TEST_F(ScriptRun, PassingScriptPrintsQtestStyleAnswers) {
    const auto r = run(R"(
writel 0xfef00004 0x12345678
readl 0xfef00004 expect 0x12345678
readb 0xfef00005
write 0xfef00010 3 0xaabbcc
read 0xfef00010 4 expect 0xaabbcc00
memwrite 0x80000000 4 0x01020304
memread 0x80000000 4 expect 0x01020304
memset 0x80000004 4 0xee
memread 0x80000000 8
writeb 0xfef00f00 1
irq_wait 0 0 1
writeb 0xfef00f00 0
irq_wait 0 0 0
ping
reset
sleep 1
)");
    EXPECT_TRUE(r.ok) << out.str() << r.error;
    EXPECT_EQ(r.executed, 16u);
    EXPECT_EQ(r.failures, 0u);
    EXPECT_EQ(out.str(),
              "OK\n"
              "OK 0x0000000012345678\n"
              "OK 0x0000000000000056\n"
              "OK\n"
              "OK 0xaabbcc00\n"
              "OK\nOK 0x01020304\nOK\n"
              "OK 0x01020304eeeeeeee\n"
              "OK\nOK\nOK\nOK\nOK\nOK\nOK\n");
}

TEST_F(ScriptRun, FailedExpectationsAreCountedAndNamed) {
    const auto r = run("writel 0xfef00000 5\nreadl 0xfef00000 expect 6\nmemread 0x80000000 2 expect 0x0102\n"
                       "readl 0xfef00ff0\nirq_wait 0 3 1 20\nreadl 0xfef00000 expect 5\n");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.failures, 4u);
    EXPECT_EQ(r.executed, 6u);
    const std::string o = out.str();
    EXPECT_NE(o.find("FAIL run.txt:2: readl 0xfef00000: expected 0x0000000000000006, got 0x0000000000000005"),
              std::string::npos)
        << o;
    EXPECT_NE(o.find("FAIL run.txt:3: memread 0x80000000: expected 0x0102, got 0x0000"), std::string::npos) << o;
    EXPECT_NE(o.find("FAIL run.txt:4: readl 0xfef00ff0: bus error"), std::string::npos) << o;
    EXPECT_NE(o.find("FAIL run.txt:5: irq_wait 0 3 1: timed out after 20 ms"), std::string::npos) << o;
}

TEST_F(ScriptRun, ErrorsStopTheRunAndNameTheLine) {
    auto r = run("ping\nreadl 0x1000\nping\n");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.executed, 2u);
    EXPECT_EQ(r.error, "run.txt:2: readl 0x1000: address/size not inside one configured MMIO range");
    r = run("memwrite 0x90000000 2 0x0102\n");
    EXPECT_EQ(r.error, "run.txt:1: memwrite 0x90000000 size 2: outside guest memory");
    r = run("memset 0x80000ffc 8 0\n");
    EXPECT_NE(r.error.find("outside guest memory"), std::string::npos);
}

TEST_F(ScriptRun, DemoPassesAgainstAStoringDevice) {
    EXPECT_EQ(coreio::mockvm::demo_testdata(0, 8), 0x0706050403020100ull);
    EXPECT_EQ(coreio::mockvm::demo_testdata(5, 8), 0x0c0b0a0908070605ull);
    EXPECT_EQ(coreio::mockvm::demo_testdata(5, 2), 0x0605u);
    EXPECT_EQ(coreio::mockvm::demo_testdata(15, 1), 15u);
    std::ostringstream table;
    EXPECT_TRUE(coreio::mockvm::run_demo(*vm, table)) << table.str();
    EXPECT_NE(table.str().find("all 64 values read back correctly"), std::string::npos);
    EXPECT_NE(table.str().find("8      0x0078  0x161514131211100f  0x161514131211100f  yes"), std::string::npos)
        << table.str();
}

TEST(ScriptRunUnclaimed, DemoFailsWhenNothingStores) {
    coreio::mockvm::VmConfig c;
    c.ranges = {{0xfef00000, 0x1000}};
    coreio::mockvm::Vm vm(c);
    std::ostringstream table;
    EXPECT_FALSE(coreio::mockvm::run_demo(vm, table));  // unclaimed: reads return 0xAA
    EXPECT_NE(table.str().find("NO"), std::string::npos);
    EXPECT_NE(table.str().find("64 of 64 values did not read back"), std::string::npos) << table.str();
}

}  // namespace

namespace {

// A device that goes away in the middle of a script: the run stops at the first
// command that needs it, with one ERR line, instead of reading the VM's own
// 0xAA answers as the device's and printing a FAIL per command.
TEST_F(ScriptRun, TheDeviceDisconnectingStopsTheRunWithOneErr) {
    // The device quits once it has stored the script's write, so the write
    // itself never meets a closed device (a posted write that races the close
    // would fail first and make this test flaky); a later readl is what fails.
    std::thread closer([&] {
        auto told = [&] {
            std::lock_guard lock(mu);
            return regs[0] == 7;
        };
        for (int i = 0; i < 10000 && !told(); ++i) std::this_thread::sleep_for(1ms);
        client->stop_serving();
        client->close();
    });
    std::string text = "writel 0xfef00000 7\nreadl 0xfef00000 expect 7\nsleep 300\n";
    for (int i = 0; i < 50; ++i) text += "readl 0xfef00000 expect 7\n";
    const auto r = run(text);
    closer.join();
    EXPECT_FALSE(r.ok);
    const std::string o = out.str();
    EXPECT_EQ(o.find("FAIL"), std::string::npos) << o;
    ASSERT_NE(o.find("ERR "), std::string::npos) << o;
    EXPECT_EQ(o.find("ERR "), o.rfind("ERR ")) << "one ERR line: " << o;
    EXPECT_NE(o.find("ERR run.txt:"), std::string::npos) << o;
    EXPECT_NE(r.error.find(": readl 0xfef00000: "), std::string::npos) << r.error;
    EXPECT_LE(r.executed, 4u) << o;
}

TEST(ScriptRunMemory, GuestMemoryThatCannotBeAllocatedIsAnErrorNamingIt) {
    coreio::mockvm::VmConfig c;
    c.ranges = {{0xfef00000, 0x1000}};
    c.memory = {{0, 64ull << 30}};  // 64 GiB: fine, it is sparse
    c.log = [](std::string_view) {};
    coreio::mockvm::Vm vm(c);
    vm.memory().set_resident_limit(1 << 20);
    std::ostringstream out;
    const auto r = run_script(vm, parse_script("memset 0x100 0x1000 0xff\nmemset 0x0 0x200000 0xff\n", "m.txt"), out);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.executed, 2u);
    EXPECT_NE(r.error.find("m.txt:2: memset 0x0 size 2097152: cannot allocate guest memory"), std::string::npos)
        << r.error;
}

}  // namespace
