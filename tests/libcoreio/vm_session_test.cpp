// VmSession in-process: scripted client bytes in, frames out; no sockets, no clock.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "coreio/vm_session.hpp"

using coreio::Channel;
using coreio::Direction;
using coreio::Frame;
using coreio::Op;
using coreio::VmSession;
using coreio::VmSessionEvents;

namespace {

constexpr std::uint64_t kMem = 0x80000000;

/// 4 KiB of guest memory at kMem, IOMMU id 0 only (as the mock VM serves it).
struct Memory final : coreio::DmaMemory {
    std::array<std::uint8_t, 0x1000> bytes{};
    bool inside(const Frame& r) const {
        return r.mid() == 0 && r.sid() == 0 && r.address() >= kMem && r.address() - kMem + r.size() <= bytes.size();
    }
    bool dma_read(const Frame& r, std::span<std::byte> out) override {
        if (!inside(r)) return false;
        std::memcpy(out.data(), bytes.data() + (r.address() - kMem), out.size());
        return true;
    }
    bool dma_write(const Frame& r) override {
        if (!inside(r)) return false;
        for (unsigned i = 0; i < r.size(); ++i)
            if (r.byte_mask() >> i & 1) bytes[r.address() - kMem + i] = static_cast<std::uint8_t>(r.payload()[i]);
        return true;
    }
    bool write(std::uint64_t addr, std::span<const std::byte> in) {
        std::memcpy(bytes.data() + (addr - kMem), in.data(), in.size());
        return true;
    }
};

struct Recorder : VmSessionEvents {
    std::vector<unsigned> claims;
    std::vector<std::tuple<unsigned, unsigned, bool, bool>> irqs;
    std::vector<std::pair<std::uint64_t, Frame>> replies;
    std::vector<std::string> errors;
    std::vector<Frame> dmas;
    void on_claim(VmSession&, unsigned rid) override { claims.push_back(rid); }
    void on_irq(VmSession&, unsigned rid, unsigned line, bool level, bool rising) override {
        irqs.emplace_back(rid, line, level, rising);
    }
    void on_reply(VmSession&, std::uint64_t cookie, const Frame& f) override { replies.emplace_back(cookie, f); }
    void on_dma(VmSession&, const Frame& request, const Frame&) override { dmas.push_back(request); }
    void on_protocol_error(VmSession&, Channel, std::string_view what, const Frame&) override {
        errors.emplace_back(what);
    }
};

struct CountingTap : coreio::FrameTap {
    int received = 0, sent = 0;
    void on_frame(Channel, Direction d, std::span<const std::byte> frame) override {
        EXPECT_EQ(frame.size(), 64u);
        (d == Direction::Received ? received : sent)++;
    }
};

/// What a client sends back for a VM request: the frame, w0[15:8] cleared.
Frame answer(Frame f, bool error = false) {
    f.set_extra_blocks(0);
    f.set_error(error);
    return f;
}

class VmSessionTest : public ::testing::Test {
protected:
    void feed(Channel ch, const Frame& f) { ASSERT_TRUE(session.receive(ch, f.bytes())); }
    std::vector<Frame> drain(Channel ch) {
        std::vector<Frame> out;
        auto bytes = session.outbound(ch);
        EXPECT_EQ(bytes.size() % 64, 0u);
        for (std::size_t i = 0; i + 64 <= bytes.size(); i += 64) out.push_back(Frame::from_bytes(bytes.data() + i));
        session.consume(ch, bytes.size());
        return out;
    }
    bool logged(const std::string& s) const {
        for (const auto& l : logs)
            if (l.find(s) != std::string::npos) return true;
        return false;
    }
    coreio::VmSessionOptions options() {
        coreio::VmSessionOptions o;
        o.log = [this](std::string_view l) { logs.emplace_back(l); };
        o.tap = &tap;
        o.id = 3;
        return o;
    }

    Memory memory;
    Recorder events;
    std::vector<std::string> logs;
    CountingTap tap;
    VmSession session{memory, events, options()};
};

TEST_F(VmSessionTest, ClaimsIrqLevelsAndEdgeCounts) {
    feed(Channel::Main, Frame::claim(0));
    feed(Channel::Main, Frame::claim(5));
    EXPECT_EQ(events.claims, (std::vector<unsigned>{0, 5}));
    EXPECT_EQ(session.claimed_mask(), 0x21);
    feed(Channel::Main, Frame::irq_update(5, 7, 1));
    EXPECT_TRUE(session.irq_level(5, 7));
    feed(Channel::Main, Frame::irq_update(5, 7, 1));  // still high: no new edge
    feed(Channel::Main, Frame::irq_update(5, 7, 0));
    EXPECT_FALSE(session.irq_level(5, 7));
    feed(Channel::Main, Frame::irq_update(5, 7, 1));
    feed(Channel::Main, Frame::irq_update(5, 0, 1));
    EXPECT_EQ(session.irq_lines(5), 0x81);
    EXPECT_EQ(session.irq_edges(5, 7), 2u);
    EXPECT_EQ(session.irq_edges(5, 0), 1u);
    EXPECT_EQ(session.irq_edges(4, 7), 0u);
    EXPECT_EQ(session.irq_edges(9, 0), 0u);  // out of range: 0, no crash
    ASSERT_EQ(events.irqs.size(), 5u);
    EXPECT_EQ(events.irqs[0], std::make_tuple(5u, 7u, true, true));
    EXPECT_EQ(events.irqs[1], std::make_tuple(5u, 7u, true, false));
    EXPECT_EQ(events.irqs[2], std::make_tuple(5u, 7u, false, false));
    EXPECT_TRUE(drain(Channel::Main).empty());  // claims and IRQs are not answered
    EXPECT_EQ(session.counters().frames_in, 7u);
    EXPECT_EQ(tap.received, 7);
}

TEST_F(VmSessionTest, RepliesAreMatchedByTagW1AndW2) {
    const Frame rd = Frame::mmio_request(Op::Read, 0, 0xfef00000, 4, 0, 0x1234);
    const Frame wa = Frame::mmio_request(Op::WriteAck, 0, 0xfef00008, 4, 0, 0x1235);
    Frame ping = Frame::ping(false);
    ping.set_tag(0x99);
    session.request(rd, 10);
    session.request(wa, 11);
    session.request(ping, 12);
    const Frame posted = Frame::mmio_request(Op::Write, 0, 0xfef00000, 4, 0, 0x80000001);
    session.request(posted, 13);  // posted: nothing waits for it
    session.request(Frame::reset(), 14);
    EXPECT_EQ(session.pending_count(), 3u);
    EXPECT_EQ(drain(Channel::Main).size(), 5u);
    EXPECT_EQ(tap.sent, 5);

    Frame rd_reply = answer(rd);
    std::memcpy(rd_reply.payload(), "\x01\x02\x03\x04", 4);
    feed(Channel::Main, answer(ping));  // out of order: matched by key, not by position
    feed(Channel::Main, rd_reply);
    feed(Channel::Main, answer(posted));  // an unclaimed range echoes posted writes: quiet
    EXPECT_TRUE(session.pending(11));
    EXPECT_FALSE(session.pending(10));
    feed(Channel::Main, answer(wa, true));
    ASSERT_EQ(events.replies.size(), 3u);
    EXPECT_EQ(events.replies[0].first, 12u);
    EXPECT_EQ(events.replies[1].first, 10u);
    EXPECT_EQ(events.replies[1].second, rd_reply);
    EXPECT_EQ(events.replies[2].first, 11u);
    EXPECT_TRUE(events.replies[2].second.error());
    EXPECT_EQ(session.pending_count(), 0u);
    EXPECT_EQ(session.counters().echoed_posted, 1u);
    EXPECT_EQ(session.counters().protocol_errors, 0u);
}

TEST_F(VmSessionTest, UnknownDuplicateAndCancelledRepliesAreProtocolErrors) {
    const Frame rd = Frame::mmio_request(Op::Read, 1, 0x1000, 8, 0, 7);
    session.request(rd, 1);
    Frame wrong_addr = answer(rd);
    wrong_addr.set_address(0x1008);
    feed(Channel::Main, wrong_addr);
    Frame wrong_tag = answer(rd);
    wrong_tag.set_tag(8);
    feed(Channel::Main, wrong_tag);
    Frame wrong_size = answer(rd);
    wrong_size.set_size(4);
    feed(Channel::Main, wrong_size);
    EXPECT_TRUE(events.replies.empty());
    EXPECT_TRUE(session.pending(1));
    feed(Channel::Main, answer(rd));
    feed(Channel::Main, answer(rd));  // the same reply again answers nothing
    ASSERT_EQ(events.replies.size(), 1u);

    session.request(rd, 2);
    EXPECT_TRUE(session.cancel(2));
    EXPECT_FALSE(session.cancel(2));
    feed(Channel::Main, answer(rd));  // late, after its caller gave up
    EXPECT_EQ(events.replies.size(), 1u);
    EXPECT_EQ(session.counters().protocol_errors, 5u);
    EXPECT_EQ(events.errors.size(), 5u);
    EXPECT_TRUE(logged("client 3 main: reply matches no outstanding request"));

    // Identical requests in flight are answered oldest first.
    session.request(rd, 3);
    session.request(rd, 4);
    feed(Channel::Main, answer(rd));
    ASSERT_EQ(events.replies.size(), 2u);
    EXPECT_EQ(events.replies[1].first, 3u);
    session.cancel_all();
    EXPECT_EQ(session.pending_count(), 0u);
}

TEST_F(VmSessionTest, ManyRequestsInFlightKeepTheTableBounded) {
    for (std::uint32_t round = 0; round < 50; ++round) {
        std::vector<Frame> sent;
        for (std::uint32_t i = 0; i < 100; ++i) {
            sent.push_back(Frame::mmio_request(Op::Read, 0, 0x1000 + 8 * i, 8, 0, round * 100 + i));
            session.request(sent.back(), round * 100 + i);
        }
        drain(Channel::Main);
        for (std::size_t i = sent.size(); i-- > 0;) feed(Channel::Main, answer(sent[i]));  // newest first
        ASSERT_EQ(session.pending_count(), 0u);
    }
    EXPECT_EQ(events.replies.size(), 5000u);
    EXPECT_EQ(session.counters().protocol_errors, 0u);
}

TEST_F(VmSessionTest, ServesDmaReadsWritesAndFaults) {
    std::array<std::uint8_t, 32> pattern;
    for (unsigned i = 0; i < 32; ++i) pattern[i] = static_cast<std::uint8_t>(0xc0 + i);
    memory.write(kMem + 0x20, std::as_bytes(std::span(pattern)));

    feed(Channel::Dma, Frame::dma_request(Op::Read, 0, 0, kMem + 0x20, 32, coreio::kFlagSecure, 1));
    Frame w = Frame::dma_request(Op::WriteAck, 0, 0, kMem + 0x100, 4, 0, 2);
    std::memcpy(w.payload(), "\x01\x02\x03\x04", 4);
    w.set_byte_mask(0b1001);
    feed(Channel::Dma, w);
    feed(Channel::Dma, Frame::dma_request(Op::Read, 0, 0, kMem + 0xff8, 16, 0, 3));  // crosses the end
    feed(Channel::Dma, Frame::dma_request(Op::WriteAck, 2, 0, kMem, 4, 0, 4));     // IOMMU 2: none here

    const auto out = drain(Channel::Dma);
    ASSERT_EQ(out.size(), 4u);
    EXPECT_FALSE(out[0].error());
    EXPECT_EQ(out[0].tag(), 1u);
    EXPECT_EQ(out[0].flags(), unsigned{coreio::kFlagSecure});
    EXPECT_EQ(std::memcmp(out[0].payload(), pattern.data(), 32), 0);
    EXPECT_EQ(static_cast<std::uint8_t>(out[0].payload()[32]), 0xaa);  // beyond size: untouched
    EXPECT_FALSE(out[1].error());
    EXPECT_TRUE(out[2].error());
    EXPECT_EQ(static_cast<std::uint8_t>(out[2].payload()[0]), 0xaa);  // fault: data left as sent
    EXPECT_TRUE(out[3].error());
    EXPECT_EQ(memory.bytes[0x100], 1);
    EXPECT_EQ(memory.bytes[0x101], 0);
    EXPECT_EQ(memory.bytes[0x102], 0);
    EXPECT_EQ(memory.bytes[0x103], 4);
    ASSERT_EQ(events.dmas.size(), 4u);
    EXPECT_EQ(events.dmas[3].mid(), 2u);
    EXPECT_EQ(session.counters().dma_chunks, 4u);
    EXPECT_EQ(session.counters().dma_faults, 2u);
    EXPECT_TRUE(drain(Channel::Main).empty());
}

TEST_F(VmSessionTest, ByteAtATimeGivesTheSameResult) {
    const Frame rp = Frame::mmio_request(Op::ReadPair, 1, 0x1000, 8, 0, 9);
    session.request(rp, 42);
    std::vector<Frame> in = {Frame::claim(1), Frame::irq_update(1, 2, 1), answer(rp)};
    std::vector<std::byte> stream;
    for (const auto& f : in) stream.insert(stream.end(), f.data(), f.data() + 64);
    for (std::byte b : stream) ASSERT_TRUE(session.receive(Channel::Main, std::span(&b, 1)));
    EXPECT_EQ(events.claims, std::vector<unsigned>{1});
    EXPECT_EQ(events.irqs.size(), 1u);
    ASSERT_EQ(events.replies.size(), 1u);
    EXPECT_EQ(events.replies[0].first, 42u);
    EXPECT_EQ(events.replies[0].second, in[2]);

    Frame d = Frame::dma_request(Op::Read, 0, 0, kMem, 8, 0, 77);
    for (unsigned i = 0; i < 64; ++i) ASSERT_TRUE(session.receive(Channel::Dma, std::span(d.data() + i, 1)));
    const auto out = drain(Channel::Dma);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].tag(), 77u);
}

TEST_F(VmSessionTest, ExtraBlocksAreConsumedAndRepliesAreSingleBlock) {
    Frame d = Frame::dma_request(Op::Read, 0, 0, kMem, 4, 0, 5);
    d.set_extra_blocks(2);
    std::vector<std::byte> stream(d.data(), d.data() + 64);
    stream.resize(3 * 64, std::byte{0xee});  // the two extra blocks
    Frame next = Frame::dma_request(Op::Read, 0, 0, kMem, 4, 0, 6);
    stream.insert(stream.end(), next.data(), next.data() + 64);
    ASSERT_TRUE(session.receive(Channel::Dma, stream));
    const auto out = drain(Channel::Dma);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].extra_blocks(), 0u);
    EXPECT_EQ(out[1].tag(), 6u);
}

TEST_F(VmSessionTest, MalformedFramesAreLoggedAndDropped) {
    Frame unknown = Frame::claim(0);
    unknown.set_op(static_cast<Op>(0x42));
    feed(Channel::Main, unknown);
    feed(Channel::Main, Frame::claim(9));              // rid out of range
    feed(Channel::Main, Frame::irq_update(0, 1, 2));   // level not 0/1
    Frame bad_read = Frame::mmio_request(Op::Read, 0, 0x1000, 4, 0, 1);
    bad_read.set_size(0);
    feed(Channel::Main, bad_read);
    Frame bad_pair = Frame::mmio_request(Op::ReadPair, 0, 0x1000, 4, 0, 1);
    bad_pair.set_size(17);
    feed(Channel::Main, bad_pair);
    feed(Channel::Main, Frame::dma_request(Op::Read, 0, 0, kMem, 4, 0, 1));  // DMA on main
    feed(Channel::Main, Frame::reset());                                      // VM op from the client
    feed(Channel::Dma, Frame::claim(0));                                      // claim on DMA
    feed(Channel::Dma, Frame::mmio_request(Op::Read, 0, kMem, 4, 0, 1));      // bit 31 clear on DMA
    feed(Channel::Dma, Frame::dma_request(Op::Write, 0, 0, kMem, 4, 0, 1));   // posted write is no DMA op

    EXPECT_TRUE(events.claims.empty());
    EXPECT_TRUE(events.irqs.empty());
    EXPECT_TRUE(events.replies.empty());
    EXPECT_TRUE(drain(Channel::Dma).empty());
    EXPECT_EQ(session.counters().protocol_errors, 10u);
    EXPECT_EQ(events.errors.size(), 10u);
    EXPECT_TRUE(logged("client 3 main: unknown opcode 0x42"));
    EXPECT_TRUE(logged("rid 9 out of range"));
    EXPECT_TRUE(logged("IRQ level 2 is not 0 or 1"));
    EXPECT_TRUE(logged("size 0 out of range"));
    EXPECT_TRUE(logged("pair element size 17"));
    EXPECT_TRUE(logged("belong on the DMA connection"));
    EXPECT_TRUE(logged("client 3 dma: unexpected RGN_CLAIM"));
    // The session still works.
    feed(Channel::Main, Frame::claim(0));
    EXPECT_EQ(events.claims, std::vector<unsigned>{0});
}

TEST_F(VmSessionTest, BadSizeDmaRequestGetsAFaultReply) {
    Frame d = Frame::dma_request(Op::Read, 0, 0, kMem, 4, 0, 8);
    d.set_size(33);
    feed(Channel::Dma, d);
    const auto out = drain(Channel::Dma);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].error());
    EXPECT_EQ(out[0].tag(), 8u);
    EXPECT_TRUE(logged("size 33 out of range"));
}

TEST_F(VmSessionTest, OverlongFrameEndsTheStream) {
    coreio::VmSessionOptions o = options();
    o.max_stream_blocks = 4;
    VmSession s4{memory, events, std::move(o)};
    Frame f = Frame::claim(0);
    f.set_extra_blocks(4);
    EXPECT_FALSE(s4.receive(Channel::Main, f.bytes()));
    EXPECT_TRUE(logged("over the limit"));
}

TEST_F(VmSessionTest, StrictFrameLimitDropsLongFramesButKeepsTheStream) {
    coreio::VmSessionOptions o = options();
    o.max_frame_blocks = 1;
    VmSession strict{memory, events, std::move(o)};
    Frame f = Frame::claim(2);
    f.set_extra_blocks(1);
    std::vector<std::byte> stream(f.data(), f.data() + 64);
    stream.resize(128, std::byte{0});
    const Frame ok = Frame::claim(3);
    stream.insert(stream.end(), ok.data(), ok.data() + 64);
    EXPECT_TRUE(strict.receive(Channel::Main, stream));
    EXPECT_EQ(events.claims, std::vector<unsigned>{3});
    EXPECT_EQ(strict.counters().protocol_errors, 1u);
    EXPECT_TRUE(logged("over the limit"));
}

TEST_F(VmSessionTest, ClientPingIsAnswered) {
    Frame p = Frame::ping(true);
    p.set_tag(99);
    feed(Channel::Main, p);
    const auto out = drain(Channel::Main);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], p);
    EXPECT_EQ(tap.sent, 1);
}

TEST_F(VmSessionTest, OutboundCanBeTakenOrConsumedInParts) {
    const Frame a = Frame::reset();
    const Frame b = Frame::ping(false);
    session.send(Channel::Main, a);
    session.request(b, 5);
    EXPECT_EQ(session.outbound(Channel::Main).size(), 128u);
    session.consume(Channel::Main, 10);
    EXPECT_EQ(session.outbound(Channel::Main).size(), 118u);
    std::vector<std::byte> taken;
    session.take_outbound(Channel::Main, taken);
    ASSERT_EQ(taken.size(), 118u);
    EXPECT_EQ(std::memcmp(taken.data(), a.data() + 10, 54), 0);
    EXPECT_TRUE(session.outbound(Channel::Main).empty());
    EXPECT_EQ(session.counters().frames_out, 2u);
}

// A transport that sends part of what is queued while more frames come in
// (a full socket): the bytes still go out in order, none lost or doubled,
// across the buffer's growth and its moving of unsent bytes to the front.
TEST_F(VmSessionTest, OutboundKeepsOrderAcrossPartialSendsAndGrowth) {
    std::vector<std::byte> wire;
    std::uint32_t queued = 0;
    for (int round = 0; round < 200; ++round) {
        const int burst = 1 + round % 37;  // 1..37 frames, past any initial capacity
        for (int i = 0; i < burst; ++i) {
            Frame f = Frame::ping(false);
            f.set_tag(queued++);
            session.send(Channel::Main, f);
        }
        const auto bytes = session.outbound(Channel::Main);
        const std::size_t n = round % 3 == 0 ? bytes.size() : bytes.size() / 3 + 5;  // often mid-frame
        wire.insert(wire.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
        session.consume(Channel::Main, n);
    }
    std::vector<std::byte> rest;
    session.take_outbound(Channel::Main, rest);
    wire.insert(wire.end(), rest.begin(), rest.end());
    ASSERT_EQ(wire.size(), queued * 64u);
    for (std::uint32_t i = 0; i < queued; ++i) ASSERT_EQ(Frame::from_bytes(wire.data() + 64 * i).tag(), i);
    Frame after = Frame::reset();  // the storage handed back by take_outbound is used again
    session.send(Channel::Main, after);
    ASSERT_EQ(session.outbound(Channel::Main).size(), 64u);
    EXPECT_EQ(Frame::from_bytes(session.outbound(Channel::Main).data()), after);
}

// request_delivered(): for a transport that hands the request to the client
// itself. The request is tracked, tapped and counted like request(), but no
// bytes are queued.
TEST_F(VmSessionTest, DeliveredRequestsWaitForRepliesWithoutQueuingBytes) {
    const Frame rd = Frame::mmio_request(Op::Read, 0, 0xfef00000, 4, 0, 7);
    const Frame posted = Frame::mmio_request(Op::Write, 0, 0xfef00004, 4, 0, 8);
    session.request_delivered(rd, 41);
    session.request_delivered(posted, 42);
    EXPECT_TRUE(session.outbound(Channel::Main).empty());
    EXPECT_TRUE(session.pending(41));
    EXPECT_FALSE(session.pending(42));  // posted: nothing to wait for
    EXPECT_EQ(session.counters().frames_out, 2u);
    EXPECT_EQ(tap.sent, 2);
    feed(Channel::Main, answer(rd));
    ASSERT_EQ(events.replies.size(), 1u);
    EXPECT_EQ(events.replies[0].first, 41u);
    EXPECT_EQ(session.pending_count(), 0u);
    feed(Channel::Main, answer(rd));  // a second answer matches nothing
    EXPECT_EQ(session.counters().protocol_errors, 1u);
}

TEST_F(VmSessionTest, RandomBytesNeverCrash) {
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    std::vector<std::byte> junk(64 * 200);
    for (auto& b : junk) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b = static_cast<std::byte>(x);
    }
    // Keep declared lengths small so the stream stays splittable.
    for (std::size_t i = 0; i < junk.size(); i += 64) junk[i + 1] = std::byte{0};
    for (std::uint64_t i = 0; i < 64; ++i) session.request(Frame::mmio_request(Op::Read, 0, 8 * i, 8, 0, 0), i);
    EXPECT_TRUE(session.receive(Channel::Main, junk));
    EXPECT_TRUE(session.receive(Channel::Dma, junk));
    EXPECT_EQ(session.counters().frames_in, 400u);
}

}  // namespace
