// TraceTap: frames in, typed records out (folding, pairing, DMA cause, errors).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"
#include "test_util.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

namespace {

// A writer + tap watching as the client (Received = from the VM).
struct Rig {
    std::string path = temp_path("tap");
    TraceWriter writer;
    std::unique_ptr<TraceTap> tap;
    explicit Rig(TapOptions o = {}) {
        WriterOptions wo;
        wo.background_flush = false;
        EXPECT_EQ(writer.open(path, {}, wo), "");
        tap = std::make_unique<TraceTap>(writer, o);
    }
    void vm_sends(const Frame& f, Channel ch = Channel::Main) { tap->on_frame(ch, Direction::Received, f.bytes()); }
    void client_sends(const Frame& f, Channel ch = Channel::Main) { tap->on_frame(ch, Direction::Sent, f.bytes()); }
    ReadAll finish() {
        tap.reset();
        EXPECT_EQ(writer.close(), "");
        return read_file(path);
    }
};

Frame read_req(std::uint64_t addr, std::uint32_t tag, unsigned size = 4) {
    return Frame::mmio_request(Op::Read, 0, addr, size, 0, tag);
}
Frame reply_with(Frame f, std::uint32_t value, bool error = false) {
    std::memcpy(f.payload(), &value, 4);
    f.set_error(error);
    return f;
}
Frame write_req(Op op, std::uint64_t addr, std::uint32_t value, std::uint32_t tag) {
    Frame f = Frame::mmio_request(op, 0, addr, 4, 0, tag);
    std::memcpy(f.payload(), &value, 4);
    return f;
}

}  // namespace

TEST(TraceTapTest, FoldsReadWithItsReply) {
    Rig rig;
    const Frame req = read_req(0x10000004, 9);
    rig.vm_sends(req);
    rig.client_sends(reply_with(req, 0x1234));
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 1u);
    const Event& e = r.events[0].event();
    EXPECT_EQ(e.kind, EventKind::Mmio);
    EXPECT_EQ(e.towards, Towards::Client);
    EXPECT_EQ(e.op, Op::Read);
    EXPECT_EQ(e.address, 0x10000004u);
    EXPECT_EQ(e.size, 4);
    EXPECT_EQ(e.tag, 9u);
    EXPECT_EQ(data_value({e.data.data(), 4}), 0x1234u);
    EXPECT_EQ(e.status, Status::Complete);
    EXPECT_FALSE(e.error);
}

TEST(TraceTapTest, PipelinedRepliesOutOfOrderKeepRequestOrder) {
    Rig rig;
    const Frame a = read_req(0x100, 1), b = read_req(0x104, 2);
    const Frame w = write_req(Op::Write, 0x108, 0x55, 3);
    rig.vm_sends(a);
    rig.vm_sends(b);
    rig.vm_sends(w);  // posted: complete at once, but waits behind a and b
    rig.client_sends(reply_with(b, 0xbb, true));
    rig.client_sends(reply_with(a, 0xaa));
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 3u);
    EXPECT_EQ(r.events[0].ev.address, 0x100u);
    EXPECT_EQ(data_value({r.events[0].ev.data.data(), 4}), 0xaau);
    EXPECT_EQ(r.events[1].ev.address, 0x104u);
    EXPECT_TRUE(r.events[1].ev.error);
    EXPECT_EQ(r.events[2].ev.op, Op::Write);
    EXPECT_EQ(data_value({r.events[2].ev.data.data(), 4}), 0x55u);
    EXPECT_EQ(r.events[2].ev.mask, 0xfu);
    EXPECT_LE(r.events[0].ev.time_ns, r.events[1].ev.time_ns);
}

TEST(TraceTapTest, PairAccessKeepsBothElements) {
    Rig rig;
    Frame req = Frame::mmio_request(Op::ReadPair, 2, 0x2000, 8, kFlagPriv, 4);
    rig.vm_sends(req);
    Frame rep = req;
    const std::uint64_t x = 0x1111111111111111ull, y = 0x2222222222222222ull;
    std::memcpy(rep.payload(), &x, 8);
    std::memcpy(rep.pair_second(), &y, 8);
    rig.client_sends(rep);
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 1u);
    const Event& e = r.events[0].event();
    EXPECT_EQ(e.op, Op::ReadPair);
    EXPECT_EQ(e.id, 2);
    EXPECT_EQ(e.flags, kFlagPriv);
    EXPECT_EQ(data_value({e.data.data(), 8}), x);
    EXPECT_EQ(data_value({e.data2.data(), 8}), y);
}

// Data of every access size, single and pair, read and written: exactly
// `size` bytes of the frame's data are recorded, none of the bytes after them
// (the frames carry 0xee there).
TEST(TraceTapTest, DataOfEverySizeIsExactlyTheAccessBytes) {
    Rig rig;
    struct Access {
        Op op;
        unsigned size;
    };
    std::vector<Access> accesses;
    for (unsigned size : {1u, 2u, 3u, 4u, 7u, 8u, 9u, 16u, 32u}) {
        accesses.push_back({Op::Read, size});
        accesses.push_back({Op::Write, size});
    }
    for (unsigned size : {1u, 2u, 4u, 8u, 16u}) {
        accesses.push_back({Op::ReadPair, size});
        accesses.push_back({Op::WritePair, size});
    }
    auto fill = [](Frame& f, unsigned size, std::uint8_t first) {
        f.fill_payload(0xee);
        for (unsigned i = 0; i < size; ++i) f.payload()[i] = static_cast<std::byte>(first + i);
        if (is_pair_op(f.op()))
            for (unsigned i = 0; i < size; ++i) f.pair_second()[i] = static_cast<std::byte>(first + 0x40 + i);
    };
    std::uint32_t tag = 0;
    for (const Access& a : accesses) {
        Frame req = Frame::mmio_request(a.op, 0, 0x4000, a.size, 0, tag++);
        if (!is_read_op(a.op)) fill(req, a.size, 0x10);
        ASSERT_EQ(req.validate(), FrameError::Ok) << static_cast<int>(a.op) << " size " << a.size;
        rig.vm_sends(req);
        if (access_wants_reply(a.op)) {
            Frame rep = req;
            fill(rep, a.size, 0x80);
            rig.client_sends(rep);
        }
    }
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), accesses.size());
    for (std::size_t k = 0; k < accesses.size(); ++k) {
        const Access& a = accesses[k];
        const Event& e = r.events[k].event();
        SCOPED_TRACE("op " + std::to_string(static_cast<int>(a.op)) + " size " + std::to_string(a.size));
        ASSERT_EQ(e.size, a.size);
        const std::uint8_t first = is_read_op(a.op) ? 0x80 : 0x10;
        for (unsigned i = 0; i < e.data.size(); ++i)
            EXPECT_EQ(e.data[i], i < a.size ? static_cast<std::byte>(first + i) : std::byte{0}) << "byte " << i;
        for (unsigned i = 0; i < e.data2.size(); ++i) {
            const bool used = is_pair_op(a.op) && i < a.size;
            EXPECT_EQ(e.data2[i], used ? static_cast<std::byte>(first + 0x40 + i) : std::byte{0}) << "pair byte " << i;
        }
    }
}

TEST(TraceTapTest, UnansweredAndUnmatched) {
    Rig rig;
    rig.tap->on_connection(Channel::Main, true);
    rig.vm_sends(read_req(0x10, 1));
    rig.client_sends(reply_with(read_req(0x20, 2), 7));  // its request was never seen
    rig.tap->on_connection(Channel::Main, false);
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 4u);
    EXPECT_EQ(r.events[0].ev.kind, EventKind::Connection);
    EXPECT_TRUE(r.events[0].ev.up);
    EXPECT_EQ(r.events[1].ev.status, Status::NoReply);
    EXPECT_EQ(r.events[1].ev.address, 0x10u);
    EXPECT_EQ(r.events[2].ev.status, Status::ReplyOnly);
    EXPECT_EQ(r.events[2].ev.towards, Towards::Vm);
    EXPECT_EQ(r.events[2].ev.address, 0x20u);
    EXPECT_EQ(r.events[3].ev.kind, EventKind::Connection);
    EXPECT_FALSE(r.events[3].ev.up);
}

TEST(TraceTapTest, DmaNamesTheMmioInFlight) {
    Rig rig;
    rig.vm_sends(read_req(0x0, 1));
    rig.client_sends(reply_with(read_req(0x0, 1), 0));
    const Frame doorbell = write_req(Op::WriteAck, 0x10, 1, 2);
    rig.vm_sends(doorbell);  // record 1; its handler starts a DMA
    Frame d = Frame::dma_request(Op::WriteAck, 1, 3, 0x8000, 8, 0, 42);
    rig.client_sends(d, Channel::Dma);
    rig.vm_sends(d, Channel::Dma);  // DMA reply
    rig.client_sends(doorbell);     // doorbell acknowledged
    Frame late = Frame::dma_request(Op::Read, 0, 0, 0x9000, 4, 0, 43);
    rig.client_sends(late, Channel::Dma);  // nothing in flight now
    Frame late_reply = late;
    late_reply.set_error(true);
    rig.vm_sends(late_reply, Channel::Dma);
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 4u);
    EXPECT_EQ(r.events[1].ev.op, Op::WriteAck);
    const Event& dma = r.events[2].event();
    EXPECT_EQ(dma.kind, EventKind::Dma);
    EXPECT_EQ(dma.channel, Channel::Dma);
    EXPECT_EQ(dma.towards, Towards::Vm);
    EXPECT_EQ(dma.id, 1);
    EXPECT_EQ(dma.sid, 3);
    EXPECT_EQ(dma.tag, 42u);
    EXPECT_EQ(dma.cause, 1u);
    EXPECT_EQ(dma.status, Status::Complete);
    EXPECT_EQ(r.events[3].ev.cause, kNoCause);
    EXPECT_TRUE(r.events[3].ev.error);
}

TEST(TraceTapTest, OtherFramesAndVmObserver) {
    TapOptions o;
    o.observer = Observer::Vm;  // Sent = towards the device
    o.client = 2;
    Rig rig(o);
    rig.tap->on_frame(Channel::Main, Direction::Received, Frame::claim(5).bytes());
    rig.tap->on_frame(Channel::Main, Direction::Received, Frame::irq_update(5, 7, 1).bytes());
    rig.tap->on_frame(Channel::Dma, Direction::Sent, Frame::ping(false).bytes());
    rig.tap->on_frame(Channel::Main, Direction::Sent, Frame::reset().bytes());
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 4u);
    EXPECT_EQ(r.events[0].ev.kind, EventKind::Claim);
    EXPECT_EQ(r.events[0].ev.towards, Towards::Vm);
    EXPECT_EQ(r.events[0].ev.id, 5);
    EXPECT_EQ(r.events[0].ev.client, 2u);
    EXPECT_EQ(r.events[1].ev.kind, EventKind::Irq);
    EXPECT_EQ(r.events[1].ev.line, 7);
    EXPECT_EQ(r.events[1].ev.level, 1);
    EXPECT_EQ(r.events[2].ev.kind, EventKind::Ping);
    EXPECT_EQ(r.events[2].ev.towards, Towards::Client);
    EXPECT_EQ(r.events[2].ev.channel, Channel::Dma);
    EXPECT_EQ(r.events[3].ev.kind, EventKind::Reset);
}

TEST(TraceTapTest, ProtocolErrorsKeepTheFrame) {
    Rig rig;
    Frame bad;
    bad.set_word(1, 0x13);
    rig.vm_sends(bad);
    const std::byte shorty[10] = {};
    rig.tap->on_frame(Channel::Main, Direction::Received, shorty);
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 2u);
    Owned& e = r.events[0];
    EXPECT_EQ(e.event().kind, EventKind::ProtocolError);
    EXPECT_EQ(e.ev.code, static_cast<std::uint8_t>(FrameError::UnknownOp));
    EXPECT_NE(e.message.find("0x13"), std::string::npos) << e.message;
    ASSERT_EQ(e.raw.size(), 64u);
    EXPECT_EQ(std::memcmp(e.raw.data(), bad.data(), 64), 0);
    EXPECT_EQ(r.events[1].ev.code, static_cast<std::uint8_t>(FrameError::Truncated));
    EXPECT_EQ(r.events[1].raw.size(), 10u);
}

TEST(TraceTapTest, RawFramesAreByteExact) {
    TapOptions o;
    o.raw_frames = true;
    Rig rig(o);
    Frame req = read_req(0x40, 5);
    req.set_word(7, 0x0123456789abcdefull);  // bytes a typed record does not keep
    rig.vm_sends(req);
    const Frame rep = reply_with(req, 0x99);
    rig.client_sends(rep);
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), 1u);
    ASSERT_EQ(r.events[0].raw.size(), 64u);
    ASSERT_EQ(r.events[0].raw_reply.size(), 64u);
    EXPECT_EQ(std::memcmp(r.events[0].raw.data(), req.data(), 64), 0);
    EXPECT_EQ(std::memcmp(r.events[0].raw_reply.data(), rep.data(), 64), 0);
}

TEST(TraceTapTest, FullQueueWritesTheOldestAsNoReply) {
    TapOptions o;
    o.max_pending = 16;
    Rig rig(o);
    for (std::uint32_t i = 0; i < 40; ++i) rig.vm_sends(read_req(0x1000 + 4 * i, i));
    // The 16 still waiting are answered first; replies to the 24 written as NO_REPLY then come unmatched.
    for (std::uint32_t i = 24; i < 40; ++i) rig.client_sends(reply_with(read_req(0x1000 + 4 * i, i), i));
    for (std::uint32_t i = 0; i < 24; ++i) rig.client_sends(reply_with(read_req(0x1000 + 4 * i, i), i));
    ReadAll r = rig.finish();
    std::size_t complete = 0, no_reply = 0, reply_only = 0;
    for (auto& e : r.events) {
        complete += e.ev.status == Status::Complete;
        no_reply += e.ev.status == Status::NoReply;
        reply_only += e.ev.status == Status::ReplyOnly;
    }
    EXPECT_EQ(complete, 16u);
    EXPECT_EQ(no_reply, 24u);
    EXPECT_EQ(reply_only, 24u);
}

// The size budget: <= 24 bytes per MMIO transaction on average for a
// register-access workload without raw frames.
TEST(TraceTapTest, RegisterWorkloadCostsAtMost24BytesPerTransaction) {
    Rig rig;
    constexpr std::uint32_t kTx = 100'000;
    std::uint32_t lcg = 1;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint32_t i = 0; i < kTx; ++i) {
        const std::uint64_t addr = 0x10000000 + (i * 7 % 8) * 4;  // 8 registers
        lcg = lcg * 1664525u + 1013904223u;
        if (i % 2 == 0) {
            const Frame req = read_req(addr, i);
            rig.vm_sends(req);
            rig.client_sends(reply_with(req, lcg >> 16));  // 16-bit register values
        } else {
            rig.vm_sends(write_req(i % 4 == 1 ? Op::Write : Op::WriteAck, addr, i, i));
            if (i % 4 == 3) rig.client_sends(write_req(Op::WriteAck, addr, i, i));
        }
    }
    rig.tap->finish();
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ tap cost ] %.0f ns per transaction (frames built, tapped, encoded, written)\n", ns / kTx);
    const double per_tx = static_cast<double>(rig.writer.record_bytes()) / kTx;
    std::printf("[ bytes/tx ] %.2f bytes per MMIO transaction (%u transactions, %llu record bytes)\n", per_tx, kTx,
                static_cast<unsigned long long>(rig.writer.record_bytes()));
    EXPECT_LE(per_tx, 24.0);
    ReadAll r = rig.finish();
    ASSERT_EQ(r.events.size(), kTx);
    EXPECT_EQ(r.status, ReadStatus::End);
}

// A batch: received frames are timed when they came in, sent ones when they
// went out, so each reply keeps its latency (not zero, as one time for all
// would give), and frames keep their wire order.
TEST(TraceTapTest, BatchTimesReceivedFramesBeforeSentOnes) {
    std::string path = temp_path("tap-batch");
    TraceWriter writer;
    WriterOptions wo;
    wo.background_flush = false;
    ASSERT_EQ(writer.open(path, {}, wo), "");
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t t0 = writer.time_of(start);
    {
        TraceTap tap(writer);
        const Frame a = read_req(0x10000000, 1), b = read_req(0x10000004, 2);
        const TapFrame frames[] = {{Channel::Main, Direction::Received, a},
                                   {Channel::Main, Direction::Sent, reply_with(a, 5)},
                                   {Channel::Main, Direction::Received, b},
                                   {Channel::Main, Direction::Sent, Frame::irq_update(0, 1, 1)},
                                   {Channel::Main, Direction::Sent, reply_with(b, 6)}};
        tap.on_frames(TapBatch{frames, start + std::chrono::microseconds(1), start + std::chrono::microseconds(4)});
    }
    ASSERT_EQ(writer.close(), "");
    ReadAll r = read_file(path);
    ASSERT_EQ(r.events.size(), 3u);
    EXPECT_EQ(r.events[0].ev.kind, EventKind::Mmio);
    EXPECT_EQ(r.events[0].ev.time_ns, t0 + 1'000);
    EXPECT_EQ(r.events[0].ev.reply_after_ns, 3'000u);
    EXPECT_EQ(data_value({r.events[0].event().data.data(), 4}), 5u);
    EXPECT_EQ(r.events[1].ev.kind, EventKind::Mmio);
    EXPECT_EQ(r.events[1].ev.time_ns, t0 + 1'000);
    EXPECT_EQ(r.events[1].ev.reply_after_ns, 3'000u);
    EXPECT_EQ(r.events[2].ev.kind, EventKind::Irq);
    EXPECT_EQ(r.events[2].ev.time_ns, t0 + 4'000);
}

namespace {

// Records `frames` into a fresh trace, as one TapBatch or one on_frame() per
// frame, on a clock that stands still (so both give the same times).
ReadAll record_frames(std::span<const TapFrame> frames, bool as_batch, TapOptions o) {
    const std::string path = temp_path(as_batch ? "tap-as-batch" : "tap-one-by-one");
    TraceWriter writer;
    WriterOptions wo;
    wo.background_flush = false;
    wo.clock = [] { return std::uint64_t{5000}; };
    EXPECT_EQ(writer.open(path, {}, wo), "");
    {
        TraceTap tap(writer, o);
        if (as_batch) {
            const auto t = std::chrono::steady_clock::now();
            tap.on_frames(TapBatch{frames, t, t});
        } else {
            for (const TapFrame& f : frames) tap.on_frame(f.channel, f.direction, f.frame.bytes());
        }
    }
    EXPECT_EQ(writer.close(), "");
    return read_file(path);
}

}  // namespace

// A batch takes a shortcut for a request directly followed by its reply; its
// records must be exactly those of the same frames given one by one: pairs,
// posted writes, replies out of order or not matching, pair ops, error
// replies, DMA (with its MMIO cause), invalid frames, other channels, and
// either observer, with and without raw frames.
TEST(TraceTapTest, BatchRecordsWhatFramesOneByOneRecord) {
    const Frame r1 = read_req(0x1000, 1), r2 = read_req(0x1004, 2), r3 = read_req(0x1008, 3);
    const Frame w = write_req(Op::Write, 0x100c, 7, 4), wa = write_req(Op::WriteAck, 0x1010, 8, 5);
    const Frame pair = Frame::mmio_request(Op::ReadPair, 1, 0x2000, 8, 0, 6);
    const Frame dma = Frame::dma_request(Op::Read, 0, 0, 0x8000, 4, 0, 9);
    const Frame dma2 = Frame::dma_request(Op::Read, 0, 0, 0x8004, 4, 0, 10);
    // A frame with its size byte (w1[21:16]) set to 40 (> 32: invalid).
    const auto sized_40 = [](const Frame& f) {
        std::array<std::byte, kBlockSize> b;
        std::copy(f.bytes().begin(), f.bytes().end(), b.begin());
        b[10] = std::byte{40};
        return Frame::from_bytes(b.data());
    };
    const Frame bad_req = sized_40(r3);
    Frame pair_reply = pair;
    pair_reply.fill_payload(0x5a);
    for (const Observer observer : {Observer::Client, Observer::Vm}) {
        // From the VM / from the client, as this observer sees them.
        const Direction vm = observer == Observer::Client ? Direction::Received : Direction::Sent;
        const Direction dev = observer == Observer::Client ? Direction::Sent : Direction::Received;
        const Channel main = Channel::Main, dch = Channel::Dma;
        // The cases that leave nothing waiting come first (the shortcut needs that).
        const std::vector<TapFrame> frames = {
            {main, vm, r1},  {main, dev, reply_with(r1, 11)},        // a pair
            {main, vm, w},   {main, dev, Frame::irq_update(0, 2, 1)},  // posted write
            {main, vm, w},   {main, dev, reply_with(w, 0)},          // a posted write "answered"
            {main, vm, r2},  {main, dev, reply_with(r2, 22)},        // a pair after it,
            {dch, dev, dma2}, {dch, vm, reply_with(dma2, 5)},        // then DMA with no access in flight
            {main, vm, pair}, {main, dev, pair_reply},               // pair op
            {main, vm, wa},  {main, dev, reply_with(wa, 0, true)},   // error reply
            {main, vm, bad_req}, {main, dev, reply_with(bad_req, 1)},  // invalid request and its echo
            {main, vm, r1},  {main, vm, r1},                         // the same request twice
            {main, dev, reply_with(r1, 1)}, {main, dev, reply_with(r1, 2)},
            {main, vm, r2},  {main, vm, r3},                         // two waiting, answered out of order
            {main, dev, reply_with(r3, 13)}, {main, dev, reply_with(r2, 12, true)},
            {main, vm, r1},  {dch, dev, dma},                        // DMA during an access
            {dch, vm, reply_with(dma, 3)}, {main, dev, reply_with(r1, 4)},
            {main, vm, r2},  {dch, dev, reply_with(r2, 2)},          // reply on the other channel
            {main, vm, r1},  {main, dev, reply_with(r2, 1)},         // not its reply
            {main, vm, r3},  {main, dev, sized_40(reply_with(r3, 1))},  // invalid reply
            {main, vm, r3},  {main, dev, reply_with(r3, 33)},        // a pair behind waiting ones
        };
        for (const bool raw : {false, true}) {
            TapOptions o;
            o.observer = observer;
            o.raw_frames = raw;
            ReadAll batch = record_frames(frames, true, o);
            ReadAll single = record_frames(frames, false, o);
            ASSERT_EQ(batch.events.size(), single.events.size());
            ASSERT_GE(batch.events.size(), 20u);
            for (std::size_t i = 0; i < batch.events.size(); ++i) {
                const Difference d = compare_events(batch.events[i].event(), single.events[i].event(),
                                                    CompareOptions{.timing = true, .tags = true, .raw = true});
                EXPECT_EQ(d.field, "") << "observer " << observer_name(observer) << (raw ? " raw" : "") << ", record "
                                       << i << ": " << d.a << " vs " << d.b;
                EXPECT_EQ(batch.events[i].ev.cause, single.events[i].ev.cause) << i;
            }
        }
    }
}
