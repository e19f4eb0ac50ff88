// The tap's frame times (a TSC-based clock kept in step with CLOCK_MONOTONIC)
// agree with TraceWriter::now_ns() and never go back, across many of its
// millisecond rescaling intervals, and with a busy flush thread; frames handed
// over together (TraceTap::on_frames) share one time.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"
#include "test_util.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

TEST(TapClockTest, FrameTimesMatchTheWriterClock) {
    const std::string path = temp_path("tapclock");
    TraceWriter w;
    WriterOptions wo;
    wo.batch_bytes = 4096;  // many hand-offs to the flush thread
    ASSERT_EQ(w.open(path, {}, wo), "");
    // Lower and upper bounds of each request's time, read around on_frame().
    std::vector<std::pair<std::uint64_t, std::uint64_t>> bounds;
    {
        TraceTap tap(w);
        for (std::uint32_t i = 0; i < 20000; ++i) {
            const Frame req = Frame::mmio_request(Op::Read, 0, 0x1000 + 4 * (i % 16), 4, 0, i);
            const std::uint64_t before = w.now_ns();
            tap.on_frame(Channel::Main, Direction::Received, req.bytes());
            const std::uint64_t after = w.now_ns();
            bounds.emplace_back(before, after);
            tap.on_frame(Channel::Main, Direction::Sent, req.bytes());
            if (i % 2000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));  // cross intervals
        }
    }
    ASSERT_EQ(w.close(), "");
    const ReadAll r = read_file(path);
    ASSERT_EQ(r.status, ReadStatus::End) << r.message;
    ASSERT_EQ(r.events.size(), bounds.size());
    // A rate measured over a millisecond from pairs read within 2 us of each
    // other is off by < 0.5 %: < 5 us over an interval. Allow 20 us.
    constexpr std::uint64_t kSlack = 20'000;
    std::uint64_t prev = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        const Event& ev = r.events[i].ev;
        EXPECT_GE(ev.time_ns + kSlack, bounds[i].first) << "record " << i;
        EXPECT_LE(ev.time_ns, bounds[i].second + kSlack) << "record " << i;
        EXPECT_GE(ev.time_ns, prev) << "record " << i << " goes back";
        prev = ev.time_ns;
        if (::testing::Test::HasFailure()) break;
    }
}

TEST(TapClockTest, FramesOfOneReadShareOneTime) {
    const std::string path = temp_path("tapbatch");
    TraceWriter w;
    WriterOptions wo;
    wo.background_flush = false;
    ASSERT_EQ(w.open(path, {}, wo), "");
    {
        TraceTap tap(w);
        std::vector<Frame> requests, replies;
        for (std::uint32_t i = 0; i < 3; ++i) {
            requests.push_back(Frame::mmio_request(Op::Read, 0, 0x2000 + 4 * i, 4, 0, 10 + i));
            Frame rep = requests.back();
            const std::uint32_t v = 0xab00 + i;
            std::memcpy(rep.payload(), &v, 4);
            replies.push_back(rep);
        }
        tap.on_frames(Channel::Main, Direction::Received, requests);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        tap.on_frames(Channel::Main, Direction::Sent, replies);
        EXPECT_EQ(tap.frames(), 6u);
    }
    ASSERT_EQ(w.close(), "");
    const ReadAll r = read_file(path);
    ASSERT_EQ(r.status, ReadStatus::End) << r.message;
    ASSERT_EQ(r.events.size(), 3u);
    for (std::uint32_t i = 0; i < 3; ++i) {
        const Event& ev = r.events[i].ev;
        EXPECT_EQ(ev.kind, EventKind::Mmio);
        EXPECT_EQ(ev.status, Status::Complete);
        EXPECT_EQ(ev.address, 0x2000u + 4 * i);
        EXPECT_EQ(ev.tag, 10 + i);
        EXPECT_EQ(data_value(std::span(ev.data).first(4)), 0xab00u + i);
        EXPECT_EQ(ev.time_ns, r.events[0].ev.time_ns);
        EXPECT_EQ(ev.reply_after_ns, r.events[0].ev.reply_after_ns);
        EXPECT_GE(ev.reply_after_ns, 2'000'000u);  // the replies came after the sleep
    }
}
