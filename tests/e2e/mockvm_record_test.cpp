// `coreio-mockvm --record FILE` as a process: a libcoreio device answers the
// demo, and the trace holds every MMIO transaction with the data on the wire.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "coreio/client.hpp"
#include "coreio/trace/reader.hpp"

namespace {

// A 4 KiB register file at any 4 KiB-aligned range.
class RegFile final : public coreio::MmioHandler {
public:
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned) override {
        std::memcpy(buf, regs_ + (addr & 0xfff), len);
        return 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) override {
        std::memcpy(regs_ + (addr & 0xfff), buf, len);
        return 0;
    }

private:
    unsigned char regs_[4096 + 32] = {};
};

TEST(MockVmRecord, DemoRunIsRecordedWithEveryTransaction) {
    const std::string trace = ::testing::TempDir() + "mockvm_record_" + std::to_string(::getpid()) + ".ctrace";
    const std::string cmd = std::string(COREIO_MOCKVM_PATH) + " --port 0 --wait-ms 20000 --record " + trace;
    FILE* vm = ::popen(cmd.c_str(), "r");
    ASSERT_NE(vm, nullptr);
    char line[256] = {};
    ASSERT_NE(std::fgets(line, sizeof line, vm), nullptr);
    unsigned port = 0;
    ASSERT_EQ(std::sscanf(line, "listening on 127.0.0.1:%u", &port), 1) << line;

    coreio::Client client;
    RegFile regs;
    ASSERT_EQ(client.connect("127.0.0.1:" + std::to_string(port)), 0);
    ASSERT_EQ(client.register_range(0, regs), 0);
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        for (int i = 0; i < 1000 && !stop && client.run_for(20000) == 0; ++i) {
        }
    });
    std::string output;
    while (std::fgets(line, sizeof line, vm) != nullptr) output += line;
    const int status = ::pclose(vm);
    stop = true;
    loop.join();
    client.disconnect();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;

    coreio::trace::TraceReader reader;
    ASSERT_EQ(reader.open(trace), "");
    EXPECT_EQ(reader.header().tool, "coreio-mockvm");
    ASSERT_EQ(reader.header().ranges.size(), 1u);
    EXPECT_EQ(reader.header().ranges[0].base, 0xfef00000u);
    coreio::trace::Event ev;
    int claims = 0, reads = 0, writes = 0, complete_reads = 0;
    coreio::trace::ReadStatus st;
    while ((st = reader.next(ev)) == coreio::trace::ReadStatus::Record) {
        if (ev.kind == coreio::trace::EventKind::Claim) ++claims;
        if (ev.kind != coreio::trace::EventKind::Mmio) continue;
        EXPECT_GE(ev.address, 0xfef00000u);
        if (ev.op == coreio::Op::Read) {
            ++reads;
            if (ev.status == coreio::trace::Status::Complete) ++complete_reads;
        } else if (ev.op == coreio::Op::Write) {
            ++writes;
        }
    }
    EXPECT_EQ(st, coreio::trace::ReadStatus::End) << reader.message();
    EXPECT_EQ(claims, 1);
    EXPECT_EQ(writes, 64);  // 16 values at each of 4 widths
    EXPECT_EQ(reads, 64);
    EXPECT_EQ(complete_reads, 64);  // every read folded with its reply
    std::remove(trace.c_str());
}

TEST(MockVmRecord, UnwritableFileIsAClearUsageError) {
    const std::string cmd = std::string(COREIO_MOCKVM_PATH) + " --port 0 --record /nonexistent-dir/x.ctrace 2>&1";
    FILE* vm = ::popen(cmd.c_str(), "r");
    ASSERT_NE(vm, nullptr);
    std::string output;
    char line[256];
    while (std::fgets(line, sizeof line, vm) != nullptr) output += line;
    const int status = ::pclose(vm);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    EXPECT_NE(output.find("--record"), std::string::npos) << output;
    EXPECT_NE(output.find("/nonexistent-dir/x.ctrace"), std::string::npos) << output;
}

}  // namespace
