// libcoreio_trace.so.0, loaded the way libcoreio loads it for COREIO_TRACE=FILE.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <chrono>

#include "../trace/test_util.hpp"
#include "coreio/client.hpp"

using namespace coreio;
using namespace trace_test;

TEST(TapLibrary, OpenRecordClose) {
    void* lib = ::dlopen(COREIO_TAP_LIB, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib, nullptr) << ::dlerror();
    using Open = FrameTap* (*)(const char*, const char*);
    using Close = void (*)(FrameTap*);
    auto open = reinterpret_cast<Open>(::dlsym(lib, "coreio_trace_tap_open"));
    auto close = reinterpret_cast<Close>(::dlsym(lib, "coreio_trace_tap_close"));
    ASSERT_NE(open, nullptr);
    ASSERT_NE(close, nullptr);
    EXPECT_EQ(open("/nonexistent/dir/t.ctrace", "test"), nullptr);
    EXPECT_EQ(open(nullptr, "test"), nullptr);
    const std::string path = temp_path("lib");
    FrameTap* tap = open(path.c_str(), "tap-library-test");
    ASSERT_NE(tap, nullptr);
    tap->on_connection(Channel::Main, true);
    tap->on_frame(Channel::Main, Direction::Sent, Frame::claim(1).bytes());
    const Frame req = Frame::mmio_request(Op::Read, 1, 0x1000, 4, 0, 1);
    tap->on_frame(Channel::Main, Direction::Received, req.bytes());  // waits for its reply...
    close(tap);                                                      // ...written as NO_REPLY on close
    ReadAll r = read_file(path);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.header.tool, "tap-library-test");
    EXPECT_EQ(r.header.observer, coreio::trace::Observer::Client);
    ASSERT_EQ(r.events.size(), 3u);
    EXPECT_EQ(r.events[1].ev.kind, coreio::trace::EventKind::Claim);
    EXPECT_EQ(r.events[1].ev.towards, coreio::trace::Towards::Vm);
    EXPECT_EQ(r.events[2].ev.status, coreio::trace::Status::NoReply);
    ::dlclose(lib);
}

// The library's tap records a ClientSession's batch with the request and the
// reply at their own times: the latency survives.
TEST(TapLibrary, BatchKeepsTheReplyLatency) {
    void* lib = ::dlopen(COREIO_TAP_LIB, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib, nullptr) << ::dlerror();
    using Open = FrameTap* (*)(const char*, const char*);
    using Close = void (*)(FrameTap*);
    auto open = reinterpret_cast<Open>(::dlsym(lib, "coreio_trace_tap_open"));
    auto close = reinterpret_cast<Close>(::dlsym(lib, "coreio_trace_tap_close"));
    ASSERT_NE(open, nullptr);
    ASSERT_NE(close, nullptr);
    const std::string path = temp_path("lib-batch");
    FrameTap* tap = open(path.c_str(), "tap-library-test");
    ASSERT_NE(tap, nullptr);
    const Frame req = Frame::mmio_request(Op::Read, 1, 0x1000, 4, 0, 7);
    const TapFrame frames[] = {{Channel::Main, Direction::Received, req}, {Channel::Main, Direction::Sent, req}};
    const auto now = std::chrono::steady_clock::now();
    tap->on_frames(TapBatch{frames, now, now + std::chrono::milliseconds(3)});
    close(tap);
    ReadAll r = read_file(path);
    ASSERT_EQ(r.open_error, "");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].ev.kind, coreio::trace::EventKind::Mmio);
    EXPECT_EQ(r.events[0].ev.status, coreio::trace::Status::Complete);
    EXPECT_EQ(r.events[0].ev.reply_after_ns, 3'000'000u);
    ::dlclose(lib);
}
