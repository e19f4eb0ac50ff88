// Batch checksums: a single-byte change anywhere in a trace is reported as
// corruption naming where it is, and no record read before the report differs
// from what was written. Every byte of the file is changed (each bit, all bits,
// and other values); old (version 1) files stay readable (golden_test.cpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <vector>

#include "coreio/trace/reader.hpp"
#include "coreio/trace/writer.hpp"
#include "golden_events.hpp"
#include "test_util.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

namespace {

// True when `text` names byte `at`: "byte offset AT", or a range "bytes A..B" with A <= AT < B.
bool names_offset(const std::string& text, std::size_t at) {
    static const std::regex range(R"(bytes (\d+)\.\.(\d+))");
    for (std::sregex_iterator it(text.begin(), text.end(), range), end; it != end; ++it) {
        const auto a = std::stoull((*it)[1]), b = std::stoull((*it)[2]);
        if (a <= at && at < b) return true;
    }
    return text.find("byte offset " + std::to_string(at)) != std::string::npos;
}

// The golden events written as the writer does in a recording: several batches.
std::vector<std::byte> fresh_trace() {
    const std::string path = temp_path("integrity");
    TraceWriter w;
    WriterOptions o;
    o.background_flush = false;
    o.flush_interval = std::chrono::hours(1);  // batches only where the test flushes, however slow the machine
    EXPECT_EQ(w.open(path, golden::header_v2(), o), "");
    const auto events = golden::events_v1();
    for (std::size_t i = 0; i < events.size(); ++i) {
        w.append(events[i]);
        if (i % 7 == 6) w.flush();
    }
    EXPECT_EQ(w.close(), "");
    auto bytes = file_bytes(path);
    std::remove(path.c_str());
    return bytes;
}

// What byte `at` is XORed with: each single bit, all bits, and four other
// values (a different four per offset, so that over a file they cover all 255).
std::vector<unsigned> changes(std::size_t at) {
    std::vector<unsigned> x = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
    for (unsigned i = 0; i < 4; ++i) x.push_back(static_cast<unsigned>(1 + (at * 4 + i) * 37 % 255));
    return x;
}

// Changes byte `at` in several ways; each must be reported, naming `at`.
void expect_every_change_reported(const std::vector<std::byte>& good, std::size_t at) {
    const auto want = golden::events_v1();
    for (const unsigned x : changes(at)) {
        auto bad = good;
        bad[at] ^= static_cast<std::byte>(x);
        ReadAll r = read_memory(bad);
        if (!r.open_error.empty()) {
            ASSERT_TRUE(names_offset(r.open_error, at)) << "byte " << at << " ^ " << x << ": " << r.open_error;
            continue;
        }
        ASSERT_EQ(r.status, ReadStatus::Corrupt) << "byte " << at << " ^ " << x << " was accepted";
        ASSERT_TRUE(names_offset(r.message, at)) << "byte " << at << " ^ " << x << ": " << r.message;
        ASSERT_EQ(r.header, golden::header_v2()) << "byte " << at << " ^ " << x;
        ASSERT_LT(r.events.size(), want.size());
        for (std::size_t i = 0; i < r.events.size(); ++i) expect_same(r.events[i].event(), want[i], i);
    }
}

}  // namespace

TEST(TraceIntegrity, EverySingleByteChangeIsReportedWithItsOffset) {
    const auto good = fresh_trace();
    ASSERT_EQ(read_memory(good).events.size(), golden::events_v1().size());
    ASSERT_GE(batches_of(good).size(), 3u);
    for (std::size_t at = 0; at < good.size(); ++at) {
        expect_every_change_reported(good, at);
        if (::testing::Test::HasFatalFailure()) return;
    }
}

TEST(TraceIntegrity, EveryByteOfTheV2GoldenFileIsCovered) {
    const auto good = file_bytes(std::string(COREIO_GOLDEN_DIR) + "/v2-checksum.ctrace");
    for (std::size_t at = 0; at < good.size(); ++at) {
        expect_every_change_reported(good, at);
        if (::testing::Test::HasFatalFailure()) return;
    }
}

// The cost of the checksums: 12 bytes per batch. A batch is written every 64 KiB
// or every flush interval, whichever comes first; here 4-byte register reads
// and writes, a batch every 1000 of them (a 20 ms flush interval at 50 k
// transactions/s). coreio-bench-trace prints the figure for a live recording.
TEST(TraceIntegrity, ChecksumsCostUnderOneBytePerTransaction) {
    const std::string path = temp_path("cost");
    TraceWriter w;
    WriterOptions o;
    o.background_flush = false;
    o.flush_interval = std::chrono::hours(1);  // batches only where the test flushes, however slow the machine
    ASSERT_EQ(w.open(path, {}, o), "");
    constexpr int kTransactions = 20000;
    std::uint64_t data_bytes = 0;
    for (int i = 0; i < kTransactions; ++i) {
        Event e;
        e.kind = EventKind::Mmio;
        e.time_ns = 1000u * static_cast<std::uint64_t>(i);
        e.op = i % 3 == 0 ? Op::Read : Op::Write;
        e.size = 4;
        e.mask = e.op == Op::Write ? 0xf : 0;
        e.address = 0xfef00000u + 4u * static_cast<std::uint64_t>(i % 5);
        e.tag = static_cast<std::uint32_t>(i);
        e.data[0] = static_cast<std::byte>(i);
        e.reply_after_ns = e.op == Op::Read ? 2000 : 0;
        w.append(e);
        if (i % 1000 == 999) w.flush();
    }
    const std::uint64_t before_close = w.record_bytes();
    ASSERT_EQ(w.close(), "");
    data_bytes = before_close;
    const auto bytes = file_bytes(path);
    const auto batches = batches_of(bytes);
    ASSERT_EQ(batches.size(), 1u + kTransactions / 1000);
    const double checksum_per_transaction = 12.0 * static_cast<double>(batches.size() - 1) / kTransactions;
    const double per_transaction = static_cast<double>(data_bytes) / kTransactions;
    std::printf("bytes per MMIO transaction: %.2f, of which checksums %.3f\n", per_transaction,
                checksum_per_transaction);
    EXPECT_LE(checksum_per_transaction, 1.0);
    EXPECT_EQ(read_file(path).events.size(), static_cast<std::size_t>(kTransactions));
}
