// ClientSession, in-process and deterministic: scripted VM bytes in, frames out.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "coreio/client_session.hpp"

using namespace coreio;

namespace {

struct Call {
    char kind;  // 'r', 'w', 'R' (read_pair), 'W' (write_pair), 'x' (reset)
    std::uint64_t addr;
    std::size_t len;
    unsigned flags;
    std::vector<std::uint8_t> data;  // written bytes
};

/// Records calls; reads return bytes (addr + i) & 0xff; fails when addr == fail_addr.
class Device : public MmioHandler {
public:
    std::vector<Call> calls;
    std::uint64_t fail_addr = ~0ull;
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override {
        calls.push_back({'r', addr, len, flags, {}});
        for (std::size_t i = 0; i < len; ++i) static_cast<std::uint8_t*>(buf)[i] = static_cast<std::uint8_t>(addr + i);
        return addr == fail_addr ? 1 : 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override {
        const auto* p = static_cast<const std::uint8_t*>(buf);
        calls.push_back({'w', addr, len, flags, std::vector<std::uint8_t>(p, p + len)});
        return addr == fail_addr ? 1 : 0;
    }
    void reset() override { calls.push_back({'x', 0, 0, 0, {}}); }
};

/// Overrides the pair handlers (called once per pair access).
class PairDevice : public Device {
public:
    int read_pair(std::uint64_t addr, std::size_t len, void* b1, void* b2, unsigned flags) override {
        calls.push_back({'R', addr, len, flags, {}});
        std::memset(b1, 0x11, len);
        std::memset(b2, 0x22, len);
        return 0;
    }
    int write_pair(std::uint64_t addr, std::size_t len, const void* b1, const void* b2, unsigned flags) override {
        const auto* p1 = static_cast<const std::uint8_t*>(b1);
        const auto* p2 = static_cast<const std::uint8_t*>(b2);
        std::vector<std::uint8_t> d(p1, p1 + len);
        d.insert(d.end(), p2, p2 + len);
        calls.push_back({'W', addr, len, flags, d});
        return 0;
    }
};

struct Fixture {
    std::vector<std::string> logs;
    ClientSession s{SessionOptions{[this](std::string_view m) { logs.emplace_back(m); }, kMaxBlocks, nullptr}};

    int feed(Channel ch, const Frame& f) { return s.receive(ch, f.bytes()); }
    int feed(Channel ch, const std::vector<std::byte>& b) { return s.receive(ch, b); }
    std::vector<Frame> out(Channel ch) {
        const auto p = s.pending(ch);
        EXPECT_EQ(p.size() % kBlockSize, 0u);
        std::vector<Frame> v;
        for (std::size_t i = 0; i + kBlockSize <= p.size(); i += kBlockSize) v.push_back(Frame::from_bytes(p.data() + i));
        s.consume(ch, p.size());
        return v;
    }
};

std::vector<std::byte> concat(std::initializer_list<Frame> fs) {
    std::vector<std::byte> v;
    for (const Frame& f : fs) v.insert(v.end(), f.data(), f.data() + kBlockSize);
    return v;
}

/// A guest memory that answers DMA chunk requests.
struct Memory {
    std::vector<std::uint8_t> mem = std::vector<std::uint8_t>(1 << 20);
    std::uint64_t fault_addr = ~0ull;  // a chunk containing it faults
    Memory() {
        for (std::size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    Frame answer(Frame f) {
        const std::uint64_t a = f.address();
        if (a <= fault_addr && fault_addr < a + f.size()) {
            f.set_error(true);
            return f;
        }
        if (f.op() == Op::Read)
            std::memcpy(f.payload(), &mem[a], f.size());
        else
            std::memcpy(&mem[a], f.payload(), f.size());
        return f;
    }
};

/// Answers every pending DMA chunk (optionally in reverse), feeding replies in one batch.
std::size_t serve_dma(Fixture& fx, Memory& m, bool reverse = false) {
    auto reqs = fx.out(Channel::Dma);
    if (reverse) std::reverse(reqs.begin(), reqs.end());
    std::vector<std::byte> replies;
    for (const Frame& r : reqs) {
        const Frame a = m.answer(r);
        replies.insert(replies.end(), a.data(), a.data() + kBlockSize);
    }
    if (!replies.empty()) {
        EXPECT_EQ(fx.s.receive(Channel::Dma, replies), 0);
    }
    return reqs.size();
}

}  // namespace

TEST(ClientSession, ClaimSendsRgnClaim) {
    Fixture fx;
    Device d;
    EXPECT_EQ(fx.s.claim(3, d), 0);
    EXPECT_EQ(fx.s.claim(3, d), -EBUSY);
    EXPECT_EQ(fx.s.claim(8, d), -EINVAL);
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(o[0], Frame::claim(3));
    EXPECT_TRUE(fx.out(Channel::Dma).empty());
}

TEST(ClientSession, MmioReadRepliesWithData) {
    Fixture fx;
    Device d;
    fx.s.claim(1, d);
    fx.out(Channel::Main);
    const Frame req = Frame::mmio_request(Op::Read, 1, 0x10001004, 4, kFlagPriv, 0xabcd);
    EXPECT_EQ(fx.feed(Channel::Main, req), 0);
    ASSERT_EQ(d.calls.size(), 1u);
    EXPECT_EQ(d.calls[0].kind, 'r');
    EXPECT_EQ(d.calls[0].addr, 0x10001004u);
    EXPECT_EQ(d.calls[0].len, 4u);
    EXPECT_EQ(d.calls[0].flags, unsigned(kFlagPriv));
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 1u);
    Frame want = req;
    for (int i = 0; i < 4; ++i) want.payload()[i] = std::byte{static_cast<unsigned char>(0x04 + i)};
    EXPECT_EQ(o[0], want);  // everything else echoed bit for bit
    EXPECT_FALSE(o[0].error());
}

TEST(ClientSession, HandlerFailureSetsErrorBit) {
    Fixture fx;
    Device d;
    d.fail_addr = 0x2000;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    fx.feed(Channel::Main, Frame::mmio_request(Op::Read, 0, 0x2000, 8, 0, 1));
    fx.feed(Channel::Main, Frame::mmio_request(Op::WriteAck, 0, 0x2000, 8, 0, 2));
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 2u);
    EXPECT_TRUE(o[0].error());
    EXPECT_TRUE(o[1].error());
    EXPECT_EQ(o[1].tag(), 2u);
}

TEST(ClientSession, PostedWriteHasNoReplyAckedWriteHas) {
    Fixture fx;
    Device d;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    Frame w = Frame::mmio_request(Op::Write, 0, 0x3000, 3, 0, 9);
    std::memcpy(w.payload(), "\x01\x02\x03", 3);
    fx.feed(Channel::Main, w);
    EXPECT_TRUE(fx.out(Channel::Main).empty());
    ASSERT_EQ(d.calls.size(), 1u);
    EXPECT_EQ(d.calls[0].data, (std::vector<std::uint8_t>{1, 2, 3}));
    Frame wa = Frame::mmio_request(Op::WriteAck, 0, 0x3008, 32, 0, 10);
    fx.feed(Channel::Main, wa);
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(o[0], wa);
    EXPECT_EQ(d.calls[1].len, 32u);
}

/// Records the byte mask of every single write.
class MaskDevice : public Device {
public:
    std::vector<std::uint32_t> masks;
    int write_masked(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags,
                     std::uint32_t byte_mask) override {
        masks.push_back(byte_mask);
        return write(addr, len, buf, flags);
    }
};

TEST(ClientSession, WritesCarryTheWireByteMaskToTheHandler) {
    Fixture fx;
    MaskDevice d;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    Frame w = Frame::mmio_request(Op::Write, 0, 0x3000, 4, 0, 1);
    EXPECT_EQ(w.byte_mask(), 0xfu);  // the builder enables the access's bytes
    w.set_byte_mask(0x5);            // a partial write: bytes 0 and 2
    fx.feed(Channel::Main, w);
    fx.feed(Channel::Main, Frame::mmio_request(Op::WriteAck, 0, 0x3008, 8, 0, 2));
    ASSERT_EQ(d.masks.size(), 2u);
    EXPECT_EQ(d.masks[0], 0x5u);
    EXPECT_EQ(d.masks[1], 0xffu);
    // A handler that does not override write_masked() still gets the write.
    Device plain;
    Fixture fx2;
    fx2.s.claim(0, plain);
    fx2.feed(Channel::Main, w);
    ASSERT_EQ(plain.calls.size(), 1u);
    EXPECT_EQ(plain.calls[0].len, 4u);
}

TEST(ClientSession, UnclaimedAndHighRidEchoedUnchanged) {
    Fixture fx;
    Device d;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    const Frame a = Frame::mmio_request(Op::Read, 2, 0x5000, 4, 0, 1);
    Frame b = Frame::mmio_request(Op::Read, 8, 0x5000, 4, 0, 2);
    Frame c = Frame::mmio_request(Op::Write, 200, 0x5000, 4, 0, 3);
    fx.feed(Channel::Main, concat({a, b, c}));
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 3u);
    EXPECT_EQ(o[0], a);
    EXPECT_EQ(o[1], b);
    EXPECT_EQ(o[2], c);
    EXPECT_TRUE(d.calls.empty());
    EXPECT_TRUE(fx.logs.empty());
}

TEST(ClientSession, PairWithoutPairHandlerCallsSingleAtAddrAndAddrPlusSize) {
    for (unsigned size : {1u, 4u, 7u, 8u, 15u, 16u}) {
        Fixture fx;
        Device d;
        fx.s.claim(0, d);
        fx.out(Channel::Main);
        fx.feed(Channel::Main, Frame::mmio_request(Op::ReadPair, 0, 0x100, size, 0, 1));
        ASSERT_EQ(d.calls.size(), 2u);
        EXPECT_EQ(d.calls[0].addr, 0x100u);
        EXPECT_EQ(d.calls[1].addr, 0x100u + size);
        EXPECT_EQ(d.calls[1].len, size);
        const auto o = fx.out(Channel::Main);
        ASSERT_EQ(o.size(), 1u);
        const std::size_t second = Frame::pair_second_offset(size);
        for (unsigned i = 0; i < size; ++i) {
            EXPECT_EQ(o[0].payload()[i], std::byte(static_cast<unsigned char>(0x100 + i)));
            EXPECT_EQ(o[0].payload()[second + i], std::byte(static_cast<unsigned char>(0x100 + size + i)));
        }
        // Posted pair write: two writes with each element's bytes, no reply.
        Frame w = Frame::mmio_request(Op::WritePair, 0, 0x200, size, 0, 2);
        for (unsigned i = 0; i < size; ++i) {
            w.payload()[i] = std::byte{0x30};
            w.payload()[second + i] = std::byte{0x40};
        }
        fx.feed(Channel::Main, w);
        ASSERT_EQ(d.calls.size(), 4u);
        EXPECT_EQ(d.calls[2].addr, 0x200u);
        EXPECT_EQ(d.calls[3].addr, 0x200u + size);
        EXPECT_EQ(d.calls[2].data, std::vector<std::uint8_t>(size, 0x30));
        EXPECT_EQ(d.calls[3].data, std::vector<std::uint8_t>(size, 0x40));
        EXPECT_TRUE(fx.out(Channel::Main).empty());
    }
}

TEST(ClientSession, PairFailureOfEitherElementIsABusError) {
    Fixture fx;
    Device d;
    d.fail_addr = 0x108;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    fx.feed(Channel::Main, Frame::mmio_request(Op::WriteAckPair, 0, 0x100, 8, 0, 1));
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_TRUE(o[0].error());
    EXPECT_EQ(d.calls.size(), 2u);
}

TEST(ClientSession, PairHandlerCalledOnce) {
    Fixture fx;
    PairDevice d;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    fx.feed(Channel::Main, Frame::mmio_request(Op::ReadPair, 0, 0x100, 16, 0, 1));
    Frame w = Frame::mmio_request(Op::WriteAckPair, 0, 0x100, 2, 0, 2);
    w.payload()[0] = std::byte{1};
    w.payload()[8] = std::byte{2};
    fx.feed(Channel::Main, w);
    ASSERT_EQ(d.calls.size(), 2u);
    EXPECT_EQ(d.calls[0].kind, 'R');
    EXPECT_EQ(d.calls[1].kind, 'W');
    EXPECT_EQ(d.calls[1].data, (std::vector<std::uint8_t>{1, 0xAA, 2, 0xAA}));
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 2u);
    EXPECT_EQ(o[0].payload()[0], std::byte{0x11});
    EXPECT_EQ(o[0].payload()[24], std::byte{0x22});
}

TEST(ClientSession, PingEchoedWithExtraBlocksClearedOnBothChannels) {
    Fixture fx;
    Frame p = Frame::ping(false);
    p.set_tag(42);
    p.set_extra_blocks(2);
    std::vector<std::byte> b(p.data(), p.data() + 64);
    b.resize(3 * 64, std::byte{0x55});
    const Frame after = Frame::ping(false);
    b.insert(b.end(), after.data(), after.data() + 64);
    for (Channel ch : {Channel::Main, Channel::Dma}) {
        EXPECT_EQ(fx.feed(ch, b), 0);
        const auto o = fx.out(ch);
        ASSERT_EQ(o.size(), 2u);
        Frame want = p;
        want.set_extra_blocks(0);
        EXPECT_EQ(o[0], want);
        EXPECT_EQ(o[1], after);  // the extra blocks were consumed, not parsed
    }
    EXPECT_TRUE(fx.logs.empty());
}

TEST(ClientSession, ResetCallsHandlersOfClaimedRanges) {
    Fixture fx;
    Device a, b;
    fx.s.claim(0, a);
    fx.s.claim(5, b);
    fx.out(Channel::Main);
    fx.feed(Channel::Main, Frame::reset());
    ASSERT_EQ(a.calls.size(), 1u);
    EXPECT_EQ(a.calls[0].kind, 'x');
    ASSERT_EQ(b.calls.size(), 1u);
    EXPECT_TRUE(fx.out(Channel::Main).empty());  // no reply
}

TEST(ClientSession, IrqOnlyOnChange) {
    Fixture fx;
    EXPECT_EQ(fx.s.irq_update(2, 3, false), 0);  // lines start low: nothing to send
    EXPECT_TRUE(fx.out(Channel::Main).empty());
    EXPECT_EQ(fx.s.irq_update(2, 3, true), 0);
    EXPECT_EQ(fx.s.irq_update(2, 3, true), 0);
    EXPECT_EQ(fx.s.irq_update(2, 4, true), 0);  // another line of the same range
    EXPECT_EQ(fx.s.irq_update(1, 3, true), 0);  // same line of another range
    EXPECT_EQ(fx.s.irq_update(2, 3, false), 0);
    EXPECT_EQ(fx.s.irq_update(2, 3, false), 0);
    EXPECT_EQ(fx.s.irq_update(8, 0, true), -EINVAL);
    EXPECT_EQ(fx.s.irq_update(0, 8, true), -EINVAL);
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 4u);
    EXPECT_EQ(o[0], Frame::irq_update(2, 3, 1));
    EXPECT_EQ(o[1], Frame::irq_update(2, 4, 1));
    EXPECT_EQ(o[2], Frame::irq_update(1, 3, 1));
    EXPECT_EQ(o[3], Frame::irq_update(2, 3, 0));
    EXPECT_TRUE(fx.out(Channel::Dma).empty());
}

TEST(ClientSession, DmaChunksNeverCross32ByteBoundaries) {
    Memory m;
    for (std::uint64_t start : {0ull, 1ull, 5ull, 31ull, 32ull, 33ull, 0x1000ull - 3}) {
        for (std::size_t len = 1; len <= 100; ++len) {
            Fixture fx;
            std::vector<std::uint8_t> buf(len, 0);
            int result = 1, calls = 0;
            ASSERT_EQ(fx.s.dma_start(Op::Read, 0, 0, start, reinterpret_cast<std::byte*>(buf.data()), len, 0,
                                     [&](int r) { result = r; ++calls; }),
                      0);
            const auto reqs = fx.s.pending(Channel::Dma);
            std::uint64_t next = start;
            for (std::size_t off = 0; off < reqs.size(); off += 64) {
                const Frame f = Frame::from_bytes(reqs.data() + off);
                EXPECT_EQ(f.address(), next);
                EXPECT_EQ(f.address() / 32, (f.address() + f.size() - 1) / 32) << "chunk crosses a boundary";
                EXPECT_EQ(f.size(), std::min<std::uint64_t>(32 - (next & 31), start + len - next));
                EXPECT_TRUE(f.from_client());
                EXPECT_EQ(f.op(), Op::Read);
                EXPECT_EQ(f.payload()[0], std::byte{0xAA});
                next += f.size();
            }
            EXPECT_EQ(next, start + len);
            serve_dma(fx, m, len % 2 == 0);  // replies in any order
            EXPECT_EQ(calls, 1);
            EXPECT_EQ(result, 0);
            EXPECT_EQ(0, std::memcmp(buf.data(), &m.mem[start], len));
            EXPECT_EQ(fx.s.dma_transfers(), 0u);
        }
    }
}

TEST(ClientSession, DmaWindowIs1024AndRefills) {
    Fixture fx;
    Memory m;
    const std::size_t len = 1 << 17;  // 4096 chunks
    std::vector<std::uint8_t> buf(len);
    int result = 1;
    ASSERT_EQ(fx.s.dma_start(Op::Read, 0, 0, 0x100, reinterpret_cast<std::byte*>(buf.data()), len, 0,
                             [&](int r) { result = r; }),
              0);
    EXPECT_EQ(fx.s.dma_in_flight(), 1024u);
    EXPECT_EQ(fx.s.pending(Channel::Dma).size(), 1024u * 64);
    // Answer 10 chunks: 10 more go out.
    auto reqs = fx.out(Channel::Dma);
    std::vector<std::byte> some;
    for (int i = 0; i < 10; ++i) {
        const Frame a = m.answer(reqs[static_cast<std::size_t>(i)]);
        some.insert(some.end(), a.data(), a.data() + 64);
    }
    fx.s.receive(Channel::Dma, some);
    EXPECT_EQ(fx.s.dma_in_flight(), 1024u);
    auto more = fx.out(Channel::Dma);
    ASSERT_EQ(more.size(), 10u);
    EXPECT_EQ(more[0].address(), 0x100u + 1024 * 32);
    // Serve the rest (the remaining 1014 first, then refills).
    std::vector<std::byte> rest;
    for (std::size_t i = 10; i < reqs.size(); ++i) {
        const Frame a = m.answer(reqs[i]);
        rest.insert(rest.end(), a.data(), a.data() + 64);
    }
    for (const Frame& f : more) {
        const Frame a = m.answer(f);
        rest.insert(rest.end(), a.data(), a.data() + 64);
    }
    fx.s.receive(Channel::Dma, rest);
    int rounds = 0;
    while (serve_dma(fx, m) > 0) {
        EXPECT_LE(fx.s.dma_in_flight(), 1024u);
        ASSERT_LT(++rounds, 100);
    }
    EXPECT_EQ(result, 0);
    EXPECT_EQ(0, std::memcmp(buf.data(), &m.mem[0x100], len));
}

TEST(ClientSession, ManyTransfersShareTheWindowInOrder) {
    Fixture fx;
    Memory m;
    std::vector<std::vector<std::uint8_t>> bufs(50, std::vector<std::uint8_t>(1000));
    std::vector<int> order;
    for (int i = 0; i < 50; ++i)
        ASSERT_EQ(fx.s.dma_start(Op::Read, 0, 0, static_cast<std::uint64_t>(i) * 1000,
                                 reinterpret_cast<std::byte*>(bufs[static_cast<std::size_t>(i)].data()), 1000, 0,
                                 [&order, i](int r) {
                                     EXPECT_EQ(r, 0);
                                     order.push_back(i);
                                 }),
                  0);
    EXPECT_EQ(fx.s.dma_in_flight(), 1024u);
    int rounds = 0;
    while (serve_dma(fx, m) > 0) ASSERT_LT(++rounds, 100);
    ASSERT_EQ(order.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(0, std::memcmp(bufs[static_cast<std::size_t>(i)].data(), &m.mem[static_cast<std::size_t>(i) * 1000], 1000));
}

TEST(ClientSession, DmaWriteCarriesDataAndMask) {
    Fixture fx;
    Memory m;
    std::vector<std::uint8_t> src(77);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(0xF0 ^ i);
    int result = 1;
    ASSERT_EQ(fx.s.dma_start(Op::WriteAck, 3, 2, 0x4010, reinterpret_cast<std::byte*>(src.data()), src.size(),
                             kFlagSecure, [&](int r) { result = r; }),
              0);
    const auto p = fx.s.pending(Channel::Dma);
    const Frame first = Frame::from_bytes(p.data());
    EXPECT_EQ(first.op(), Op::WriteAck);
    EXPECT_EQ(first.mid(), 3u);
    EXPECT_EQ(first.sid(), 2u);
    EXPECT_EQ(first.flags(), unsigned(kFlagSecure));
    EXPECT_EQ(first.size(), 16u);
    EXPECT_EQ(first.byte_mask(), 0xffffu);
    serve_dma(fx, m);
    EXPECT_EQ(result, 0);
    EXPECT_EQ(0, std::memcmp(src.data(), &m.mem[0x4010], src.size()));
}

TEST(ClientSession, AnyFaultFailsTheWholeTransferOnce) {
    Fixture fx;
    Memory m;
    m.fault_addr = 0x1040;
    std::vector<std::uint8_t> buf(256);
    int calls = 0, result = 0;
    fx.s.dma_start(Op::Read, 0, 0, 0x1000, reinterpret_cast<std::byte*>(buf.data()), buf.size(), 0, [&](int r) {
        ++calls;
        result = r;
    });
    serve_dma(fx, m);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(result, -EFAULT);
}

TEST(ClientSession, DmaArgumentErrors) {
    Fixture fx;
    std::byte b[4];
    auto none = [](int) { FAIL() << "completion must not run"; };
    EXPECT_EQ(fx.s.dma_start(Op::Read, 0, 0, 0, b, 0, 0, none), -EINVAL);
    EXPECT_EQ(fx.s.dma_start(Op::Read, 256, 0, 0, b, 4, 0, none), -EINVAL);
    EXPECT_EQ(fx.s.dma_start(Op::Read, 0, 16, 0, b, 4, 0, none), -EINVAL);
    EXPECT_EQ(fx.s.dma_start(Op::Read, 8, 0, 0, b, 4, 0, none), -EINVAL);  // mid is 0..7
    EXPECT_EQ(fx.s.dma_start(Op::Read, 0, 0, ~0ull - 1, b, 4, 0, none), -EINVAL);
    EXPECT_EQ(fx.s.dma_start(Op::Write, 0, 0, 0, b, 4, 0, none), -EINVAL);
    EXPECT_EQ(fx.s.dma_start(Op::Read, 7, 15, 0, b, 4, 0, [](int) {}), 0);  // the largest valid ids
}

TEST(ClientSession, CloseCompletesEveryDmaWithEconnreset) {
    Fixture fx;
    std::vector<std::uint8_t> big(1 << 16), small(8);
    std::vector<int> results;
    fx.s.dma_start(Op::Read, 0, 0, 0, reinterpret_cast<std::byte*>(big.data()), big.size(), 0,
                   [&](int r) { results.push_back(r); });
    fx.s.dma_start(Op::WriteAck, 0, 0, 0, reinterpret_cast<std::byte*>(small.data()), small.size(), 0,
                   [&](int r) { results.push_back(r); });
    fx.s.connection_closed(Channel::Dma);
    EXPECT_EQ(results, (std::vector<int>{-ECONNRESET, -ECONNRESET}));
    EXPECT_TRUE(fx.s.closed());
    EXPECT_EQ(fx.s.dma_in_flight(), 0u);
    EXPECT_FALSE(fx.s.has_pending());
    std::byte b[4];
    EXPECT_EQ(fx.s.dma_start(Op::Read, 0, 0, 0, b, 4, 0, [](int) {}), -ENOTCONN);
    fx.s.reset();
    EXPECT_FALSE(fx.s.closed());
    EXPECT_EQ(fx.s.dma_start(Op::Read, 0, 0, 0, b, 4, 0, [](int) {}), 0);
}

TEST(ClientSession, CancelledTransferNeverTouchesBufferNorCompletes) {
    Fixture fx;
    Memory m;
    std::vector<std::uint8_t> buf(1 << 16, 0x5C);
    std::uint64_t h = 0;
    bool called = false;
    fx.s.dma_start(Op::Read, 0, 0, 0, reinterpret_cast<std::byte*>(buf.data()), buf.size(), 0,
                   [&](int) { called = true; }, &h);
    EXPECT_EQ(fx.s.dma_cancel(h), 0);
    EXPECT_EQ(fx.s.dma_cancel(h), -ENOENT);
    serve_dma(fx, m);  // the 1024 chunks in flight come back and are dropped
    EXPECT_TRUE(fx.out(Channel::Dma).empty());
    EXPECT_FALSE(called);
    EXPECT_EQ(buf, std::vector<std::uint8_t>(1 << 16, 0x5C));
    EXPECT_EQ(fx.s.dma_transfers(), 0u);
    EXPECT_TRUE(fx.logs.empty());
}

TEST(ClientSession, CompletionMayStartAnotherDma) {
    Fixture fx;
    Memory m;
    std::uint8_t a[40], b[40];
    int second = 1;
    fx.s.dma_start(Op::Read, 0, 0, 0, reinterpret_cast<std::byte*>(a), sizeof a, 0, [&](int r) {
        EXPECT_EQ(r, 0);
        EXPECT_EQ(fx.s.dma_start(Op::Read, 0, 0, 64, reinterpret_cast<std::byte*>(b), sizeof b, 0,
                                 [&](int r2) { second = r2; }),
                  0);
    });
    serve_dma(fx, m);
    serve_dma(fx, m);
    EXPECT_EQ(second, 0);
    EXPECT_EQ(0, std::memcmp(b, &m.mem[64], sizeof b));
}

TEST(ClientSession, ReplyOfDifferentOpOrAddressIsRejected) {
    Fixture fx;
    std::uint8_t buf[4];
    int calls = 0;
    fx.s.dma_start(Op::Read, 0, 0, 0x100, reinterpret_cast<std::byte*>(buf), 4, 0, [&](int) { ++calls; });
    const Frame req = fx.out(Channel::Dma).at(0);
    Frame wrong_addr = req;
    wrong_addr.set_address(0x104);
    Frame wrong_op = req;
    wrong_op.set_op(Op::WriteAck);
    Frame unknown_tag = req;
    unknown_tag.set_tag(req.tag() + 1);
    fx.feed(Channel::Dma, concat({wrong_addr, wrong_op, unknown_tag}));
    EXPECT_EQ(calls, 0);
    ASSERT_EQ(fx.logs.size(), 3u);
    EXPECT_EQ(fx.logs[0].rfind("DMA connection: DMA reply matches no request in flight (tag 0x", 0), 0u) << fx.logs[0];
    fx.feed(Channel::Dma, req);
    EXPECT_EQ(calls, 1);
    fx.feed(Channel::Dma, req);  // a duplicate reply matches nothing any more
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(fx.logs.size(), 4u);
}

TEST(ClientSession, MalformedFramesLoggedAndSkipped) {
    Fixture fx;
    Device d;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    Frame unknown = Frame::mmio_request(Op::Read, 0, 0, 4, 0, 1);
    unknown.set_word(1, (unknown.word(1) & ~0xffull) | 0x13);
    const Frame big = Frame::mmio_request(Op::Read, 0, 0, 33, 0, 2);
    const Frame bigpair = Frame::mmio_request(Op::ReadPair, 0, 0, 17, 0, 3);
    const Frame claim = Frame::claim(1);
    const Frame irq = Frame::irq_update(0, 1, 1);
    Frame dma_on_main = Frame::dma_request(Op::Read, 0, 0, 0, 4, 0, 5);
    const Frame good = Frame::mmio_request(Op::Read, 0, 0x10, 4, 0, 6);
    EXPECT_EQ(fx.feed(Channel::Main, concat({unknown, big, bigpair, claim, irq, dma_on_main, good})), 0);
    ASSERT_EQ(fx.logs.size(), 6u);
    EXPECT_EQ(fx.logs[0], "main connection: unknown opcode 0x13 (w1[7:0])");
    EXPECT_EQ(fx.logs[1], "main connection: size 33 out of range 1..32 in READ (w1[21:16])");
    EXPECT_EQ(fx.logs[2], "main connection: pair element size 17 out of range 1..16 in READP (w1[21:16])");
    EXPECT_EQ(fx.logs[3], "main connection: unexpected RGN_CLAIM frame (opcode 0xf0, w0[31]=1)");
    EXPECT_EQ(fx.logs[4], "main connection: unexpected IRQ_UPDATE frame (opcode 0x41, w0[31]=1)");
    EXPECT_EQ(fx.logs[5], "main connection: unexpected READ frame (opcode 0x01, w0[31]=1)");
    // The bad-size reads are answered with the error bit (the VM waits for
    // them), the good frame normally; the stream went on.
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 3u);
    EXPECT_EQ(o[0].tag(), 2u);
    EXPECT_TRUE(o[0].error());
    EXPECT_EQ(o[1].tag(), 3u);
    EXPECT_TRUE(o[1].error());
    EXPECT_EQ(o[2].tag(), 6u);
    EXPECT_FALSE(o[2].error());
    EXPECT_EQ(d.calls.size(), 1u);
}

TEST(ClientSession, TooLongPoisonsTheStream) {
    std::vector<std::string> logs;
    ClientSession s(SessionOptions{[&](std::string_view m) { logs.emplace_back(m); }, 4, nullptr});
    Frame f = Frame::ping(false);
    f.set_extra_blocks(4);
    EXPECT_EQ(s.receive(Channel::Main, f.bytes()), -EPROTO);
    ASSERT_EQ(logs.size(), 1u);
    EXPECT_EQ(logs[0], "main connection: declared length 320 bytes (w0[15:8]=4) over the limit of 256 bytes");
    EXPECT_EQ(s.receive(Channel::Main, Frame::ping(false).bytes()), -EPROTO);
    EXPECT_TRUE(s.pending(Channel::Main).empty());
    EXPECT_EQ(s.receive(Channel::Dma, Frame::ping(false).bytes()), 0);  // the other stream is fine
}

TEST(ClientSession, TruncatedStreamReportedAtClose) {
    Fixture fx;
    const Frame p = Frame::ping(false);
    fx.s.receive(Channel::Main, std::span<const std::byte>(p.data(), 30));
    fx.s.connection_closed(Channel::Main);
    ASSERT_EQ(fx.logs.size(), 1u);
    EXPECT_EQ(fx.logs[0], "main connection: stream ended inside a frame");
    fx.s.connection_closed(Channel::Dma);  // nothing partial there
    EXPECT_EQ(fx.logs.size(), 1u);
}

TEST(ClientSession, ByteAtATimeGivesTheSameOutput) {
    auto script = [] {
        std::vector<std::byte> v;
        for (unsigned i = 0; i < 30; ++i) {
            Frame f = Frame::mmio_request(static_cast<Op>(1 + i % 6), i % 3, 0x1000 + 8 * i, 1 + i % 16, 0, i);
            if (i % 5 == 0) f.set_extra_blocks(1);
            v.insert(v.end(), f.data(), f.data() + 64);
            if (i % 5 == 0) v.insert(v.end(), 64, std::byte{0x13});
        }
        return v;
    }();
    auto run = [&](std::size_t step) {
        Fixture fx;
        Device d;
        fx.s.claim(0, d);
        fx.s.claim(1, d);
        for (std::size_t off = 0; off < script.size(); off += step)
            fx.s.receive(Channel::Main, std::span<const std::byte>(script.data() + off, std::min(step, script.size() - off)));
        EXPECT_TRUE(fx.logs.empty());
        const auto p = fx.s.pending(Channel::Main);
        return std::vector<std::byte>(p.begin(), p.end());
    };
    const auto whole = run(script.size());
    EXPECT_GT(whole.size(), 64u * 10);
    EXPECT_EQ(run(1), whole);
    EXPECT_EQ(run(13), whole);
}

TEST(ClientSession, RepliesOfOneBatchAreQueuedTogether) {
    Fixture fx;
    Device d;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    std::vector<std::byte> batch;
    for (unsigned i = 0; i < 100; ++i) {
        const Frame f = Frame::mmio_request(Op::Read, 0, 4 * i, 4, 0, i);
        batch.insert(batch.end(), f.data(), f.data() + 64);
    }
    fx.s.receive(Channel::Main, batch);
    const auto p = fx.s.pending(Channel::Main);
    EXPECT_EQ(p.size(), 100u * 64);  // one contiguous span: one send
    fx.s.consume(Channel::Main, 64 * 30);
    EXPECT_EQ(fx.s.pending(Channel::Main).size(), 70u * 64);
    EXPECT_EQ(Frame::from_bytes(fx.s.pending(Channel::Main).data()).tag(), 30u);
}

TEST(ClientSession, MmioOnDmaChannelIsEchoedNotDispatched) {
    Fixture fx;
    Device d;
    fx.s.claim(0, d);
    fx.out(Channel::Main);
    const Frame r = Frame::mmio_request(Op::Read, 0, 0x10, 4, 0, 1);
    fx.feed(Channel::Dma, r);
    EXPECT_TRUE(d.calls.empty());
    const auto o = fx.out(Channel::Dma);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(o[0], r);
}

TEST(ClientSession, HandlerExceptionBecomesBusError) {
    struct Thrower : MmioHandler {
        int read(std::uint64_t, std::size_t, void*, unsigned) override { throw std::runtime_error("boom"); }
        int write(std::uint64_t, std::size_t, const void*, unsigned) override { return 0; }
    } t;
    Fixture fx;
    fx.s.claim(0, t);
    fx.out(Channel::Main);
    fx.feed(Channel::Main, Frame::mmio_request(Op::Read, 0, 0, 4, 0, 1));
    const auto o = fx.out(Channel::Main);
    ASSERT_EQ(o.size(), 1u);
    EXPECT_TRUE(o[0].error());
    ASSERT_EQ(fx.logs.size(), 1u);
    EXPECT_NE(fx.logs[0].find("boom"), std::string::npos);
}

TEST(ClientSession, TapSeesEveryFrame) {
    struct Tap : FrameTap {
        int sent = 0, received = 0;
        void on_frame(Channel, Direction d, std::span<const std::byte> f) override {
            EXPECT_EQ(f.size(), 64u);
            (d == Direction::Sent ? sent : received)++;
        }
    } tap;
    ClientSession s(SessionOptions{{}, kMaxBlocks, &tap});
    Device d;
    s.claim(0, d);
    s.receive(Channel::Main, Frame::mmio_request(Op::Read, 0, 0, 4, 0, 1).bytes());
    s.receive(Channel::Main, Frame::mmio_request(Op::Write, 0, 0, 4, 0, 1).bytes());
    EXPECT_EQ(tap.sent, 2);  // claim + read reply
    EXPECT_EQ(tap.received, 2);
}

// A tap that writes down each call: on_frame() as "S<op>" / "R<op>", a batch
// as "[ R<op> S<op> ... ]", and the batch's times.
namespace {

struct BatchTap : FrameTap {
    std::vector<std::string> calls;
    std::vector<std::chrono::steady_clock::time_point> received_at, sent_at;
    static std::string name(Direction d, std::uint8_t op) { return (d == Direction::Sent ? "S" : "R") + std::string(op_name(op)); }
    void on_frame(Channel, Direction d, std::span<const std::byte> f) override {
        calls.push_back(name(d, Frame::from_bytes(f.data()).opcode()));
    }
    void on_frames(const TapBatch& b) override {
        std::string s = "[";
        for (const TapFrame& f : b.frames) s += " " + name(f.direction, f.frame.opcode());
        calls.push_back(s + " ]");
        received_at.push_back(b.received_at);
        sent_at.push_back(b.sent_at);
    }
};

}  // namespace

// What one receive() brings in and sends in answer reaches the tap in one
// batch, in wire order, with when its frames came in and went out: a handler
// that takes 2 ms puts that much between them (a reply is not recorded at its
// request's time). Frames outside a receive() go one by one.
TEST(ClientSession, TapGetsOneBatchPerReceiveWithTheTimeItTook) {
    struct Slow : Device {
        int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            return Device::read(addr, len, buf, flags);
        }
    } d;
    BatchTap tap;
    ClientSession s(SessionOptions{{}, kMaxBlocks, &tap, &std::chrono::steady_clock::now});
    s.claim(0, d);
    ASSERT_EQ(s.receive(Channel::Main, concat({Frame::mmio_request(Op::Read, 0, 0, 4, 0, 1),
                                               Frame::mmio_request(Op::Write, 0, 4, 4, 0, 2),
                                               Frame::mmio_request(Op::WriteAck, 0, 8, 4, 0, 3)})),
              0);
    s.irq_update(0, 1, true);
    auto op = [](Op o) { return std::string(op_name(static_cast<std::uint8_t>(o))); };
    const std::vector<std::string> want = {"S" + op(Op::Claim),
                                           "[ R" + op(Op::Read) + " S" + op(Op::Read) + " R" + op(Op::Write) + " R" +
                                               op(Op::WriteAck) + " S" + op(Op::WriteAck) + " ]",
                                           "S" + op(Op::IrqUpdate)};
    EXPECT_EQ(tap.calls, want);
    ASSERT_EQ(tap.sent_at.size(), 1u);
    EXPECT_GE(tap.sent_at[0] - tap.received_at[0], std::chrono::milliseconds(2));
}

// With defer_tap, receive() keeps its batch until deliver_tap() (the owner has
// sent the replies), timed as sent when receive() returned (not at the
// delivery); a frame sent before that still comes after the batch.
TEST(ClientSession, DeferredTapBatchWaitsForDeliverTapAndKeepsOrder) {
    BatchTap tap;
    SessionOptions o{{}, kMaxBlocks, &tap, &std::chrono::steady_clock::now};
    o.defer_tap = true;
    ClientSession s(o);
    Device d;
    s.claim(0, d);
    const auto before = std::chrono::steady_clock::now();
    ASSERT_EQ(s.receive(Channel::Main, Frame::mmio_request(Op::Read, 0, 0, 4, 0, 1).bytes()), 0);
    const auto after = std::chrono::steady_clock::now();
    EXPECT_EQ(tap.calls.size(), 1u);  // the claim only
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    s.deliver_tap();
    ASSERT_EQ(tap.calls.size(), 2u);
    ASSERT_EQ(tap.sent_at.size(), 1u);
    EXPECT_LE(before, tap.received_at[0]);
    EXPECT_LE(tap.received_at[0], tap.sent_at[0]);
    EXPECT_LE(tap.sent_at[0], after);
    ASSERT_EQ(s.receive(Channel::Main, Frame::mmio_request(Op::Read, 0, 0, 4, 0, 2).bytes()), 0);
    s.irq_update(0, 1, true);  // before deliver_tap(): the batch goes first
    ASSERT_EQ(tap.calls.size(), 4u);
    EXPECT_EQ(tap.calls[2].front(), '[');
    EXPECT_EQ(tap.calls[3], "S" + std::string(op_name(static_cast<std::uint8_t>(Op::IrqUpdate))));
    s.deliver_tap();
    EXPECT_EQ(tap.calls.size(), 4u);  // nothing left
}

// Without the owner's clock the session reads none: the tap sees each frame
// as it passes (its own clock times them), no batch.
TEST(ClientSession, TapWithoutAClockGetsFramesOneByOne) {
    BatchTap tap;
    ClientSession s(SessionOptions{{}, kMaxBlocks, &tap});
    Device d;
    s.claim(0, d);
    ASSERT_EQ(s.receive(Channel::Main, Frame::mmio_request(Op::Read, 0, 0, 4, 0, 1).bytes()), 0);
    const std::string read = op_name(static_cast<std::uint8_t>(Op::Read));
    const std::vector<std::string> want = {"S" + std::string(op_name(static_cast<std::uint8_t>(Op::Claim))), "R" + read,
                                           "S" + read};
    EXPECT_EQ(tap.calls, want);
}

TEST(ClientSession, ResetForgetsClaimsAndIrqLevels) {
    Fixture fx;
    Device d;
    fx.s.claim(0, d);
    fx.s.irq_update(0, 0, true);
    fx.s.reset();
    EXPECT_FALSE(fx.s.has_pending());
    EXPECT_EQ(fx.s.claim(0, d), 0);  // claimable again
    EXPECT_EQ(fx.s.irq_update(0, 0, true), 0);
    EXPECT_EQ(fx.out(Channel::Main).size(), 2u);  // claim + a fresh IRQ 0 -> 1
}
