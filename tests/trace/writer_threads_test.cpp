// TraceWriter under concurrent appenders while the flush thread writes full
// batches outside the lock: every record arrives whole, none twice or lost.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "coreio/trace/writer.hpp"
#include "test_util.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

TEST(WriterThreadsTest, ConcurrentAppendsAllArriveWhole) {
    const std::string path = temp_path("threads");
    TraceWriter w;
    WriterOptions wo;
    wo.batch_bytes = 4096;  // a hand-off to the flush thread every few hundred records
    ASSERT_EQ(w.open(path, {}, wo), "");
    constexpr std::uint32_t kThreads = 4, kEach = 20000;
    std::vector<std::thread> threads;
    for (std::uint32_t t = 0; t < kThreads; ++t)
        threads.emplace_back([&w, t] {
            Event e;
            e.kind = EventKind::Mmio;
            e.op = Op::Write;
            e.size = 4;
            e.mask = 0xf;
            e.client = t;
            for (std::uint32_t i = 0; i < kEach; ++i) {
                e.time_ns = w.now_ns();
                e.address = 0x1000 + 4 * (i % 64);
                e.tag = i;
                e.data[0] = static_cast<std::byte>(i);
                w.append(e);
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(w.records(), std::uint64_t{kThreads} * kEach);
    ASSERT_EQ(w.close(), "");
    const ReadAll r = read_file(path);
    ASSERT_EQ(r.status, ReadStatus::End) << r.message;
    ASSERT_EQ(r.events.size(), std::size_t{kThreads} * kEach);
    // Each thread's records arrive in its order, with its values.
    std::vector<std::uint32_t> next(kThreads, 0);
    for (const auto& o : r.events) {
        const Event& ev = o.ev;
        ASSERT_LT(ev.client, kThreads);
        const std::uint32_t i = next[ev.client]++;
        ASSERT_EQ(ev.tag, i) << "thread " << ev.client;
        ASSERT_EQ(ev.address, 0x1000u + 4 * (i % 64));
        ASSERT_EQ(ev.data[0], static_cast<std::byte>(i));
    }
    for (std::uint32_t t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kEach);
}
