// Golden files: every reader must keep reading the files earlier versions wrote.
#include <gtest/gtest.h>

#include "coreio/trace/writer.hpp"
#include "golden_events.hpp"
#include "test_util.hpp"

using namespace coreio::trace;
using namespace trace_test;

namespace {

void expect_golden_contents(const std::string& file, const TraceHeader& header) {
    ReadAll r = read_file(std::string(COREIO_GOLDEN_DIR) + "/" + file);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::End) << r.message;
    EXPECT_EQ(r.header, header);
    const auto want = golden::events_v1();
    ASSERT_EQ(r.events.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) expect_same(r.events[i].event(), want[i], i);
}

}  // namespace

// Version 1: no checksums.
TEST(GoldenTrace, V1ReadsWithExactContents) { expect_golden_contents("v1-basic.ctrace", golden::header_v1()); }

// Version 2: batch checksums.
TEST(GoldenTrace, V2ReadsWithExactContents) { expect_golden_contents("v2-checksum.ctrace", golden::header_v2()); }

// Guards against an accidental format change: today's writer still produces the
// golden bytes. A deliberate change bumps the format and adds a new golden file.
TEST(GoldenTrace, V2WriterOutputIsUnchanged) {
    const std::string path = temp_path("golden");
    TraceWriter w;
    WriterOptions o;
    o.background_flush = false;
    o.flush_interval = std::chrono::hours(1);  // batches only where the test flushes, however slow the machine
    ASSERT_EQ(w.open(path, golden::header_v2(), o), "");
    const auto events = golden::events_v1();
    for (std::size_t i = 0; i < events.size(); ++i) {
        w.append(events[i]);
        if (i + 1 == golden::kV2FlushAfter) w.flush();
    }
    ASSERT_EQ(w.close(), "");
    EXPECT_EQ(file_bytes(path), file_bytes(std::string(COREIO_GOLDEN_DIR) + "/v2-checksum.ctrace"));
}
