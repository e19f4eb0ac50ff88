// VmSession in-process: scripted client bytes in, frames out; no sockets, no clock.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coreio/mockvm/vm_session.hpp"

using coreio::Channel;
using coreio::Direction;
using coreio::Frame;
using coreio::Op;
using coreio::mockvm::GuestMemory;
using coreio::mockvm::VmSession;
using coreio::mockvm::VmSessionEvents;

namespace {

constexpr std::uint64_t kMem = 0x80000000;

struct Recorder : VmSessionEvents {
    std::vector<unsigned> claims;
    std::vector<std::tuple<unsigned, unsigned, bool>> irqs;
    std::vector<Frame> replies;
    void on_claim(VmSession&, unsigned rid) override { claims.push_back(rid); }
    void on_irq(VmSession&, unsigned rid, unsigned line, bool level) override { irqs.emplace_back(rid, line, level); }
    void on_reply(VmSession&, const Frame& f) override { replies.push_back(f); }
};

struct CountingTap : coreio::FrameTap {
    int received = 0, sent = 0;
    void on_frame(Channel, Direction d, std::span<const std::byte> frame) override {
        EXPECT_EQ(frame.size(), 64u);
        (d == Direction::Received ? received : sent)++;
    }
};

class SessionTest : public ::testing::Test {
protected:
    SessionTest() { memory.add_region(kMem, 0x1000); }

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

    GuestMemory memory;
    Recorder events;
    std::vector<std::string> logs;
    CountingTap tap;
    VmSession session{memory, events, [this](std::string_view l) { logs.emplace_back(l); }, &tap, 3};
};

TEST_F(SessionTest, ClaimsAndIrqUpdates) {
    feed(Channel::Main, Frame::claim(0));
    feed(Channel::Main, Frame::claim(5));
    EXPECT_EQ(events.claims, (std::vector<unsigned>{0, 5}));
    EXPECT_EQ(session.claimed_mask(), 0x21);
    feed(Channel::Main, Frame::irq_update(5, 7, 1));
    EXPECT_TRUE(session.irq_level(5, 7));
    feed(Channel::Main, Frame::irq_update(5, 7, 0));
    EXPECT_FALSE(session.irq_level(5, 7));
    ASSERT_EQ(events.irqs.size(), 2u);
    EXPECT_EQ(events.irqs[0], std::make_tuple(5u, 7u, true));
    EXPECT_TRUE(drain(Channel::Main).empty());  // claims and IRQs are not answered
    EXPECT_EQ(session.counters().frames_in, 4u);
    EXPECT_EQ(tap.received, 4);
}

TEST_F(SessionTest, RepliesGoToTheOwnerAndPostedEchoesAreQuiet) {
    Frame rd = Frame::mmio_request(Op::Read, 0, 0xfef00000, 4, 0, 0x1234);
    feed(Channel::Main, rd);
    Frame ping = Frame::ping(false);
    feed(Channel::Main, ping);
    Frame wr = Frame::mmio_request(Op::Write, 0, 0xfef00000, 4, 0, 0x80000001);
    feed(Channel::Main, wr);  // echoed posted write: nobody waits for it
    ASSERT_EQ(events.replies.size(), 2u);
    EXPECT_EQ(events.replies[0], rd);
    EXPECT_EQ(events.replies[1].op(), Op::Ping);
    EXPECT_EQ(session.counters().echoed_posted, 1u);
    EXPECT_EQ(session.counters().protocol_errors, 0u);
}

TEST_F(SessionTest, ServesDmaReadsWritesAndFaults) {
    std::array<std::uint8_t, 32> pattern;
    for (unsigned i = 0; i < 32; ++i) pattern[i] = static_cast<std::uint8_t>(0xc0 + i);
    ASSERT_TRUE(memory.write(kMem + 0x20, std::as_bytes(std::span(pattern))));

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
    std::array<std::uint8_t, 4> got{};
    ASSERT_TRUE(memory.read(kMem + 0x100, std::as_writable_bytes(std::span(got))));
    EXPECT_EQ(got, (std::array<std::uint8_t, 4>{1, 0, 0, 4}));
    EXPECT_EQ(session.counters().dma_chunks, 4u);
    EXPECT_EQ(session.counters().dma_faults, 2u);
    EXPECT_TRUE(drain(Channel::Main).empty());
}

TEST_F(SessionTest, ByteAtATimeGivesTheSameResult) {
    std::vector<Frame> in = {Frame::claim(1), Frame::irq_update(1, 2, 1),
                             Frame::mmio_request(Op::ReadPair, 1, 0x1000, 8, 0, 9)};
    std::vector<std::byte> stream;
    for (const auto& f : in) stream.insert(stream.end(), f.data(), f.data() + 64);
    for (std::byte b : stream) ASSERT_TRUE(session.receive(Channel::Main, std::span(&b, 1)));
    EXPECT_EQ(events.claims, std::vector<unsigned>{1});
    EXPECT_EQ(events.irqs.size(), 1u);
    ASSERT_EQ(events.replies.size(), 1u);
    EXPECT_EQ(events.replies[0], in[2]);

    Frame d = Frame::dma_request(Op::Read, 0, 0, kMem, 8, 0, 77);
    for (unsigned i = 0; i < 64; ++i) ASSERT_TRUE(session.receive(Channel::Dma, std::span(d.data() + i, 1)));
    const auto out = drain(Channel::Dma);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].tag(), 77u);
}

TEST_F(SessionTest, ExtraBlocksAreConsumedAndRepliesAreSingleBlock) {
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

TEST_F(SessionTest, MalformedFramesAreLoggedAndDropped) {
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

TEST_F(SessionTest, BadSizeDmaRequestGetsAFaultReply) {
    Frame d = Frame::dma_request(Op::Read, 0, 0, kMem, 4, 0, 8);
    d.set_size(33);
    feed(Channel::Dma, d);
    const auto out = drain(Channel::Dma);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].error());
    EXPECT_EQ(out[0].tag(), 8u);
    EXPECT_TRUE(logged("size 33 out of range"));
}

TEST_F(SessionTest, OverlongFrameEndsTheStream) {
    session.set_max_frame_blocks(4);
    Frame f = Frame::claim(0);
    f.set_extra_blocks(4);
    EXPECT_FALSE(session.receive(Channel::Main, f.bytes()));
    EXPECT_TRUE(logged("over the limit"));
}

TEST_F(SessionTest, ClientPingIsAnswered) {
    Frame p = Frame::ping(true);
    p.set_tag(99);
    feed(Channel::Main, p);
    const auto out = drain(Channel::Main);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], p);
    EXPECT_EQ(tap.sent, 1);
}

TEST_F(SessionTest, OutboundCanBeTakenOrConsumedInParts) {
    const Frame a = Frame::reset();
    const Frame b = Frame::ping(false);
    session.send(Channel::Main, a);
    session.send(Channel::Main, b);
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

TEST_F(SessionTest, RandomBytesNeverCrash) {
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
    EXPECT_TRUE(session.receive(Channel::Main, junk));
    EXPECT_TRUE(session.receive(Channel::Dma, junk));
    EXPECT_EQ(session.counters().frames_in, 400u);
}

}  // namespace
