// Write errors reach the caller: a full disk or a file size limit mid-file
// gives one error naming the file and the cause, later records are dropped,
// and records_written() is exactly what the file holds (the file is cut back
// to the last whole batch, so it reads to a clean end).
#include <gtest/gtest.h>

#include "coreio/trace/output_file.hpp"
#include "coreio/trace/writer.hpp"
#include "test_util.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

namespace {

Event write_event(std::uint32_t i) {
    Event e;
    e.kind = EventKind::Mmio;
    e.time_ns = 100u * i;
    e.op = Op::Write;
    e.size = 4;
    e.mask = 0xf;
    e.address = 0x1000 + 4u * (i % 16);
    e.tag = i;
    e.data[0] = static_cast<std::byte>(i);
    return e;
}

// Appends `n` records in batches of about 4 KiB, under a 256 KiB file size limit.
void fill_past_the_limit(bool background, std::uint32_t n) {
    const std::string path = temp_path(background ? "fsize-bg" : "fsize");
    TraceWriter w;
    WriterOptions o;
    o.background_flush = background;
    o.batch_bytes = 4096;
    std::string error;
    {
        FileSizeLimit limit(256 * 1024);
        ASSERT_TRUE(limit.ok());
        ASSERT_EQ(w.open(path, {}, o), "");
        for (std::uint32_t i = 0; i < n; ++i) w.append(write_event(i));
        error = w.close();
    }
    EXPECT_NE(error.find("writing " + path + " failed: File too large"), std::string::npos) << error;
    EXPECT_EQ(w.records(), n);
    EXPECT_LT(w.records_written(), n);
    EXPECT_GT(w.records_written(), 1000u);
    EXPECT_NE(error.find("the file holds the first " + std::to_string(w.records_written()) + " of " +
                         std::to_string(n) + " records"),
              std::string::npos)
        << error;
    ReadAll r = read_file(path);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::End) << r.message;  // cut back to a whole batch
    ASSERT_EQ(r.events.size(), w.records_written());
    for (std::size_t i = 0; i < r.events.size(); ++i) ASSERT_EQ(r.events[i].ev.tag, i);
}

}  // namespace

TEST(TraceWriterErrors, FileSizeLimitMidFileIsReportedAndCountsWhatTheFileHolds) {
    fill_past_the_limit(false, 60000);
}

TEST(TraceWriterErrors, FileSizeLimitOnTheFlushThreadToo) { fill_past_the_limit(true, 60000); }

// As a tool runs under `ulimit -f`: SIGXFSZ keeps its default action (which
// ends the process). The write must fail with EFBIG and be reported like any
// write error, on the appending thread and on the flush thread.
TEST(TraceWriterErrors, FileSizeLimitWithTheDefaultSignalActionIsAnErrorNotADeath) {
    for (const bool background : {false, true}) {
        const std::string path = temp_path("fsize-default");
        EXPECT_EXIT(
            {
                rlimit l{};
                ::getrlimit(RLIMIT_FSIZE, &l);
                l.rlim_cur = 64 * 1024;
                std::signal(SIGXFSZ, SIG_DFL);
                if (::setrlimit(RLIMIT_FSIZE, &l) != 0) std::_Exit(3);
                TraceWriter w;
                WriterOptions o;
                o.background_flush = background;
                o.batch_bytes = 4096;
                if (!w.open(path, {}, o).empty()) std::_Exit(4);
                for (std::uint32_t i = 0; i < 20000; ++i) w.append(write_event(i));
                const std::string e = w.close();
                std::_Exit(e.find("File too large") != std::string::npos && w.records_written() > 0 ? 0 : 5);
            },
            ::testing::ExitedWithCode(0), "")
            << (background ? "on the flush thread" : "on the appending thread");
        ReadAll r = read_file(path);
        EXPECT_EQ(r.status, ReadStatus::End) << r.message;  // cut back to a whole batch
        EXPECT_GT(r.events.size(), 0u);
    }
}

TEST(TraceWriterErrors, FullDeviceFailsAtOpenWithTheCause) {
    TraceWriter w;
    const std::string e = w.open("/dev/full", {});
    EXPECT_NE(e.find("writing /dev/full failed: No space left on device"), std::string::npos) << e;
    EXPECT_FALSE(w.is_open());
}

TEST(TraceWriterErrors, OpenOnAFullDeviceDescriptorFails) {
    OutputFile out;
    ASSERT_EQ(out.open("/dev/full"), "");  // not a regular file: written directly
    TraceWriter w;
    EXPECT_NE(w.open(out.fd(), "/dev/full", {}), "");
    EXPECT_EQ(w.records_written(), 0u);
}

// OutputFile: nothing appears at the path before commit(), an existing file is
// untouched on failure, and the output may not be an input.
TEST(OutputFileTest, ReplacesOnlyOnCommit) {
    const std::string path = temp_path("out");
    { std::ofstream(path) << "old"; }
    {
        OutputFile f;
        ASSERT_EQ(f.open(path), "");
        std::fputs("new contents", f.stream());
        std::fflush(f.stream());
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(file_bytes(path).data()), 3), "old");
        // destroyed without commit(): the old file stays, the temporary goes
    }
    EXPECT_EQ(file_bytes(path).size(), 3u);
    OutputFile f;
    ASSERT_EQ(f.open(path), "");
    std::fputs("new contents", f.stream());
    ASSERT_EQ(f.commit(), "");
    EXPECT_EQ(file_bytes(path).size(), 12u);
}

TEST(OutputFileTest, RefusesAnInputAndReportsFullDevices) {
    const std::string path = temp_path("in");
    { std::ofstream(path) << "input"; }
    OutputFile f;
    const std::string e = f.open(path, {"/nonexistent", path});
    EXPECT_NE(e.find("is also an input"), std::string::npos) << e;
    EXPECT_EQ(file_bytes(path).size(), 5u);
    OutputFile full;
    ASSERT_EQ(full.open("/dev/full"), "");
    std::fputs("x", full.stream());
    const std::string c = full.commit();
    EXPECT_NE(c.find("writing /dev/full failed: No space left on device"), std::string::npos) << c;
    OutputFile dir;
    EXPECT_NE(dir.open("/").find("directory"), std::string::npos);
}

TEST(OutputFileTest, PublishMakesTheFileVisibleWhileWriting) {
    const std::string path = temp_path("publish");
    OutputFile f;
    ASSERT_EQ(f.open(path), "");
    ASSERT_EQ(::write(f.fd(), "ab", 2), 2);
    ASSERT_EQ(f.publish(), "");
    ASSERT_EQ(::write(f.fd(), "cd", 2), 2);
    EXPECT_EQ(file_bytes(path).size(), 4u);
    f.abort();  // published: stays
    EXPECT_EQ(file_bytes(path).size(), 4u);
}
