// Golden files: every reader must keep reading the files earlier versions wrote.
#include <gtest/gtest.h>

#include "coreio/trace/writer.hpp"
#include "golden_events.hpp"
#include "test_util.hpp"

using namespace coreio::trace;
using namespace trace_test;

TEST(GoldenTrace, V1ReadsWithExactContents) {
    ReadAll r = read_file(std::string(COREIO_GOLDEN_DIR) + "/v1-basic.ctrace");
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::End) << r.message;
    EXPECT_EQ(r.header, golden::header_v1());
    const auto want = golden::events_v1();
    ASSERT_EQ(r.events.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) expect_same(r.events[i].event(), want[i], i);
}

// Guards against an accidental format change: today's writer still produces the
// golden bytes. A deliberate change bumps the format and adds a new golden file.
TEST(GoldenTrace, V1WriterOutputIsUnchanged) {
    const std::string path = temp_path("golden");
    TraceWriter w;
    WriterOptions o;
    o.background_flush = false;
    ASSERT_EQ(w.open(path, golden::header_v1(), o), "");
    for (const auto& e : golden::events_v1()) w.append(e);
    ASSERT_EQ(w.close(), "");
    EXPECT_EQ(file_bytes(path), file_bytes(std::string(COREIO_GOLDEN_DIR) + "/v1-basic.ctrace"));
}
