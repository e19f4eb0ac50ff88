// The C API (coreio.h) as devices written for the original C library use it,
// over real TCP on 127.0.0.1 against a raw-socket VM in the test (issue 9,
// "drop-in fidelity"): IRQ states other than 0/1, NULL read/write handlers,
// DMA argument rules and packet ids, IRQ edges raised inside a handler; and
// the error codes coreio.h lists for each call.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "coreio.h"
#include "coreio/frame.hpp"
#include "fake_vm.hpp"

using coreio::Frame;
using coreio::Op;
using coreio::test::FakeVm;

namespace {

/// Runs coreio_mainloop() on a thread until the connection ends or stop().
class Loop {
public:
    Loop() : t_([] {
        while (coreio_mainloop(20000) == 0) {
        }
    }) {}
    ~Loop() { stop(); }
    void stop() {
        if (!t_.joinable()) return;
        coreio_disconnect();  // the loop sees -ENOTCONN and ends
        t_.join();
    }

private:
    std::thread t_;
};

/// Connects the default client for one test and disconnects at the end.
struct Session {
    FakeVm vm;
    bool up = coreio_connect(vm.target().c_str()) == 0 && vm.accept_pair();
    ~Session() { coreio_disconnect(); }
};

long status_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::string key = std::string(field) + ":";
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
    return -1;
}

}  // namespace

TEST(CApiFidelity, AnyNonZeroIrqStateIsActive) {
    Session s;
    ASSERT_TRUE(s.up);
    const unsigned status = 0x44, mask = 0x40;
    EXPECT_EQ(coreio_irq_update(0, 2, status & mask), 0);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(s.vm.main, f));
    EXPECT_EQ(f, Frame::irq_update(0, 2, 1));
    EXPECT_EQ(coreio_irq_update(0, 2, 0x80000000u), 0);  // still active: no change, nothing sent
    EXPECT_EQ(coreio_irq_update(0, 2, 0), 0);
    ASSERT_TRUE(FakeVm::recv(s.vm.main, f));
    EXPECT_EQ(f, Frame::irq_update(0, 2, 0));
    EXPECT_TRUE(FakeVm::quiet(s.vm.main, 50));
}

TEST(CApiFidelity, NullReadOrWriteAnswersAsAnUnclaimedRange) {
    Session s;
    ASSERT_TRUE(s.up);
    coreio_func_t func{};  // read, write, readp, writep all NULL
    ASSERT_EQ(coreio_register(1, &func, nullptr), 0);
    Loop loop;
    Frame f;
    ASSERT_TRUE(FakeVm::recv(s.vm.main, f));
    ASSERT_EQ(f.op(), Op::Claim);
    const Frame reqs[] = {Frame::mmio_request(Op::Read, 1, 0x1000, 4, 0, 1),
                          Frame::mmio_request(Op::WriteAck, 1, 0x1000, 8, 0, 2),
                          Frame::mmio_request(Op::ReadPair, 1, 0x1000, 8, 0, 3),
                          Frame::mmio_request(Op::WriteAckPair, 1, 0x1000, 4, 0, 4)};
    for (const Frame& r : reqs) {
        Frame req = r;
        if (!coreio::is_read_op(req.op())) std::memset(req.payload(), 0x3C, 16);
        ASSERT_TRUE(FakeVm::send(s.vm.main, req));
        ASSERT_TRUE(FakeVm::recv(s.vm.main, f)) << describe(req);
        EXPECT_EQ(f, req) << "reply " << describe(f);  // data echoed, no error bit
    }
    loop.stop();
}

TEST(CApiFidelity, OnlyTheMissingHandlerIsTreatedAsUnclaimed) {
    Session s;
    ASSERT_TRUE(s.up);
    coreio_func_t func{};
    func.write = [](void*, uint64_t, size_t, void*, unsigned) { return 1; };  // a bus error
    ASSERT_EQ(coreio_register(0, &func, nullptr), 0);
    Loop loop;
    Frame f;
    ASSERT_TRUE(FakeVm::recv(s.vm.main, f));
    const Frame rd = Frame::mmio_request(Op::Read, 0, 0x10, 4, 0, 1);
    ASSERT_TRUE(FakeVm::send(s.vm.main, rd));
    ASSERT_TRUE(FakeVm::recv(s.vm.main, f));
    EXPECT_EQ(f, rd);
    const Frame wr = Frame::mmio_request(Op::WriteAck, 0, 0x10, 4, 0, 2);
    ASSERT_TRUE(FakeVm::send(s.vm.main, wr));
    ASSERT_TRUE(FakeVm::recv(s.vm.main, f));
    EXPECT_TRUE(f.error());
    loop.stop();
}

TEST(CApiFidelity, DmaMidAboveSevenIsEinvalAndSendsNothing) {
    Session s;
    ASSERT_TRUE(s.up);
    unsigned char buf[8] = {};
    auto cpl = [](void*, int) { ADD_FAILURE() << "completion of a rejected DMA"; };
    EXPECT_EQ(coreio_dma_read(8, 0, 0x1000, sizeof buf, buf, 0, cpl, nullptr), -EINVAL);
    EXPECT_EQ(coreio_dma_write(200, 0, 0x1000, sizeof buf, buf, 0, cpl, nullptr), -EINVAL);
    EXPECT_EQ(coreio_dma_read(8, 0, 0x1000, sizeof buf, buf, 0, nullptr, nullptr), -EINVAL);
    EXPECT_TRUE(FakeVm::quiet(s.vm.dma, 100));
}

TEST(CApiFidelity, DmaFlagsWithUndefinedBitsAreMasked) {
    Session s;
    ASSERT_TRUE(s.up);
    unsigned char buf[4] = {};
    int result = 1;
    ASSERT_EQ(coreio_dma_read(0, 0, 0x1000, sizeof buf, buf, 0xff | COREIO_FLAGS_PRIV,
                              [](void* p, int r) { *static_cast<int*>(p) = r; }, &result),
              0);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(s.vm.dma, f));
    EXPECT_EQ(f.flags(), unsigned{COREIO_FLAGS_IFETCH | COREIO_FLAGS_PRIV | COREIO_FLAGS_SECURE});
    EXPECT_EQ(f.sid(), 0u);
    EXPECT_EQ(f.size(), 4u);
}

TEST(CApiFidelity, DmaPacketIdsStayWithin0x3ff) {
    Session s;
    ASSERT_TRUE(s.up);
    std::uint32_t max_tag = 0;
    long chunks = 0;
    std::thread server([&] {  // answers every chunk until the client goes away
        Frame f;
        while (FakeVm::recv(s.vm.dma, f, 2000)) {
            max_tag = std::max(max_tag, f.tag());
            ++chunks;
            if (!FakeVm::send(s.vm.dma, f)) return;
        }
    });
    std::vector<unsigned char> buf(64 * 1024);
    for (int i = 0; i < 5; ++i)  // 5 transfers of 2048 chunks
        EXPECT_EQ(coreio_dma_read(0, 0, 0x100000, buf.size(), buf.data(), 0, nullptr, nullptr), 0);
    coreio_disconnect();
    server.join();  // joined: its counters are ours to read
    EXPECT_EQ(chunks, 5 * 2048);
    EXPECT_LE(max_tag, 0x3ffu);
}

// Issue 9: 2 M IRQ level changes from one MMIO write handler: every edge reaches
// the VM in order, and the device's memory stays flat (it used to queue them all).
TEST(CApiFidelity, IrqEdgesRaisedInsideAHandlerAreBoundedAndAllDelivered) {
    constexpr long kToggles = 2'000'000;
    Session s;
    ASSERT_TRUE(s.up);
    coreio_func_t func{};
    func.write = [](void*, uint64_t, size_t, void*, unsigned) {
        for (long i = 0; i < kToggles; ++i)
            if (coreio_irq_update(0, 5, static_cast<unsigned>((i & 1) == 0)) != 0) return 1;
        return 0;
    };
    ASSERT_EQ(coreio_register(0, &func, nullptr), 0);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(s.vm.main, f));
    ASSERT_EQ(f.op(), Op::Claim);

    // Peak RSS from here on: clear_refs "5" resets VmHWM to the current RSS.
    {
        std::ofstream clear("/proc/self/clear_refs");
        clear << "5";
        ASSERT_TRUE(clear.good()) << "cannot reset the peak RSS counter";
    }
    const long rss_before = status_kib("VmRSS");
    ASSERT_GT(rss_before, 0);
    Loop loop;
    const Frame req = Frame::mmio_request(Op::WriteAck, 0, 0x20, 4, 0, 0xfeed);
    ASSERT_TRUE(FakeVm::send(s.vm.main, req));

    long edges = 0;
    bool in_order = true;
    std::vector<std::byte> in(64 * 1024);
    std::size_t have = 0;
    bool replied = false;
    while (!replied) {
        pollfd p{s.vm.main, POLLIN, 0};
        ASSERT_GT(::poll(&p, 1, FakeVm::kTimeoutMs), 0) << "stalled after " << edges << " edges";
        const ssize_t n = ::recv(s.vm.main, in.data() + have, in.size() - have, 0);
        ASSERT_GT(n, 0);
        have += static_cast<std::size_t>(n);
        std::size_t off = 0;
        for (; off + 64 <= have; off += 64) {
            const Frame g = Frame::from_bytes(in.data() + off);
            if (g.op() == Op::IrqUpdate) {
                in_order = in_order && g.irq_line() == 5 && g.irq_level() == static_cast<unsigned>((edges & 1) == 0);
                ++edges;
            } else {
                ASSERT_EQ(g, req);
                replied = true;
            }
        }
        std::memmove(in.data(), in.data() + off, have - off);
        have -= off;
    }
    const long peak = status_kib("VmHWM");
    loop.stop();
    EXPECT_EQ(edges, kToggles);
    EXPECT_TRUE(in_order);
    EXPECT_LT(peak - rss_before, 8 * 1024) << "peak RSS grew by " << (peak - rss_before) << " KiB";
}

// ---- the error codes coreio.h documents, call by call ------------------------

TEST(CApiErrors, ConnectTwiceIsEisconnAndARefusedPortIsEconnrefused) {
    Session s;
    ASSERT_TRUE(s.up);
    EXPECT_EQ(coreio_connect(s.vm.target().c_str()), -EISCONN);
    coreio_disconnect();
    // A port bound but not listening on 127.0.0.1 refuses connections.
    const int held = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(held, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(held, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string refused = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    EXPECT_EQ(coreio_connect(refused.c_str()), -ECONNREFUSED);
    ::close(held);
    EXPECT_EQ(coreio_connect("127.0.0.1:"), -EINVAL);
    EXPECT_EQ(coreio_connect("[::1"), -EINVAL);
}

TEST(CApiErrors, ArgumentErrorsAreEinval) {
    Session s;
    ASSERT_TRUE(s.up);
    coreio_func_t func{};
    EXPECT_EQ(coreio_register(0, nullptr, nullptr), -EINVAL);
    EXPECT_EQ(coreio_register(8, &func, nullptr), -EINVAL);
    EXPECT_EQ(coreio_register(0, &func, nullptr), 0);
    EXPECT_EQ(coreio_register(0, &func, nullptr), -EBUSY);
    EXPECT_EQ(coreio_irq_update(8, 0, 1), -EINVAL);
    EXPECT_EQ(coreio_irq_update(0, 8, 1), -EINVAL);
    unsigned char b[4];
    EXPECT_EQ(coreio_dma_read(0, 0, 0, 4, nullptr, 0, nullptr, nullptr), -EINVAL);
    EXPECT_EQ(coreio_dma_write(0, 0, ~0ull - 1, 4, b, 0, nullptr, nullptr), -EINVAL);  // wraps
    EXPECT_EQ(coreio_dma_write(0, 16, 0, 4, b, 0, nullptr, nullptr), -EINVAL);
    EXPECT_TRUE(FakeVm::quiet(s.vm.dma, 50));
}

TEST(CApiErrors, AfterTheVmClosesEveryCallSaysWhy) {
    Session s;
    ASSERT_TRUE(s.up);
    unsigned char b[8];
    int cpl_result = 1;
    ASSERT_EQ(coreio_dma_read(0, 0, 0x1000, sizeof b, b, 0, [](void* p, int r) { *static_cast<int*>(p) = r; },
                              &cpl_result),
              0);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(s.vm.dma, f));  // the request is out; the VM goes away without answering
    ::close(s.vm.main);
    ::close(s.vm.dma);
    s.vm.main = s.vm.dma = -1;
    int rc = 0;
    for (int i = 0; i < 500 && rc == 0; ++i) rc = coreio_mainloop(10000);
    EXPECT_EQ(rc, -ECONNRESET);
    EXPECT_EQ(cpl_result, -ECONNRESET);  // the pending DMA completed with the reason
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    EXPECT_EQ(coreio_preparefds(0, &r, &w), -ECONNRESET);
    EXPECT_EQ(coreio_processfds(&r, &w), -ECONNRESET);
    EXPECT_EQ(coreio_irq_update(0, 0, 1), -ECONNRESET);
    EXPECT_EQ(coreio_dma_read(0, 0, 0x1000, sizeof b, b, 0, nullptr, nullptr), -ECONNRESET);
    coreio_func_t func{};
    EXPECT_EQ(coreio_register(0, &func, nullptr), -ENOTCONN);
    coreio_disconnect();
    EXPECT_EQ(coreio_preparefds(0, &r, &w), -ENOTCONN);
    EXPECT_EQ(coreio_mainloop(1000), -ENOTCONN);
    EXPECT_EQ(coreio_irq_update(0, 0, 1), -ENOTCONN);
}

TEST(CApiErrors, BlockingDmaEndedByTheVmIsEconnreset) {
    Session s;
    ASSERT_TRUE(s.up);
    std::thread vm([&] {
        Frame f;
        if (FakeVm::recv(s.vm.dma, f)) ::shutdown(s.vm.dma, SHUT_RDWR);  // closes mid-transfer
    });
    unsigned char b[64];
    EXPECT_EQ(coreio_dma_read(0, 0, 0x1000, sizeof b, b, 0, nullptr, nullptr), -ECONNRESET);
    vm.join();
}
