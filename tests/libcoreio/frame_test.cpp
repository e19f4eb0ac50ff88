// The wire codec: every field accessor and builder, validate(), error texts,
// and FrameReader over any chunking of a stream.
#include <gtest/gtest.h>

#include <vector>

#include "coreio/frame.hpp"

using namespace coreio;

namespace {

std::vector<std::byte> bytes_of(const Frame& f, unsigned extra_fill = 0) {
    std::vector<std::byte> v(f.data(), f.data() + kBlockSize);
    v.resize(f.length(), std::byte{static_cast<unsigned char>(extra_fill)});
    return v;
}

}  // namespace

TEST(Frame, FieldAccessorsRoundTrip) {
    Frame f;
    f.set_rid(0x5a);
    f.set_extra_blocks(3);
    f.set_error(true);
    f.set_from_client(true);
    f.set_tag(0xdeadbeef);
    f.set_op(Op::WriteAckPair);
    f.set_size(16);
    f.set_sid(0xc);
    f.set_flags(0xa);
    f.set_byte_mask(0x12345678);
    f.set_address(0x1122334455667788ull);
    EXPECT_EQ(f.rid(), 0x5au);
    EXPECT_EQ(f.mid(), 0x5au);
    EXPECT_EQ(f.extra_blocks(), 3u);
    EXPECT_EQ(f.length(), 4 * kBlockSize);
    EXPECT_TRUE(f.error());
    EXPECT_TRUE(f.from_client());
    EXPECT_EQ(f.tag(), 0xdeadbeefu);
    EXPECT_EQ(f.opcode(), 0x06);
    EXPECT_EQ(f.op(), Op::WriteAckPair);
    EXPECT_EQ(f.size(), 16u);
    EXPECT_EQ(f.sid(), 0xcu);
    EXPECT_EQ(f.flags(), 0xau);
    EXPECT_EQ(f.byte_mask(), 0x12345678u);
    EXPECT_EQ(f.address(), 0x1122334455667788ull);
    EXPECT_EQ(f.reserved(), 0u);
    // Exact wire layout of w0 and w1.
    EXPECT_EQ(f.word(0), 0xdeadbeef00000000ull | (1ull << 31) | (1ull << 30) | (3ull << 8) | 0x5a);
    EXPECT_EQ(f.word(1), (0x12345678ull << 32) | (0xaull << 28) | (0xcull << 24) | (16ull << 16) | 0x06);
    // Little-endian on the wire.
    EXPECT_EQ(f.data()[0], std::byte{0x5a});
    EXPECT_EQ(f.data()[1], std::byte{3});
    EXPECT_EQ(f.data()[16], std::byte{0x88});
    f.set_error(false);
    f.set_from_client(false);
    EXPECT_FALSE(f.error());
    EXPECT_FALSE(f.from_client());
    EXPECT_EQ(f.tag(), 0xdeadbeefu);  // neighbours untouched
}

TEST(Frame, SettersMaskToFieldWidth) {
    Frame f;
    f.set_size(0x7f);  // 6 bits
    EXPECT_EQ(f.size(), 0x3fu);
    EXPECT_EQ(f.sid(), 0u);
    f.set_sid(0x1f);
    EXPECT_EQ(f.sid(), 0xfu);
    EXPECT_EQ(f.flags(), 0u);
}

TEST(Frame, PayloadAndPairOffsets) {
    Frame f;
    EXPECT_EQ(f.payload() - f.data(), 24);
    f.fill_payload(0xAA);
    for (std::size_t i = 0; i < kDataBytes; ++i) EXPECT_EQ(f.payload()[i], std::byte{0xAA});
    for (unsigned s = 1; s <= 7; ++s) EXPECT_EQ(Frame::pair_second_offset(s), 8u);   // w4
    for (unsigned s = 8; s <= 15; ++s) EXPECT_EQ(Frame::pair_second_offset(s), 16u); // w5
    EXPECT_EQ(Frame::pair_second_offset(16), 24u);                                    // w6
    f.set_size(8);
    EXPECT_EQ(f.pair_second() - f.data(), 24 + 16);
}

TEST(Frame, OpNamesAndPredicates) {
    EXPECT_STREQ(op_name(0x00), "PING");
    EXPECT_STREQ(op_name(0x01), "READ");
    EXPECT_STREQ(op_name(0x02), "WRITE");
    EXPECT_STREQ(op_name(0x03), "READP");
    EXPECT_STREQ(op_name(0x04), "WRITEP");
    EXPECT_STREQ(op_name(0x05), "WRITEA");
    EXPECT_STREQ(op_name(0x06), "WRITEAP");
    EXPECT_STREQ(op_name(0x41), "IRQ_UPDATE");
    EXPECT_STREQ(op_name(0xF0), "RGN_CLAIM");
    EXPECT_STREQ(op_name(0xFF), "RESET");
    EXPECT_STREQ(op_name(0x13), "?");
    int known = 0;
    for (int op = 0; op < 256; ++op) known += is_known_op(static_cast<std::uint8_t>(op));
    EXPECT_EQ(known, 10);
    EXPECT_TRUE(is_pair_op(Op::ReadPair) && is_pair_op(Op::WritePair) && is_pair_op(Op::WriteAckPair));
    EXPECT_FALSE(is_pair_op(Op::Read));
    EXPECT_TRUE(access_wants_reply(Op::Read) && access_wants_reply(Op::WriteAck) &&
                access_wants_reply(Op::ReadPair) && access_wants_reply(Op::WriteAckPair));
    EXPECT_FALSE(access_wants_reply(Op::Write) || access_wants_reply(Op::WritePair));
    EXPECT_FALSE(is_access_op(Op::Ping) || is_access_op(Op::Reset) || is_access_op(Op::IrqUpdate));
}

TEST(Frame, Builders) {
    const Frame c = Frame::claim(5);
    EXPECT_EQ(c.word(0), (1ull << 31) | 5);
    EXPECT_EQ(c.word(1), 0xF0u);
    EXPECT_EQ(c.validate(), FrameError::Ok);

    const Frame irq = Frame::irq_update(3, 7, 1);
    EXPECT_EQ(irq.word(0), (1ull << 31) | 3);
    EXPECT_EQ(irq.word(1), 0x41u);
    EXPECT_EQ(irq.word(2), 7u);
    EXPECT_EQ(irq.word(3), 1u);
    EXPECT_EQ(irq.validate(), FrameError::Ok);

    EXPECT_EQ(Frame::ping(false).word(0), 0u);
    EXPECT_EQ(Frame::ping(true).word(0), 1ull << 31);
    EXPECT_EQ(Frame::reset().opcode(), 0xFF);

    const Frame r = Frame::mmio_request(Op::Read, 2, 0x1000, 4, kFlagPriv, 77);
    EXPECT_EQ(r.rid(), 2u);
    EXPECT_EQ(r.tag(), 77u);
    EXPECT_FALSE(r.from_client());
    EXPECT_EQ(r.byte_mask(), 0u);
    EXPECT_EQ(r.payload()[0], std::byte{0xAA});
    const Frame w = Frame::mmio_request(Op::WritePair, 2, 0x1000, 4, 0, 77);
    EXPECT_EQ(w.byte_mask(), 0xfu | (0xfu << 8));

    const Frame d = Frame::dma_request(Op::WriteAck, 9, 3, 0x2004, 28, kFlagSecure, 0x1234);
    EXPECT_EQ(d.word(0), (0x1234ull << 32) | (1ull << 31) | 9);
    EXPECT_EQ(d.word(1), (0x0fffffffull << 32) | (8ull << 28) | (3ull << 24) | (28ull << 16) | 0x05);
    EXPECT_EQ(d.address(), 0x2004u);
    const Frame dr = Frame::dma_request(Op::Read, 0, 0, 0x40, 32, 0, 1);
    EXPECT_EQ(dr.byte_mask(), 0u);
    EXPECT_EQ(dr.payload()[31], std::byte{0xAA});
}

TEST(Frame, WriteMask) {
    EXPECT_EQ(write_mask(Op::Write, 1), 0x1u);
    EXPECT_EQ(write_mask(Op::Write, 32), 0xffffffffu);
    EXPECT_EQ(write_mask(Op::WriteAck, 0), 0u);
    EXPECT_EQ(write_mask(Op::WritePair, 8), 0xffu | (0xffu << 16));
    EXPECT_EQ(write_mask(Op::WritePair, 16), 0xffffu | (0xffffu << 24));
    // Sizes of unvalidated frames never shift past the mask (found by fuzzing).
    EXPECT_EQ(write_mask(Op::WritePair, 63), 0xffffffffu);
    EXPECT_EQ(write_mask(Op::Write, 63), 0xffffffffu);
}

TEST(Frame, ValidateEveryCase) {
    for (unsigned s = 1; s <= 32; ++s)
        for (Op op : {Op::Read, Op::Write, Op::WriteAck}) EXPECT_EQ(Frame::mmio_request(op, 0, 0, s, 0, 0).validate(), FrameError::Ok);
    for (Op op : {Op::Read, Op::Write, Op::WriteAck}) {
        EXPECT_EQ(Frame::mmio_request(op, 0, 0, 0, 0, 0).validate(), FrameError::BadSize);
        EXPECT_EQ(Frame::mmio_request(op, 0, 0, 33, 0, 0).validate(), FrameError::BadSize);
    }
    for (Op op : {Op::ReadPair, Op::WritePair, Op::WriteAckPair}) {
        EXPECT_EQ(Frame::mmio_request(op, 0, 0, 16, 0, 0).validate(), FrameError::Ok);
        EXPECT_EQ(Frame::mmio_request(op, 0, 0, 17, 0, 0).validate(), FrameError::BadPairSize);
        EXPECT_EQ(Frame::mmio_request(op, 0, 0, 0, 0, 0).validate(), FrameError::BadPairSize);
    }
    Frame u;
    u.set_word(1, 0x13);
    EXPECT_EQ(u.validate(), FrameError::UnknownOp);
    Frame longf = Frame::ping(false);
    longf.set_extra_blocks(4);
    EXPECT_EQ(longf.validate(5), FrameError::Ok);
    EXPECT_EQ(longf.validate(4), FrameError::TooLong);
    Frame irq = Frame::irq_update(8, 0, 0);
    EXPECT_EQ(irq.validate(), FrameError::BadRid);
    irq = Frame::irq_update(0, 8, 0);
    EXPECT_EQ(irq.validate(), FrameError::BadIrqLine);
    irq = Frame::irq_update(0, 0, 2);
    EXPECT_EQ(irq.validate(), FrameError::BadIrqLevel);
    EXPECT_EQ(Frame::claim(8).validate(), FrameError::BadRid);
    EXPECT_EQ(Frame::reset().validate(), FrameError::Ok);
}

TEST(Frame, DescribeErrorTexts) {
    Frame u;
    u.set_word(1, 0x13);
    EXPECT_EQ(describe_error(FrameError::UnknownOp, u), "unknown opcode 0x13 (w1[7:0])");
    const Frame big = Frame::mmio_request(Op::Read, 0, 0, 40, 0, 0);
    EXPECT_EQ(describe_error(FrameError::BadSize, big), "size 40 out of range 1..32 in READ (w1[21:16])");
    const Frame bp = Frame::mmio_request(Op::ReadPair, 0, 0, 17, 0, 0);
    EXPECT_EQ(describe_error(FrameError::BadPairSize, bp), "pair element size 17 out of range 1..16 in READP (w1[21:16])");
    Frame l = Frame::ping(false);
    l.set_extra_blocks(9);
    EXPECT_EQ(describe_error(FrameError::TooLong, l, 4),
              "declared length 640 bytes (w0[15:8]=9) over the limit of 256 bytes");
    EXPECT_EQ(describe_error(FrameError::BadIrqLine, Frame::irq_update(0, 9, 0)), "IRQ line 9 out of range 0..7 (w2)");
    EXPECT_EQ(describe_error(FrameError::BadIrqLevel, Frame::irq_update(0, 1, 5)), "IRQ level 5 is not 0 or 1 (w3)");
    EXPECT_EQ(describe_error(FrameError::BadRid, Frame::claim(9)), "rid 9 out of range 0..7 in RGN_CLAIM (w0[7:0])");
    EXPECT_EQ(describe_error(FrameError::Truncated, Frame{}), "stream ended inside a frame");
    EXPECT_EQ(describe_error(FrameError::UnexpectedOp, Frame::claim(1)), "unexpected RGN_CLAIM frame (opcode 0xf0, w0[31]=1)");
    EXPECT_EQ(describe_error(FrameError::Ok, Frame{}), "ok");
    EXPECT_STREQ(error_name(FrameError::TooLong), "too-long");
    EXPECT_STREQ(error_name(FrameError::UnexpectedOp), "unexpected-op");
}

TEST(Frame, DescribeIsOneLine) {
    const std::string s = describe(Frame::mmio_request(Op::Read, 1, 0x1000, 4, 0, 5));
    EXPECT_NE(s.find("READ"), std::string::npos);
    EXPECT_NE(s.find("addr=0x1000"), std::string::npos);
    EXPECT_EQ(s.find('\n'), std::string::npos);
}

TEST(FrameReader, ByteAtATimeEqualsWhole) {
    std::vector<std::byte> stream;
    std::vector<Frame> sent;
    for (unsigned i = 0; i < 20; ++i) {
        Frame f = Frame::mmio_request(Op::Read, i % 8, 0x1000 + i, 4, 0, i);
        f.set_extra_blocks(i % 3);  // extended frames: extra blocks are consumed and dropped
        sent.push_back(f);
        const auto b = bytes_of(f, 0xEE);
        stream.insert(stream.end(), b.begin(), b.end());
    }
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{63}, std::size_t{64}, std::size_t{65},
                             std::size_t{200}, stream.size()}) {
        FrameReader r;
        std::vector<Frame> got;
        for (std::size_t off = 0; off < stream.size(); off += step) {
            const std::size_t n = std::min(step, stream.size() - off);
            ASSERT_TRUE(r.feed(std::span<const std::byte>(stream.data() + off, n),
                               [&](const Frame& f) { got.push_back(f); },
                               [&](FrameError, const Frame&) { FAIL(); }));
        }
        ASSERT_EQ(got.size(), sent.size()) << "step " << step;
        for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], sent[i]);
        EXPECT_FALSE(r.mid_frame());
    }
}

TEST(FrameReader, MidFrameAndReset) {
    FrameReader r;
    const auto b = bytes_of(Frame::ping(false));
    int frames = 0;
    r.feed(std::span<const std::byte>(b.data(), 10), [&](const Frame&) { ++frames; }, [](FrameError, const Frame&) {});
    EXPECT_TRUE(r.mid_frame());
    r.reset();
    EXPECT_FALSE(r.mid_frame());
    Frame two = Frame::ping(false);
    two.set_extra_blocks(1);
    const auto b2 = bytes_of(two);
    r.feed(std::span<const std::byte>(b2.data(), 64 + 5), [&](const Frame&) { ++frames; }, [](FrameError, const Frame&) {});
    EXPECT_EQ(frames, 1);
    EXPECT_TRUE(r.mid_frame());  // still skipping the extra block
}

TEST(FrameReader, TooLongStopsTheStream) {
    FrameReader r(2);
    Frame f = Frame::ping(false);
    f.set_extra_blocks(2);  // 3 blocks > 2
    const auto b = bytes_of(f);
    FrameError seen = FrameError::Ok;
    int frames = 0;
    EXPECT_FALSE(r.feed(b, [&](const Frame&) { ++frames; }, [&](FrameError e, const Frame&) { seen = e; }));
    EXPECT_EQ(seen, FrameError::TooLong);
    EXPECT_EQ(frames, 0);
    // Byte-at-a-time reports it too.
    FrameReader r2(2);
    bool ok = true;
    for (std::size_t i = 0; i < 64 && ok; ++i)
        ok = r2.feed(std::span<const std::byte>(b.data() + i, 1), [&](const Frame&) { ++frames; },
                     [&](FrameError e, const Frame&) { seen = e; });
    EXPECT_FALSE(ok);
    EXPECT_EQ(frames, 0);
}

TEST(FrameReader, MaximumLengthFrameAccepted) {
    FrameReader r;
    Frame f = Frame::ping(false);
    f.set_extra_blocks(255);
    const auto b = bytes_of(f);
    EXPECT_EQ(b.size(), 256 * kBlockSize);
    int frames = 0;
    EXPECT_TRUE(r.feed(b, [&](const Frame&) { ++frames; }, [](FrameError, const Frame&) {}));
    EXPECT_EQ(frames, 1);
    EXPECT_FALSE(r.mid_frame());
}

// ---- one rule per fact: exchange, expects_reply, is_reply_to ----------------------

TEST(FrameRules, ExchangeByOpcodeAndDirectionBit) {
    using coreio::Exchange;
    using coreio::exchange_of;
    EXPECT_EQ(exchange_of(Op::Read, false), Exchange::Mmio);
    EXPECT_EQ(exchange_of(Op::WriteAckPair, false), Exchange::Mmio);
    EXPECT_EQ(exchange_of(Op::Read, true), Exchange::Dma);
    EXPECT_EQ(exchange_of(Op::WriteAck, true), Exchange::Dma);
    EXPECT_EQ(exchange_of(Op::Write, true), Exchange::Invalid);  // a client never posts
    EXPECT_EQ(exchange_of(Op::ReadPair, true), Exchange::Invalid);
    EXPECT_EQ(exchange_of(Op::Ping, true), Exchange::Ping);
    EXPECT_EQ(exchange_of(Op::Ping, false), Exchange::Ping);
    EXPECT_EQ(exchange_of(Op::Reset, false), Exchange::Reset);
    EXPECT_EQ(exchange_of(Op::Reset, true), Exchange::Invalid);
    EXPECT_EQ(exchange_of(Op::Claim, true), Exchange::Claim);
    EXPECT_EQ(exchange_of(Op::Claim, false), Exchange::Invalid);
    EXPECT_EQ(exchange_of(Op::IrqUpdate, true), Exchange::Irq);
    EXPECT_EQ(exchange_of(Op::IrqUpdate, false), Exchange::Invalid);
    EXPECT_EQ(exchange_of(static_cast<Op>(0x13), false), Exchange::Invalid);
    EXPECT_EQ(exchange_of(Frame::claim(2)), Exchange::Claim);
    EXPECT_EQ(exchange_of(Frame::dma_request(Op::Read, 0, 0, 0x1000, 8, 0, 1)), Exchange::Dma);
}

TEST(FrameRules, WhoWaitsForAReply) {
    using coreio::expects_reply;
    EXPECT_TRUE(expects_reply(Op::Read, false));
    EXPECT_TRUE(expects_reply(Op::ReadPair, false));
    EXPECT_TRUE(expects_reply(Op::WriteAck, false));
    EXPECT_TRUE(expects_reply(Op::WriteAckPair, false));
    EXPECT_FALSE(expects_reply(Op::Write, false));
    EXPECT_FALSE(expects_reply(Op::WritePair, false));
    EXPECT_FALSE(expects_reply(Op::Reset, false));
    EXPECT_TRUE(expects_reply(Op::Ping, false));
    EXPECT_TRUE(expects_reply(Op::Ping, true));
    EXPECT_TRUE(expects_reply(Op::Read, true));
    EXPECT_TRUE(expects_reply(Op::WriteAck, true));
    EXPECT_FALSE(expects_reply(Op::Claim, true));
    EXPECT_FALSE(expects_reply(Op::IrqUpdate, true));
    EXPECT_FALSE(expects_reply(Op::Write, true));  // invalid: nobody waits
    EXPECT_TRUE(coreio::is_request_from(true, true));
    EXPECT_FALSE(coreio::is_request_from(false, true));
}

TEST(FrameRules, ReplyEchoesTagW1AndW2ButNotErrorOrLength) {
    const Frame req = Frame::mmio_request(Op::ReadPair, 3, 0xfef00010, 8, coreio::kFlagPriv, 0xabcd);
    Frame rep = req;
    EXPECT_TRUE(coreio::is_reply_to(req, rep));
    rep.set_error(true);
    rep.set_extra_blocks(2);
    rep.fill_payload(0x55);  // data is the answer, not part of the key
    EXPECT_TRUE(coreio::is_reply_to(req, rep));
    auto differs = [&](auto change) {
        Frame r = req;
        change(r);
        return !coreio::is_reply_to(req, r);
    };
    EXPECT_TRUE(differs([](Frame& r) { r.set_tag(0xabce); }));
    EXPECT_TRUE(differs([](Frame& r) { r.set_rid(4); }));
    EXPECT_TRUE(differs([](Frame& r) { r.set_from_client(true); }));
    EXPECT_TRUE(differs([](Frame& r) { r.set_op(Op::Read); }));
    EXPECT_TRUE(differs([](Frame& r) { r.set_size(4); }));
    EXPECT_TRUE(differs([](Frame& r) { r.set_flags(0); }));
    EXPECT_TRUE(differs([](Frame& r) { r.set_byte_mask(1); }));
    EXPECT_TRUE(differs([](Frame& r) { r.set_address(0xfef00018); }));
    EXPECT_EQ(coreio::reply_key(req), coreio::reply_key(rep));
}
