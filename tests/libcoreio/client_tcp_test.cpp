// coreio::Client over real TCP (127.0.0.1, ephemeral ports) against a tiny
// in-test fake VM: connect order, MMIO through the loops, blocking DMA inside
// an MMIO write callback, VM closing mid-DMA, timeout, reconnect, Asio driver.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "coreio.h"
#include "coreio/asio_driver.hpp"
#include "coreio/client.hpp"
#include "fake_vm.hpp"

using namespace coreio;
using namespace std::chrono_literals;
using coreio::test::FakeVm;

namespace {

/// Answers DMA chunk requests from a memory image until the connection closes.
void serve_dma(int fd, std::vector<std::uint8_t>& mem, std::atomic<bool>& stop) {
    std::vector<std::byte> in(1 << 18), out;
    std::size_t have = 0;
    while (!stop) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const ssize_t n = ::recv(fd, in.data() + have, in.size() - have, 0);
        if (n <= 0) return;
        have += static_cast<std::size_t>(n);
        out.clear();
        std::size_t off = 0;
        for (; off + 64 <= have; off += 64) {
            Frame f = Frame::from_bytes(in.data() + off);
            if (f.address() + f.size() > mem.size())
                f.set_error(true);
            else if (f.op() == Op::Read)
                std::memcpy(f.payload(), &mem[f.address()], f.size());
            else
                std::memcpy(&mem[f.address()], f.payload(), f.size());
            out.insert(out.end(), f.data(), f.data() + 64);
        }
        std::memmove(in.data(), in.data() + off, have - off);
        have -= off;
        if (!out.empty() && ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return;
    }
}

class Regs : public MmioHandler {
public:
    std::atomic<int> reads{0}, writes{0};
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned) override {
        ++reads;
        std::memset(buf, static_cast<int>(addr & 0xff), len);
        return 0;
    }
    int write(std::uint64_t, std::size_t, const void*, unsigned) override {
        ++writes;
        return 0;
    }
};

/// Runs the client's poll loop on a thread until stopped or an error.
struct LoopThread {
    explicit LoopThread(Client& c) : t([this, &c] {
        while (!stop) {
            const int rc = c.run_for(20000);
            if (rc != 0) {
                result = rc;
                return;
            }
        }
    }) {}
    ~LoopThread() {
        stop = true;
        t.join();
    }
    std::atomic<bool> stop{false};
    std::atomic<int> result{0};
    std::thread t;
};

/// serve_dma() on vm's DMA connection, on its own thread until join() or
/// destruction (so a failed ASSERT leaves no joinable thread behind).
struct DmaServer {
    DmaServer(int dma_fd, std::vector<std::uint8_t>& mem) : t([this, dma_fd, &mem] { serve_dma(dma_fd, mem, stop); }) {}
    ~DmaServer() { join(); }
    void join() {
        stop = true;
        if (t.joinable()) t.join();
    }
    std::atomic<bool> stop{false};
    std::thread t;
};

std::vector<std::string> logs;
ClientOptions quiet_options() {
    ClientOptions o;
    o.log = [](std::string_view m) { logs.emplace_back(m); };
    return o;
}

/// Connects `c` to `vm` and accepts both connections there.
bool connect_to(Client& c, FakeVm& vm) { return c.connect(vm.target()) == 0 && vm.accept_pair(); }

/// Registers `h` for range `rid`; true when the VM received the claim.
bool claim(Client& c, FakeVm& vm, unsigned rid, MmioHandler& h) {
    Frame f;
    return c.register_range(rid, h) == 0 && FakeVm::recv(vm.main, f) && f == Frame::claim(rid);
}

}  // namespace

TEST(ClientTcp, BadTargetsAndNotConnected) {
    Client c(quiet_options());
    EXPECT_EQ(c.connect(""), -EINVAL);
    EXPECT_EQ(c.connect("127.0.0.1:"), -EINVAL);
    EXPECT_EQ(c.connect("127.0.0.1:99999"), -EINVAL);
    EXPECT_EQ(c.connect("127.0.0.1:12x"), -EINVAL);
    Regs r;
    EXPECT_EQ(c.register_range(0, r), -ENOTCONN);
    EXPECT_EQ(c.irq_update(0, 0, true), -ENOTCONN);
    std::byte b[4];
    EXPECT_EQ(c.dma_read(0, 0, 0, b, 0), -ENOTCONN);
    fd_set rs;
    FD_ZERO(&rs);
    EXPECT_EQ(c.prepare_fds(0, &rs, nullptr), -ENOTCONN);
    EXPECT_FALSE(c.connected());
}

TEST(ClientTcp, ConnectsMainThenDmaAndClaimsOnMain) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    Regs r;
    ASSERT_EQ(c.register_range(2, r), 0);
    EXPECT_EQ(c.register_range(2, r), -EBUSY);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(vm.main, f));  // sent at once, on the first connection
    EXPECT_EQ(f, Frame::claim(2));
    EXPECT_TRUE(FakeVm::quiet(vm.dma, 50));
    // IRQ from outside any loop goes out at once, only on change.
    EXPECT_EQ(c.irq_update(2, 1, true), 0);
    EXPECT_EQ(c.irq_update(2, 1, true), 0);
    EXPECT_EQ(c.irq_update(2, 1, false), 0);
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f, Frame::irq_update(2, 1, 1));
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f, Frame::irq_update(2, 1, 0));
    EXPECT_TRUE(FakeVm::quiet(vm.main, 50));
}

TEST(ClientTcp, SelectLoopAnswersMmioAndPing) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    Regs r;
    ASSERT_TRUE(claim(c, vm, 0, r));
    Frame f;
    std::vector<std::byte> batch;
    for (unsigned i = 0; i < 50; ++i) {
        const Frame q = Frame::mmio_request(Op::Read, 0, 0x1000 + i, 4, 0, i);
        batch.insert(batch.end(), q.data(), q.data() + 64);
    }
    ASSERT_TRUE(FakeVm::send_bytes(vm.main, batch));
    ASSERT_TRUE(FakeVm::send(vm.dma, Frame::ping(false)));
    unsigned got = 0;
    bool ping = false;
    for (int iter = 0; iter < 200 && (got < 50 || !ping); ++iter) {
        fd_set rs, ws;
        FD_ZERO(&rs);
        FD_ZERO(&ws);
        const int n = c.prepare_fds(0, &rs, &ws);
        ASSERT_GT(n, 0);
        timeval tv{0, 50000};
        ::select(n, &rs, &ws, nullptr, &tv);
        ASSERT_EQ(c.process_fds(&rs, &ws), 0);
        while (got < 50 && !FakeVm::quiet(vm.main, 0) && FakeVm::recv(vm.main, f)) {
            EXPECT_EQ(f.tag(), got);
            EXPECT_EQ(f.payload()[0], std::byte(static_cast<unsigned char>(got)));
            ++got;
        }
        if (!ping && !FakeVm::quiet(vm.dma, 0) && FakeVm::recv(vm.dma, f)) ping = f.op() == Op::Ping;
    }
    EXPECT_EQ(got, 50u);
    EXPECT_TRUE(ping);
    EXPECT_EQ(r.reads, 50);
}

TEST(ClientTcp, BlockingDmaInsideMmioWriteDoesNotReenterHandlers) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    struct Dev : MmioHandler {
        Client* c = nullptr;
        bool inside = false;
        bool reentered = false;
        int dma_result = 1;
        std::uint8_t buf[100] = {};
        int read(std::uint64_t, std::size_t len, void* b, unsigned) override {
            reentered |= inside;
            std::memset(b, 0x77, len);
            return 0;
        }
        int write(std::uint64_t, std::size_t, const void*, unsigned) override {
            reentered |= inside;
            inside = true;
            dma_result = c->dma_read(0, 0, 0x40, std::as_writable_bytes(std::span(buf)), 0);
            inside = false;
            return 0;
        }
    } dev;
    dev.c = &c;
    ASSERT_EQ(c.register_range(1, dev), 0);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    LoopThread loop(c);
    ASSERT_TRUE(FakeVm::send(vm.main, Frame::mmio_request(Op::WriteAck, 1, 0x10, 4, 0, 1)));
    // The handler's DMA arrives; meanwhile an MMIO read must wait.
    std::vector<Frame> reqs;
    for (int i = 0; i < 4; ++i) {  // 0x40..0xa4: 32 + 32 + 32 + 4
        ASSERT_TRUE(FakeVm::recv(vm.dma, f));
        reqs.push_back(f);
    }
    ASSERT_TRUE(FakeVm::send(vm.main, Frame::mmio_request(Op::Read, 1, 0x20, 4, 0, 2)));
    EXPECT_TRUE(FakeVm::quiet(vm.main, 100));  // neither the write's reply nor the read yet
    for (Frame r : reqs) {
        for (unsigned i = 0; i < r.size(); ++i) r.payload()[i] = std::byte(static_cast<unsigned char>(r.address() + i));
        ASSERT_TRUE(FakeVm::send(vm.dma, r));
    }
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f.tag(), 1u);
    EXPECT_EQ(f.op(), Op::WriteAck);
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f.tag(), 2u);
    EXPECT_EQ(f.payload()[0], std::byte{0x77});
    EXPECT_FALSE(dev.reentered);
    EXPECT_EQ(dev.dma_result, 0);
    for (unsigned i = 0; i < 100; ++i) EXPECT_EQ(dev.buf[i], static_cast<std::uint8_t>(0x40 + i));
}

// disconnect() then connect() from another thread while a handler waits in a
// blocking DMA: the handler's DMA fails, and neither its reply nor the rest of
// the batch it came in reaches the new connection, which works normally.
TEST(ClientTcp, ReconnectDuringBlockingDmaKeepsTheOldBatchOffTheNewConnection) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    struct Dev : MmioHandler {
        Client* c = nullptr;
        std::atomic<int> dma_result{1}, reads{0}, writes{0};
        std::byte buf[8] = {};
        int read(std::uint64_t, std::size_t len, void* b, unsigned) override {
            ++reads;
            std::memset(b, 0x77, len);
            return 0;
        }
        int write(std::uint64_t, std::size_t, const void*, unsigned) override {
            ++writes;
            dma_result = c->dma_read(0, 0, 0x40, buf, 0);
            return 0;
        }
    } dev;
    dev.c = &c;
    ASSERT_EQ(c.register_range(1, dev), 0);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(vm.main, f));  // the claim
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        while (!stop)
            if (c.run_for(20000) != 0) std::this_thread::sleep_for(1ms);
    });
    // One batch: a write whose handler blocks in DMA, then a read.
    std::vector<std::byte> batch;
    for (const Frame& r : {Frame::mmio_request(Op::WriteAck, 1, 0x10, 4, 0, 1),
                           Frame::mmio_request(Op::Read, 1, 0x20, 4, 0, 2)})
        batch.insert(batch.end(), r.data(), r.data() + 64);
    ASSERT_TRUE(FakeVm::send_bytes(vm.main, batch));
    ASSERT_TRUE(FakeVm::recv(vm.dma, f));  // the handler now waits for this DMA
    const int old_main = vm.main, old_dma = vm.dma;
    vm.main = vm.dma = -1;
    c.disconnect();
    ASSERT_TRUE(connect_to(c, vm));
    for (int i = 0; i < 500 && dev.dma_result == 1; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(dev.dma_result, -ECONNRESET);
    EXPECT_TRUE(FakeVm::quiet(vm.main, 200));  // no reply to tag 1, no echo of tag 2
    EXPECT_EQ(dev.writes, 1);
    EXPECT_EQ(dev.reads, 0);
    // The new connection works: a claim and a read go through.
    Regs r;
    ASSERT_EQ(c.register_range(0, r), 0);
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f, Frame::claim(0));
    ASSERT_TRUE(FakeVm::send(vm.main, Frame::mmio_request(Op::Read, 0, 0x33, 4, 0, 3)));
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f.tag(), 3u);
    EXPECT_EQ(f.payload()[0], std::byte{0x33});
    stop = true;
    loop.join();
    ::close(old_main);
    ::close(old_dma);
}

TEST(ClientTcp, VmClosingMidDmaGivesEconnreset) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    std::vector<std::byte> buf(1 << 16);
    int async_result = 1;
    std::vector<std::byte> buf2(100);
    ASSERT_EQ(c.dma_read(0, 0, 0, buf2, 0, [&](int r) { async_result = r; }), 0);
    auto blocking = std::async(std::launch::async, [&] { return c.dma_read(0, 0, 0x1000, buf, 0); });
    Frame f;
    ASSERT_TRUE(FakeVm::recv(vm.dma, f));  // requests are flowing
    vm.close_conns();
    ASSERT_EQ(blocking.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(blocking.get(), -ECONNRESET);
    // The loop sees the loss too (the blocking call may have seen it first).
    EXPECT_EQ(c.run_for(1000000), -ECONNRESET);
    EXPECT_EQ(async_result, -ECONNRESET);
    EXPECT_FALSE(c.connected());
    EXPECT_EQ(c.irq_update(0, 0, true), -ECONNRESET);
}

TEST(ClientTcp, BlockingDmaTimesOut) {
    FakeVm vm;
    ClientOptions o = quiet_options();
    o.dma_timeout = 100ms;
    Client c(o);
    ASSERT_TRUE(connect_to(c, vm));
    std::vector<std::byte> buf(64, std::byte{0x5a});
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(c.dma_read(0, 0, 0, buf, 0), -ETIMEDOUT);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
    // A late reply is dropped without touching the buffer.
    Frame f;
    ASSERT_TRUE(FakeVm::recv(vm.dma, f));
    f.fill_payload(0);
    ASSERT_TRUE(FakeVm::send(vm.dma, f));
    EXPECT_EQ(c.run_for(50000), 0);
    EXPECT_EQ(buf, std::vector<std::byte>(64, std::byte{0x5a}));
}

TEST(ClientTcp, DisconnectConnectRegisterAgain) {
    FakeVm vm;
    Client c(quiet_options());
    Regs r;
    ASSERT_TRUE(connect_to(c, vm));
    ASSERT_EQ(c.register_range(3, r), 0);
    c.disconnect();
    EXPECT_FALSE(c.connected());
    vm.close_conns();
    ASSERT_TRUE(connect_to(c, vm));
    EXPECT_EQ(c.register_range(3, r), 0);
    Frame f;
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f, Frame::claim(3));
}

TEST(ClientTcp, LargeBlockingDmaReadAndWrite) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    std::vector<std::uint8_t> mem(4 << 20);
    for (std::size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<std::uint8_t>(i * 13 + (i >> 12));
    DmaServer server(vm.dma, mem);
    std::vector<std::uint8_t> buf((2 << 20) + 7);
    EXPECT_EQ(c.dma_read(0, 0, 5, std::as_writable_bytes(std::span(buf)), 0), 0);
    EXPECT_EQ(0, std::memcmp(buf.data(), &mem[5], buf.size()));
    for (auto& b : buf) b = static_cast<std::uint8_t>(~b);
    EXPECT_EQ(c.dma_write(0, 0, 1 << 20, std::as_bytes(std::span(buf)), 0), 0);
    EXPECT_EQ(0, std::memcmp(buf.data(), &mem[1 << 20], buf.size()));
    std::vector<std::byte> past(64);
    EXPECT_EQ(c.dma_read(0, 0, mem.size() - 32, past, 0), -EFAULT);
}

TEST(ClientTcp, DmaFromAnotherThreadWhileLoopRuns) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    std::vector<std::uint8_t> mem(1 << 20, 0x3c);
    DmaServer server(vm.dma, mem);
    {
        LoopThread loop(c);
        std::vector<std::thread> ts;
        std::atomic<int> ok{0};
        for (int t = 0; t < 3; ++t)
            ts.emplace_back([&, t] {
                for (int i = 0; i < 20; ++i) {
                    std::vector<std::byte> b(static_cast<std::size_t>(1000 + t * 100 + i));
                    if (c.dma_read(0, 0, static_cast<std::uint64_t>(t) * 4096, b, 0) == 0 && b[0] == std::byte{0x3c}) ++ok;
                }
            });
        for (auto& t : ts) t.join();
        EXPECT_EQ(ok, 60);
    }
}

// While a blocking DMA waits, its thread alone reads the DMA socket (the loop
// stops watching it); afterwards the loop must read it again, or an
// asynchronous transfer would never complete.
TEST(ClientTcp, LoopCompletesAsyncDmaBeforeDuringAndAfterABlockingOne) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    std::vector<std::uint8_t> mem(1 << 20);
    for (std::size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<std::uint8_t>(i * 7 + 1);
    DmaServer server(vm.dma, mem);
    {
        LoopThread loop(c);
        std::atomic<int> before{1}, after{1};
        std::vector<std::byte> a(4000), b(200000), d(3000);
        ASSERT_EQ(c.dma_read(0, 0, 100, a, 0, [&](int r) { before = r; }), 0);
        EXPECT_EQ(c.dma_read(0, 0, 5000, b, 0), 0);
        EXPECT_EQ(0, std::memcmp(b.data(), &mem[5000], b.size()));
        ASSERT_EQ(c.dma_read(0, 0, 9000, d, 0, [&](int r) { after = r; }), 0);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while ((before == 1 || after == 1) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        EXPECT_EQ(before, 0);
        EXPECT_EQ(after, 0);
        EXPECT_EQ(0, std::memcmp(a.data(), &mem[100], a.size()));
        EXPECT_EQ(0, std::memcmp(d.data(), &mem[9000], d.size()));
        EXPECT_EQ(loop.result, 0);
    }
}

// run_for() waits for main's input in one io_uring recv where it can
// (COREIO_IO_URING=0, the "epoll_loop:" run of these tests, keeps it on epoll).
// Everything else it waits for must still wake it at once.

/// run_for(-1) on its own thread; its result once it returns.
struct ForeverLoop {
    explicit ForeverLoop(Client& c) : client(c), t([this] {
        tid = std::this_thread::get_id();
        started = true;
        result = client.run_for(-1);
        done = true;
    }) {
        while (!started) std::this_thread::sleep_for(1ms);
    }
    // A test that failed before ending the loop ends it here, rather than
    // hanging until ctest's timeout.
    ~ForeverLoop() {
        if (!done) client.disconnect();
        t.join();
    }
    bool ended_within(std::chrono::milliseconds limit) const {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        return done;
    }
    Client& client;
    std::atomic<bool> started{false}, done{false};
    std::atomic<int> result{1};
    std::thread::id tid;
    std::thread t;
};

TEST(ClientTcp, RunForAnswersPingsOnBothConnectionsAndMmio) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    Regs r;
    ASSERT_TRUE(claim(c, vm, 0, r));
    LoopThread loop(c);
    Frame f;
    for (int i = 0; i < 3; ++i) {  // the DMA connection's ping arrives while the loop waits for main
        ASSERT_TRUE(FakeVm::send(vm.dma, Frame::ping(false)));
        ASSERT_TRUE(FakeVm::recv(vm.dma, f, 5000));
        EXPECT_EQ(f.op(), Op::Ping);
        ASSERT_TRUE(FakeVm::send(vm.main, Frame::ping(false)));
        ASSERT_TRUE(FakeVm::recv(vm.main, f, 5000));
        EXPECT_EQ(f.op(), Op::Ping);
        ASSERT_TRUE(FakeVm::send(vm.main, Frame::mmio_request(Op::Read, 0, 0x2000 + i, 4, 0, 7)));
        ASSERT_TRUE(FakeVm::recv(vm.main, f, 5000));
        EXPECT_EQ(f.tag(), 7u);
        EXPECT_EQ(f.payload()[0], std::byte(static_cast<unsigned char>(i)));
    }
    EXPECT_EQ(loop.result, 0);
}

// run_for(-1) never wakes by itself: an asynchronous DMA started on another
// thread must wake it (its completion runs on the loop's thread), and so must
// disconnect(), which also really closes the sockets.
TEST(ClientTcp, RunForeverIsWokenByAnotherThreadsDmaAndDisconnect) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    std::vector<std::uint8_t> mem(1 << 16, 0x5a);
    DmaServer server(vm.dma, mem);
    {
        ForeverLoop loop(c);
        std::this_thread::sleep_for(20ms);  // the loop is asleep by now
        for (int i = 0; i < 3; ++i) {
            std::vector<std::byte> b(100);
            std::atomic<int> result{1};
            std::atomic<bool> on_loop{false};
            ASSERT_EQ(c.dma_read(0, 0, 64, b, 0,
                                 [&](int rc) {
                                     on_loop = std::this_thread::get_id() == loop.tid;
                                     result = rc;
                                 }),
                      0);
            const auto deadline = std::chrono::steady_clock::now() + 5s;
            while (result == 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
            EXPECT_EQ(result, 0);
            EXPECT_TRUE(on_loop);
            EXPECT_EQ(b[99], std::byte{0x5a});
        }
        EXPECT_TRUE(FakeVm::send(vm.main, Frame::ping(false)));  // input waiting when it ends
        c.disconnect();
        ASSERT_TRUE(loop.ended_within(5s));
        EXPECT_EQ(loop.result, -ENOTCONN);
    }
    server.join();
    std::byte rest[256];
    ssize_t n = 1;
    for (int i = 0; i < 100 && n > 0; ++i) {  // the ping's echo, if sent, then the end
        pollfd p{vm.main, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) break;
        n = ::recv(vm.main, rest, sizeof rest, MSG_DONTWAIT);
    }
    EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << "main is closed at the VM's end";
}

// Short run_for() calls, each cancelling its pending recv at the end: requests
// that arrive just then are answered once, in order, none lost.
TEST(ClientTcp, BackToBackRunForCallsLoseNoInput) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    Regs r;
    ASSERT_TRUE(claim(c, vm, 0, r));
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        while (!stop && c.run_for(1000) == 0) {
        }
    });
    constexpr unsigned kReads = 3000;
    std::thread vm_side([&] {
        for (unsigned i = 0; i < kReads; i += 10) {
            std::vector<std::byte> batch;
            for (unsigned k = i; k < i + 10; ++k) {
                const Frame q = Frame::mmio_request(Op::Read, 0, 0x1000 + k, 4, 0, k);
                batch.insert(batch.end(), q.data(), q.data() + 64);
            }
            if (!FakeVm::send_bytes(vm.main, batch)) return;
            if (i % 200 == 0) std::this_thread::sleep_for(1ms);  // some arrive as a run_for ends
        }
    });
    unsigned got = 0;
    Frame f;
    while (got < kReads && FakeVm::recv(vm.main, f, 5000)) {
        if (f.tag() != got) break;
        ++got;
    }
    vm_side.join();
    stop = true;
    loop.join();
    EXPECT_EQ(got, kReads);
    EXPECT_EQ(r.reads, static_cast<int>(kReads));
}

TEST(ClientTcp, AsioDriverAnswersMmioAndReportsClose) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    Regs r;
    ASSERT_EQ(c.register_range(0, r), 0);
    asio::io_context io;
    std::promise<int> closed;
    AsioDriver driver(io, c, [&](int rc) { closed.set_value(rc); });
    auto work = asio::make_work_guard(io);
    std::thread t([&] { io.run(); });
    Frame f;
    ASSERT_TRUE(FakeVm::recv(vm.main, f));  // the claim
    ASSERT_TRUE(FakeVm::send(vm.main, Frame::mmio_request(Op::Read, 0, 0x42, 8, 0, 9)));
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f.tag(), 9u);
    EXPECT_EQ(f.payload()[7], std::byte{0x42});
    // IRQ from another thread while Asio runs: sent at once.
    EXPECT_EQ(c.irq_update(0, 2, true), 0);
    ASSERT_TRUE(FakeVm::recv(vm.main, f));
    EXPECT_EQ(f, Frame::irq_update(0, 2, 1));
    vm.close_conns();
    auto fut = closed.get_future();
    ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(fut.get(), -ECONNRESET);
    work.reset();
    // The driver stopped waiting after the close, so run() returns by itself.
    for (int i = 0; i < 500 && !io.stopped(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(io.stopped());
    io.stop();
    t.join();
    c.disconnect();
}

// More input than one read takes (the receive buffer is 256 KiB): Asio watches
// the event fd edge-triggered, so the driver must come back for the rest by itself.
TEST(ClientTcp, AsioDriverDrainsABurstLargerThanOneRead) {
    FakeVm vm;
    Client c(quiet_options());
    ASSERT_TRUE(connect_to(c, vm));
    Regs r;
    ASSERT_TRUE(claim(c, vm, 0, r));
    Frame f;
    asio::io_context io;
    AsioDriver driver(io, c);
    auto work = asio::make_work_guard(io);
    std::thread t([&] { io.run(); });
    constexpr int kRequests = 6000;  // 384 000 bytes
    std::vector<std::byte> burst;
    for (int i = 0; i < kRequests; ++i) {
        const Frame q = Frame::mmio_request(Op::Read, 0, 0x100 + (i & 0xff), 1, 0, static_cast<std::uint32_t>(i));
        burst.insert(burst.end(), q.data(), q.data() + 64);
    }
    std::thread sender([&] { FakeVm::send_bytes(vm.main, burst); });
    int answered = 0;
    while (answered < kRequests && FakeVm::recv(vm.main, f)) {
        EXPECT_EQ(f.tag(), static_cast<std::uint32_t>(answered));
        ++answered;
    }
    sender.join();
    EXPECT_EQ(answered, kRequests);
    work.reset();
    asio::post(io, [&] { driver.stop(); });  // no wait left: run() returns
    t.join();
    c.disconnect();
}

TEST(ClientTcp, OverlongFrameClosesTheConnectionWithALogLine) {
    FakeVm vm;
    logs.clear();
    ClientOptions o = quiet_options();
    o.max_frame_blocks = 2;
    Client c(o);
    ASSERT_TRUE(connect_to(c, vm));
    Frame p = Frame::ping(false);
    p.set_extra_blocks(5);
    ASSERT_TRUE(FakeVm::send(vm.main, p));
    EXPECT_EQ(c.run_for(2000000), -EPROTO);
    ASSERT_FALSE(logs.empty());
    EXPECT_EQ(logs[0], "main connection: declared length 384 bytes (w0[15:8]=5) over the limit of 128 bytes");
}

// ---- the C API over the default client ----------------------------------------

namespace {
std::vector<std::pair<std::uint64_t, std::size_t>> c_reads;
int c_read(void*, uint64_t addr, size_t len, void* buf, unsigned) {
    c_reads.emplace_back(addr, len);
    std::memset(buf, 0x5e, len);
    return 0;
}
int c_write(void*, uint64_t, size_t, void*, unsigned) { return 0; }
}  // namespace

TEST(CApi, EnvTargetPairFallbackReconnect) {
    FakeVm vm;
    c_reads.clear();
    ::unsetenv("COREHDL_VM");
    EXPECT_EQ(coreio_connect(nullptr), -EINVAL);
    ::setenv("COREHDL_VM", vm.target().c_str(), 1);
    ASSERT_EQ(coreio_connect(nullptr), 0);
    ASSERT_TRUE(vm.accept_pair());
    const coreio_func_t f = {c_read, c_write, nullptr, nullptr};
    ASSERT_EQ(coreio_register(4, &f, nullptr), 0);
    EXPECT_EQ(coreio_register(4, &f, nullptr), -EBUSY);
    Frame fr;
    ASSERT_TRUE(FakeVm::recv(vm.main, fr));
    EXPECT_EQ(fr, Frame::claim(4));
    // A pair read without readp: read at addr and at addr + len.
    ASSERT_TRUE(FakeVm::send(vm.main, Frame::mmio_request(Op::ReadPair, 4, 0x4000, 8, 0, 3)));
    ASSERT_EQ(coreio_mainloop(200000), 0);
    ASSERT_TRUE(FakeVm::recv(vm.main, fr));
    EXPECT_EQ(fr.tag(), 3u);
    ASSERT_EQ(c_reads.size(), 2u);
    EXPECT_EQ(c_reads[0], (std::pair<std::uint64_t, std::size_t>{0x4000, 8}));
    EXPECT_EQ(c_reads[1], (std::pair<std::uint64_t, std::size_t>{0x4008, 8}));
    char b[4];
    EXPECT_EQ(coreio_dma_read(0, 0, 0, 0, b, 0, nullptr, nullptr), -EINVAL);
    EXPECT_EQ(coreio_dma_read(0, 16, 0, 4, b, 0, nullptr, nullptr), -EINVAL);
    EXPECT_EQ(coreio_irq_update(0, 8, 1), -EINVAL);
    // disconnect + connect + register of the same range works.
    coreio_disconnect();
    vm.close_conns();
    ASSERT_EQ(coreio_connect(vm.target().c_str()), 0);
    ASSERT_TRUE(vm.accept_pair());
    EXPECT_EQ(coreio_register(4, &f, nullptr), 0);
    // The VM going away: processfds reports -ECONNRESET.
    vm.close_conns();
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; ++i) {
        fd_set r, w;
        FD_ZERO(&r);
        FD_ZERO(&w);
        const int n = coreio_preparefds(0, &r, &w);
        ASSERT_GT(n, 0);
        timeval tv{0, 50000};
        ::select(n, &r, &w, nullptr, &tv);
        rc = coreio_processfds(&r, &w);
    }
    EXPECT_EQ(rc, -ECONNRESET);
    coreio_disconnect();
    ::unsetenv("COREHDL_VM");
}
