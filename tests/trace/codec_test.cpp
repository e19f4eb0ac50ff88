// Trace file writer/reader: round trip, schema conformance (generated classes),
// truncation at every offset, corruption, forward compatibility, kill -9.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <poll.h>
#include <random>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "coreio/trace/reader.hpp"
#include "coreio/trace/writer.hpp"
#include "coreio_trace.pb.h"
#include "golden_events.hpp"
#include "test_util.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

namespace {

std::string write_events(const std::vector<Event>& events, const TraceHeader& h = golden::header_v2()) {
    const std::string path = temp_path("codec");
    TraceWriter w;
    WriterOptions o;
    o.background_flush = false;
    o.flush_interval = std::chrono::hours(1);  // batches only where the test flushes, however slow the machine
    EXPECT_EQ(w.open(path, h, o), "");
    for (const Event& e : events) w.append(e);
    EXPECT_EQ(w.close(), "");
    return path;
}

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
    std::vector<std::byte> b;
    for (int x : v) b.push_back(static_cast<std::byte>(x));
    return b;
}

// A valid file with no records (preamble + header).
std::vector<std::byte> empty_trace() {
    return file_bytes(write_events({}));
}

}  // namespace

TEST(TraceCodec, RoundTripsEveryEventKind) {
    const auto events = golden::events_v1();
    const std::string path = write_events(events);
    ReadAll r = read_file(path);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::End) << r.message;
    TraceHeader want = golden::header_v2();
    EXPECT_EQ(r.header, want);
    ASSERT_EQ(r.events.size(), events.size());
    for (std::size_t i = 0; i < events.size(); ++i) expect_same(r.events[i].event(), events[i], i);
}

TEST(TraceCodec, FileParsesWithTheGeneratedClasses) {
    const auto events = golden::events_v1();
    const auto bytes = file_bytes(write_events(events));
    coreio::trace::TraceFile file;
    ASSERT_TRUE(file.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    EXPECT_EQ(file.magic(), "COREIO");
    EXPECT_EQ(file.format_version(), 1u);
    EXPECT_EQ(file.header().tool(), "golden-v2");
    EXPECT_EQ(file.header().observer(), coreio::trace::Header::OBSERVER_PROXY);
    ASSERT_EQ(file.record_size(), static_cast<int>(events.size()));
    const auto& read = file.record(3);  // 4-byte read of 0x2a at 0x10000004, first MMIO
    ASSERT_TRUE(read.has_mmio());
    EXPECT_EQ(read.dt_ns(), 1500);
    EXPECT_EQ(read.mmio().op_size(), 1u | (4u << 3));
    EXPECT_EQ(read.mmio().address_delta(), 0x10000004);
    EXPECT_EQ(read.mmio().tag_step(), 0);
    EXPECT_EQ(read.mmio().data(), 0x2au);
    EXPECT_EQ(read.mmio().reply_after_ns(), 1234u);
    const auto& write = file.record(4);  // address goes down by 4, tag counts up
    EXPECT_EQ(write.mmio().address_delta(), -4);
    EXPECT_EQ(write.mmio().tag_step(), 0);
    EXPECT_EQ(write.mmio().data(), 0xf7f6f5f4f3f2f1f0ull);
    EXPECT_EQ(write.mmio().mask_xor(), 0u);
    EXPECT_EQ(write.mmio().flags(), 12u);
    const auto& wide = file.record(5);
    EXPECT_EQ(wide.mmio().data_bytes().size(), 32u);
    EXPECT_TRUE(wide.mmio().error());
    const auto& pair_write = file.record(7);
    EXPECT_EQ(pair_write.mmio().mask_xor(), 0x0101u ^ 0x0303u);
    const auto& dma = file.record(8);
    ASSERT_TRUE(dma.has_dma());
    EXPECT_EQ(dma.channel(), coreio::trace::Record::CHANNEL_DMA);
    EXPECT_EQ(dma.direction(), coreio::trace::Record::DIRECTION_TO_VM);
    EXPECT_EQ(dma.dma().cause_back(), 1u);
    EXPECT_EQ(dma.dma().sid(), 2u);
    EXPECT_EQ(file.record(10).raw().size(), 64u);
    EXPECT_EQ(file.record(17).protocol_error().message(), "unknown opcode 0x13 (w1[7:0])");
    EXPECT_EQ(file.record(17).raw().size(), 64u);
    EXPECT_LT(file.record(18).dt_ns(), 0);
    EXPECT_EQ(file.record(18).client(), 1u);
    EXPECT_TRUE(file.record(19).has_connection());
    EXPECT_FALSE(file.record(19).connection().up());
}

// Version 1 files (no checksums): a cut anywhere keeps every whole record before it.
TEST(TraceCodec, V1TruncationAtEveryOffsetKeepsCompleteRecords) {
    const auto events = golden::events_v1();
    const auto bytes = file_bytes(std::string(COREIO_GOLDEN_DIR) + "/v1-basic.ctrace");
    // Record boundaries from a full read.
    TraceReader full;
    ASSERT_EQ(full.open_memory(bytes), "");
    std::vector<std::uint64_t> starts;
    Event ev;
    while (full.next(ev) == ReadStatus::Record) starts.push_back(full.offset());
    ASSERT_EQ(starts.size(), events.size());
    const std::uint64_t first = starts.front();
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
        ReadAll r = read_memory(std::span(bytes).first(cut));
        if (cut < first) {
            EXPECT_NE(r.open_error, "") << "cut at " << cut;
            continue;
        }
        ASSERT_EQ(r.open_error, "") << "cut at " << cut;
        std::size_t complete = 0;  // records wholly inside the prefix
        while (complete < starts.size() &&
               (complete + 1 < starts.size() ? starts[complete + 1] : bytes.size()) <= cut)
            ++complete;
        ASSERT_EQ(r.events.size(), complete) << "cut at " << cut;
        for (std::size_t i = 0; i < complete; ++i) expect_same(r.events[i].event(), events[i], i);
        const bool boundary = cut == bytes.size() || (complete < starts.size() && starts[complete] == cut);
        if (boundary) {
            EXPECT_EQ(r.status, ReadStatus::End) << "cut at " << cut << ": " << r.message;
        } else {
            EXPECT_EQ(r.status, ReadStatus::Truncated) << "cut at " << cut << ": " << r.message;
            EXPECT_NE(r.message.find("byte offset " + std::to_string(starts[complete])), std::string::npos)
                << r.message;
        }
    }
}

// Checked files: a cut keeps every whole batch before it (a batch is written
// with one write(), so a process killed mid-run leaves whole batches only).
TEST(TraceCodec, TruncationAtEveryOffsetKeepsCompleteBatches) {
    const auto events = golden::events_v1();
    const std::string path = temp_path("batches");
    {
        TraceWriter w;
        WriterOptions o;
        o.background_flush = false;
        o.flush_interval = std::chrono::hours(1);  // batches only where the test flushes, however slow the machine
        ASSERT_EQ(w.open(path, golden::header_v2(), o), "");
        for (std::size_t i = 0; i < events.size(); ++i) {
            w.append(events[i]);
            if (i % 3 == 2) w.flush();  // batches of 3 records
        }
        ASSERT_EQ(w.close(), "");
    }
    const auto bytes = file_bytes(path);
    const std::vector<BatchSpan> batches = batches_of(bytes);
    ASSERT_EQ(batches.size(), 1 + (events.size() + 2) / 3);  // the head's, then one per 3 records
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
        ReadAll r = read_memory(std::span(bytes).first(cut));
        if (cut < batches[0].end) {
            EXPECT_NE(r.open_error, "") << "cut at " << cut;
            continue;
        }
        ASSERT_EQ(r.open_error, "") << "cut at " << cut;
        std::size_t whole = 0;  // batches wholly inside the prefix
        while (whole < batches.size() && batches[whole].end <= cut) ++whole;
        const std::size_t complete = std::min(events.size(), 3 * (whole - 1));
        ASSERT_EQ(r.events.size(), complete) << "cut at " << cut;
        for (std::size_t i = 0; i < complete; ++i) expect_same(r.events[i].event(), events[i], i);
        if (whole == batches.size() || batches[whole].start == cut) {
            EXPECT_EQ(r.status, ReadStatus::End) << "cut at " << cut << ": " << r.message;
        } else {
            EXPECT_EQ(r.status, ReadStatus::Truncated) << "cut at " << cut << ": " << r.message;
            EXPECT_NE(r.message.find("byte offset " + std::to_string(batches[whole].start)), std::string::npos)
                << r.message;
        }
    }
}

TEST(TraceCodec, RandomCorruptionNeverCrashes) {
    const auto bytes = file_bytes(write_events(golden::events_v1()));
    std::mt19937 rng(12345);
    int corrupt = 0, opened = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        auto copy = bytes;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < flips; ++i) copy[rng() % copy.size()] = static_cast<std::byte>(rng());
        if (iter % 7 == 0) copy.resize(rng() % copy.size());
        ReadAll r = read_memory(copy);
        if (!r.open_error.empty()) continue;
        ++opened;
        if (r.status == ReadStatus::Corrupt) {
            ++corrupt;
            EXPECT_NE(r.message.find("byte offset"), std::string::npos) << r.message;
        }
        for (auto& o : r.events) (void)format_event(o.event());  // formatting any decoded event is safe
    }
    EXPECT_GT(opened, 1000);
    EXPECT_GT(corrupt, 10);
    // Pure noise after a valid header.
    const auto head = empty_trace();
    for (int iter = 0; iter < 2000; ++iter) {
        auto copy = head;
        const std::size_t n = rng() % 200;
        for (std::size_t i = 0; i < n; ++i) copy.push_back(static_cast<std::byte>(rng()));
        ReadAll r = read_memory(copy);
        EXPECT_EQ(r.open_error, "");
    }
}

TEST(TraceCodec, CorruptRecordNamesOffsetAndField) {
    auto b = empty_trace();
    const std::size_t at = b.size() + 12;  // after the batch checksum
    // Record: mmio { op_size = 7 (opcode 7 is not an access) }.
    b = append_batch(b, bytes_of({0x0a, 0x04, 0x2a, 0x02, 0x08, 0x07}));
    ReadAll r = read_memory(b);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::Corrupt);
    EXPECT_EQ(r.offset, at);
    EXPECT_NE(r.message.find("record #0 at byte offset " + std::to_string(at)), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("op_size"), std::string::npos) << r.message;
}

TEST(TraceCodec, OversizedLengthIsCorruptNotAnAllocation) {
    auto b = empty_trace();
    b = append_batch(b, bytes_of({0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}));
    ReadAll r = read_memory(b);
    EXPECT_EQ(r.status, ReadStatus::Corrupt);
    EXPECT_NE(r.message.find("over the limit"), std::string::npos) << r.message;
}

TEST(TraceCodec, DataWiderThanSizeIsCorrupt) {
    auto b = empty_trace();
    // mmio { op_size = READ|1<<3, data = 0x1ff }
    b = append_batch(b, bytes_of({0x0a, 0x07, 0x2a, 0x05, 0x08, 0x09, 0x38, 0xff, 0x03}));
    ReadAll r = read_memory(b);
    EXPECT_EQ(r.status, ReadStatus::Corrupt);
    EXPECT_NE(r.message.find("wider than the access size"), std::string::npos) << r.message;
}

TEST(TraceCodec, NewerSchemaFieldsAreSkipped) {
    auto b = empty_trace();
    // Top-level field 40 (varint) and field 41 (bytes), then a record with an
    // unknown event (field 13) and an unknown record field 30, then a claim.
    b = append_batch(b, bytes_of({0xc0, 0x02, 0x05, 0xca, 0x02, 0x02, 0x01, 0x02,              //
                                  0x0a, 0x07, 0x08, 0x02, 0x6a, 0x00, 0xf0, 0x01, 0x09,        //
                                  0x0a, 0x04, 0x42, 0x02, 0x08, 0x03}));
    ReadAll r = read_memory(b);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::End) << r.message;
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[0].ev.kind, EventKind::Unknown);
    EXPECT_EQ(r.events[0].ev.time_ns, 1u);
    EXPECT_EQ(r.events[1].ev.kind, EventKind::Claim);
    EXPECT_EQ(r.events[1].ev.id, 3);
}

// A skipped field of a newer format (fixed64 / fixed32) whose width runs past
// the end of its checked batch: the batch contradicts its own size. Reported
// at the batch end, and nothing after it (the next batch's checksum read as
// record bytes) is returned. Regression: fuzz/corpus/trace_reader/field-past-batch-end.
TEST(TraceCodec, FieldSkippedPastItsBatchEndIsCorrupt) {
    const std::vector<std::vector<std::byte>> short_fields = {
        bytes_of({0xc1, 0x02, 0x01, 0x02}),  // field 40, fixed64: 2 of its 8 bytes in the batch
        bytes_of({0xc5, 0x02, 0x01}),        // field 40, fixed32: 1 of its 4 bytes in the batch
    };
    for (const auto& field : short_fields) {
        auto b = empty_trace();
        const std::size_t batch_end = b.size() + 12 + field.size();
        b = append_batch(b, field);
        b = append_batch(b, bytes_of({0x0a, 0x04, 0x42, 0x02, 0x08, 0x03}));  // a claim, in a good batch
        ReadAll r = read_memory(b);
        ASSERT_EQ(r.open_error, "");
        EXPECT_EQ(r.status, ReadStatus::Corrupt) << r.message;
        EXPECT_EQ(r.offset, batch_end) << r.message;
        EXPECT_NE(r.message.find("runs past the end of its checked batch at byte offset " + std::to_string(batch_end)),
                  std::string::npos)
            << r.message;
        EXPECT_TRUE(r.events.empty());
    }
}

TEST(TraceCodec, OpenErrorsSayWhatIsWrong) {
    TraceReader r;
    EXPECT_NE(r.open("/nonexistent/x.ctrace").find("cannot open /nonexistent/x.ctrace"), std::string::npos);
    EXPECT_NE(r.open(::testing::TempDir()).find("directory"), std::string::npos);
    EXPECT_NE(r.open_memory({}).find("empty file"), std::string::npos);
    auto junk = bytes_of({'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'});
    EXPECT_NE(r.open_memory(junk).find("not a coreio trace"), std::string::npos);
    auto b = empty_trace();
    EXPECT_NE(r.open_memory(std::span(b).first(5)).find("truncated preamble"), std::string::npos);
    b[11] = std::byte{2};  // format version 2
    EXPECT_NE(r.open_memory(b).find("format version 2 is not supported"), std::string::npos);
    b = empty_trace();
    b[12] = std::byte{0x1a};  // not the header tag
    EXPECT_NE(r.open_memory(b).find("expected the header"), std::string::npos);
    b = empty_trace();
    EXPECT_NE(r.open_memory(std::span(b).first(b.size() - 13)).find("truncated header"), std::string::npos);
    EXPECT_NE(r.open_memory(std::span(b).first(b.size() - 12)).find("no batch checksum after the header"),
              std::string::npos);
    EXPECT_NE(r.open_memory(std::span(b).first(b.size() - 1)).find("file ends inside the batch checksum"),
              std::string::npos);
    TraceWriter w;
    EXPECT_NE(w.open("/nonexistent/dir/x.ctrace", {}).find("cannot create /nonexistent/dir/x.ctrace"),
              std::string::npos);
}

TEST(TraceWriterTest, BackgroundFlushWritesAnIdleBatch) {
    const std::string path = temp_path("idle");
    TraceWriter w;
    WriterOptions o;
    o.flush_interval = std::chrono::milliseconds(10);
    ASSERT_EQ(w.open(path, {}, o), "");
    Event e;
    e.kind = EventKind::Reset;
    e.time_ns = w.now_ns();
    w.append(e);
    std::size_t seen = 0;
    for (int i = 0; i < 500 && seen == 0; ++i) {  // up to 5 s
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        seen = read_file(path).events.size();
    }
    EXPECT_EQ(seen, 1u);
    EXPECT_EQ(w.close(), "");
}

TEST(TraceWriterTest, KillNineKeepsEveryFlushedRecord) {
    const std::string path = temp_path("kill9");
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(pipefd[0]);
        TraceWriter w;
        if (!w.open(path, golden::header_v1()).empty()) ::_exit(1);
        Event e;
        e.kind = EventKind::Mmio;
        e.op = Op::Write;
        e.size = 4;
        e.mask = 0xf;
        for (std::uint32_t i = 0;; ++i) {
            e.time_ns = w.now_ns();
            e.address = 0x1000 + (i % 8) * 4;
            e.tag = i;
            e.data[0] = static_cast<std::byte>(i);
            w.append(e);
            if (i == 1000) {
                w.flush();
                const char c = 'x';
                if (::write(pipefd[1], &c, 1) != 1) ::_exit(1);
            }
            if (i > 1000 && i % 64 == 0) ::usleep(100);
        }
    }
    ::close(pipefd[1]);
    pollfd p{pipefd[0], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);
    char c;
    ASSERT_EQ(::read(pipefd[0], &c, 1), 1);
    ::usleep(50'000);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(pipefd[0]);
    ASSERT_TRUE(WIFSIGNALED(status));
    ReadAll r = read_file(path);
    ASSERT_EQ(r.open_error, "");
    EXPECT_GT(r.events.size(), 1000u);
    // The file ends at a record boundary, or inside the batch whose write()
    // the kill cut short (the kernel stops a regular file's write between pages
    // once SIGKILL is pending: seen in CI); never in bytes that read as records.
    EXPECT_TRUE(r.status == ReadStatus::End || r.status == ReadStatus::Truncated) << r.message;
    for (std::size_t i = 0; i < r.events.size(); ++i) {
        ASSERT_EQ(r.events[i].ev.tag, i);
        ASSERT_EQ(r.events[i].ev.address, 0x1000 + (i % 8) * 4);
    }
}
