// ClientSession behaviour that devices built on the original C library rely on
// (issue 9, "drop-in fidelity"): error replies to malformed requests, DMA id and
// flag rules, zero padding, and a bounded outbound queue.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "coreio/client_session.hpp"

using namespace coreio;

namespace {

/// Reads return 0x5A bytes; counts calls.
class Device : public MmioHandler {
public:
    int calls = 0;
    int read(std::uint64_t, std::size_t len, void* buf, unsigned) override {
        ++calls;
        std::memset(buf, 0x5A, len);
        return 0;
    }
    int write(std::uint64_t, std::size_t, const void*, unsigned) override {
        ++calls;
        return 0;
    }
};

struct Fixture {
    std::vector<std::string> logs;
    ClientSession s{SessionOptions{[this](std::string_view m) { logs.emplace_back(m); }, kMaxBlocks, nullptr}};

    std::vector<Frame> out(Channel ch) {
        const auto p = s.pending(ch);
        std::vector<Frame> v;
        for (std::size_t i = 0; i + kBlockSize <= p.size(); i += kBlockSize) v.push_back(Frame::from_bytes(p.data() + i));
        s.consume(ch, p.size());
        return v;
    }
};

Frame with_size(Op op, unsigned size, std::uint32_t tag) {
    Frame f = Frame::mmio_request(op, 0, 0x1000, 4, 0, tag);
    f.set_size(size);
    return f;
}

}  // namespace

TEST(SessionFidelity, MalformedRequestsThatWantAReplyGetOneWithTheErrorBit) {
    Fixture fx;
    Device d;
    ASSERT_EQ(fx.s.claim(0, d), 0);
    fx.out(Channel::Main);
    Frame long_read = with_size(Op::Read, 40, 5);
    long_read.set_extra_blocks(1);  // declared 128 bytes: consumed whole, answered with 64
    std::vector<std::byte> in;
    const Frame reqs[] = {with_size(Op::Read, 0, 1),        with_size(Op::Read, 33, 2),
                          with_size(Op::ReadPair, 17, 3),   with_size(Op::WriteAck, 0, 4),
                          long_read,                        with_size(Op::WriteAckPair, 0, 6),
                          with_size(Op::Write, 0, 7),       with_size(Op::WritePair, 20, 8)};
    for (const Frame& f : reqs) {
        in.insert(in.end(), f.data(), f.data() + kBlockSize);
        if (f.extra_blocks() == 1) in.insert(in.end(), kBlockSize, std::byte{0x77});
    }
    ASSERT_EQ(fx.s.receive(Channel::Main, in), 0);
    EXPECT_EQ(d.calls, 0);  // never handed to the device
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 6u);  // the posted writes (tags 7, 8) expect no reply
    for (std::size_t i = 0; i < o.size(); ++i) {
        Frame expect = reqs[i];
        expect.set_extra_blocks(0);
        expect.set_error(true);
        EXPECT_EQ(o[i], expect) << "reply " << i << ": " << describe(o[i]);
    }
    EXPECT_EQ(fx.logs.size(), 8u);  // each still logged once
    EXPECT_EQ(fx.logs[1], "main connection: size 33 out of range 1..32 in READ (w1[21:16])");
}

TEST(SessionFidelity, MalformedRequestOnTheDmaChannelIsAnsweredThere) {
    Fixture fx;
    ASSERT_EQ(fx.s.receive(Channel::Dma, with_size(Op::Read, 0, 9).bytes()), 0);
    const auto o = fx.out(Channel::Dma);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_TRUE(o[0].error());
    EXPECT_EQ(o[0].tag(), 9u);
    EXPECT_TRUE(fx.out(Channel::Main).empty());
}

TEST(SessionFidelity, UnknownOpcodeAndClientFramesStayUnanswered) {
    Fixture fx;
    Frame unknown = with_size(Op::Read, 4, 1);
    unknown.set_word(1, (unknown.word(1) & ~0xffull) | 0x13);
    Frame from_client = with_size(Op::Read, 0, 2);
    from_client.set_from_client(true);  // a malformed "DMA reply": nothing to answer
    ASSERT_EQ(fx.s.receive(Channel::Main, unknown.bytes()), 0);
    ASSERT_EQ(fx.s.receive(Channel::Dma, from_client.bytes()), 0);
    EXPECT_FALSE(fx.s.has_pending());
    EXPECT_EQ(fx.logs.size(), 2u);
}

TEST(SessionFidelity, DmaMidAboveSevenIsRejectedAndNothingSent) {
    Fixture fx;
    std::byte b[4];
    EXPECT_EQ(fx.s.dma_start(Op::Read, 8, 0, 0, b, 4, 0, [](int) { FAIL(); }), -EINVAL);
    EXPECT_EQ(fx.s.dma_start(Op::Read, 255, 0, 0, b, 4, 0, [](int) { FAIL(); }), -EINVAL);
    EXPECT_FALSE(fx.s.has_pending());
    EXPECT_EQ(fx.s.dma_start(Op::Read, 7, 15, 0, b, 4, 0, [](int) {}), 0);
    const auto o = fx.out(Channel::Dma);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(o[0].mid(), 7u);
    EXPECT_EQ(o[0].sid(), 15u);
}

TEST(SessionFidelity, DmaFlagsAreMaskedToTheDefinedBits) {
    Fixture fx;
    std::byte b[4];
    ASSERT_EQ(fx.s.dma_start(Op::Read, 0, 0, 0, b, 4, 0xff, [](int) {}), 0);
    ASSERT_EQ(fx.s.dma_start(Op::Read, 0, 0, 0, b, 4, 1 | kFlagPriv, [](int) {}), 0);
    const auto o = fx.out(Channel::Dma);
    ASSERT_EQ(o.size(), 2u);
    EXPECT_EQ(o[0].flags(), kFlagIfetch | kFlagPriv | kFlagSecure);
    EXPECT_EQ(o[1].flags(), kFlagPriv);
    EXPECT_EQ(o[0].word(1) & 0xffffffffull, (0xEull << 28) | (4ull << 16) | 0x01);  // nothing else set in w1
}

TEST(SessionFidelity, DmaPacketIdsStayWithin0x3ffAcrossAndWithinTransfers) {
    Fixture fx;
    std::vector<std::uint8_t> buf(3000 * 32);
    int done = 0;
    std::uint32_t max_tag = 0;
    std::size_t chunks = 0;
    // Three transfers of 1000 chunks, the first two queued together.
    for (int t = 0; t < 3; ++t) {
        ASSERT_EQ(fx.s.dma_start(Op::Read, 0, 0, static_cast<std::uint64_t>(t) * 32000,
                                 reinterpret_cast<std::byte*>(buf.data()) + t * 32000, 32000, 0,
                                 [&](int r) { done += r == 0; }),
                  0);
        if (t == 0) continue;
        for (int round = 0; round < 8; ++round) {
            const auto reqs = fx.out(Channel::Dma);
            std::vector<std::byte> replies;
            for (const Frame& r : reqs) {
                max_tag = std::max(max_tag, r.tag());
                replies.insert(replies.end(), r.data(), r.data() + kBlockSize);
            }
            chunks += reqs.size();
            if (!replies.empty()) {
                ASSERT_EQ(fx.s.receive(Channel::Dma, replies), 0);
            }
        }
    }
    EXPECT_EQ(chunks, 3000u);
    EXPECT_EQ(done, 3);
    EXPECT_LE(max_tag, 0x3ffu);
    EXPECT_TRUE(fx.logs.empty());
}

TEST(SessionFidelity, ADuplicateReplyAfterItsIdWasReusedForAnotherAddressIsRejected) {
    Fixture fx;
    std::uint8_t a[4], b[4];
    int calls = 0;
    fx.s.dma_start(Op::Read, 0, 0, 0x100, reinterpret_cast<std::byte*>(a), 4, 0, [&](int) { ++calls; });
    const Frame first = fx.out(Channel::Dma).at(0);
    fx.s.receive(Channel::Dma, first.bytes());
    fx.s.dma_start(Op::Read, 0, 0, 0x200, reinterpret_cast<std::byte*>(b), 4, 0, [&](int) { ++calls; });
    const Frame second = fx.out(Channel::Dma).at(0);
    EXPECT_EQ(second.tag(), first.tag());  // the id is free again, so it is reused
    fx.s.receive(Channel::Dma, first.bytes());  // stale duplicate: different address
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(fx.logs.size(), 1u);
    fx.s.receive(Channel::Dma, second.bytes());
    EXPECT_EQ(calls, 2);
}

TEST(SessionFidelity, PaddingOfClientOriginatedFramesIsZero) {
    Fixture fx;
    std::uint8_t rd[3];
    std::uint8_t wr[5] = {1, 2, 3, 4, 5};
    ASSERT_EQ(fx.s.dma_start(Op::Read, 0, 0, 0x40, reinterpret_cast<std::byte*>(rd), 3, 0, [](int) {}), 0);
    ASSERT_EQ(fx.s.dma_start(Op::WriteAck, 0, 0, 0x80, reinterpret_cast<std::byte*>(wr), 5, 0, [](int) {}), 0);
    const auto o = fx.out(Channel::Dma);
    ASSERT_EQ(o.size(), 2u);
    for (std::size_t i = 0; i < kDataBytes; ++i) {
        EXPECT_EQ(o[0].payload()[i], i < 3 ? std::byte{0xAA} : std::byte{0}) << "read byte " << i;
        EXPECT_EQ(o[1].payload()[i], i < 5 ? std::byte(i + 1) : std::byte{0}) << "write byte " << i;
    }
    Device d;
    fx.s.claim(2, d);
    fx.s.irq_update(2, 3, true);
    for (const Frame& f : fx.out(Channel::Main))
        for (std::size_t i = kDataOffset + 8; i < kBlockSize; ++i) EXPECT_EQ(f.data()[i], std::byte{0}) << describe(f);
}

TEST(SessionFidelity, BacklogHookKeepsTheQueueSmallAndInOrder) {
    std::vector<Frame> sent;
    std::size_t peak = 0;
    ClientSession* sp = nullptr;
    ClientSession s;
    s.set_backlog_handler([&](Channel ch) {
        ASSERT_EQ(ch, Channel::Main);
        const auto p = sp->pending(ch);
        peak = std::max(peak, p.size());
        for (std::size_t i = 0; i < p.size(); i += kBlockSize) sent.push_back(Frame::from_bytes(p.data() + i));
        sp->consume(ch, p.size());
    }, 4096);
    sp = &s;
    // A write handler that toggles line 0 many times (the pattern of issue 9).
    struct Toggler : MmioHandler {
        ClientSession* s = nullptr;
        int read(std::uint64_t, std::size_t, void*, unsigned) override { return 0; }
        int write(std::uint64_t, std::size_t, const void*, unsigned) override {
            for (int i = 0; i < 10000; ++i) s->irq_update(0, 0, (i & 1) == 0);
            return 0;
        }
    } dev;
    dev.s = &s;
    ASSERT_EQ(s.claim(0, dev), 0);
    ASSERT_EQ(s.receive(Channel::Main, Frame::mmio_request(Op::WriteAck, 0, 0x1000, 4, 0, 42).bytes()), 0);
    const auto rest = s.pending(Channel::Main);
    for (std::size_t i = 0; i < rest.size(); i += kBlockSize) sent.push_back(Frame::from_bytes(rest.data() + i));
    EXPECT_LE(peak, 4096u + kBlockSize);
    ASSERT_EQ(sent.size(), 1u + 10000u + 1u);  // claim, the edges, the reply
    EXPECT_EQ(sent.front().op(), Op::Claim);
    for (int i = 0; i < 10000; ++i) {
        ASSERT_EQ(sent[1 + i].op(), Op::IrqUpdate);
        ASSERT_EQ(sent[1 + i].irq_level(), (i & 1) == 0 ? 1u : 0u) << i;
    }
    EXPECT_EQ(sent.back().tag(), 42u);
}

TEST(SessionFidelity, RepliesOfOneBatchDoNotCallTheBacklogHandler) {
    // A batch's replies are bounded by its input; blocking mid-batch could stall
    // a VM that sends its next requests before reading replies.
    ClientSession s;
    int calls = 0;
    s.set_backlog_handler([&](Channel) { ++calls; }, 1024);
    Device d;
    ASSERT_EQ(s.claim(0, d), 0);
    std::vector<std::byte> in;
    for (std::uint32_t i = 0; i < 100; ++i) {
        const Frame f = Frame::mmio_request(Op::Read, 0, 0x1000, 4, 0, i);
        in.insert(in.end(), f.data(), f.data() + kBlockSize);
    }
    ASSERT_EQ(s.receive(Channel::Main, in), 0);
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(s.pending(Channel::Main).size(), 101 * kBlockSize);
    s.irq_update(0, 0, true);  // a command outside receive(): the queue is over the limit
    EXPECT_EQ(calls, 1);
}
