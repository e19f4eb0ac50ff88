// RecordingProxy over 127.0.0.1: a raw-socket fake VM and fake device model on
// either side; bytes must pass unchanged and the trace must hold the events.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "../trace/test_util.hpp"
#include "coreio/recorder/proxy.hpp"

using namespace coreio;
using namespace coreio::trace;
using namespace trace_test;

namespace {

// Blocking socket helpers, every wait bounded by a 5 s timeout.
void set_timeout(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int listen_any(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    set_timeout(fd);
    return fd;
}

int accept_one(int lfd) {
    const int fd = ::accept(lfd, nullptr, nullptr);
    if (fd >= 0) set_timeout(fd);
    return fd;
}

int connect_to(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_timeout(fd);
    return fd;
}

void send_frame(int fd, const Frame& f) { ASSERT_EQ(::send(fd, f.data(), 64, MSG_NOSIGNAL), 64); }

Frame recv_frame(int fd) {
    Frame f;
    std::size_t have = 0;
    while (have < 64) {
        const ssize_t k = ::recv(fd, f.data() + have, 64 - have, 0);
        if (k <= 0) {
            ADD_FAILURE() << "recv failed or timed out";
            return f;
        }
        have += static_cast<std::size_t>(k);
    }
    return f;
}

struct ProxyRig {
    std::uint16_t vm_port = 0;
    int vm_listen = listen_any(vm_port);
    std::string path = temp_path("proxy");
    recorder::RecordingProxy proxy;
    std::vector<std::string> logs;

    ProxyRig() {
        recorder::ProxyOptions o;
        o.target = "127.0.0.1:" + std::to_string(vm_port);
        o.output = path;
        o.log = [this](std::string_view s) { logs.emplace_back(s); };
        EXPECT_EQ(proxy.start(o), "");
        proxy.run_in_thread();
    }
    ~ProxyRig() { ::close(vm_listen); }
};

// One device model's two connections and the VM's view of them.
struct Pair {
    int main = -1, dma = -1, vm_main = -1, vm_dma = -1;
    Pair(ProxyRig& rig) {
        main = connect_to(rig.proxy.port());
        vm_main = accept_one(rig.vm_listen);
        dma = connect_to(rig.proxy.port());
        vm_dma = accept_one(rig.vm_listen);
    }
    ~Pair() {
        for (int fd : {main, dma, vm_main, vm_dma})
            if (fd >= 0) ::close(fd);
    }
};

}  // namespace

TEST(RecordingProxyTest, ForwardsUnchangedAndRecords) {
    ProxyRig rig;
    {
        Pair p(rig);
        ASSERT_GE(p.vm_main, 0);
        ASSERT_GE(p.vm_dma, 0);
        // Claim goes through unchanged, on the main connection.
        send_frame(p.main, Frame::claim(2));
        EXPECT_EQ(recv_frame(p.vm_main), Frame::claim(2));
        // An MMIO read from the VM, answered by the device.
        Frame req = Frame::mmio_request(Op::Read, 2, 0x10002008, 4, 0, 0x77);
        req.set_word(7, 0x1122334455667788ull);  // arbitrary bytes must pass too
        send_frame(p.vm_main, req);
        Frame got = recv_frame(p.main);
        EXPECT_EQ(got, req);
        const std::uint32_t v = 0xcafe;
        std::memcpy(got.payload(), &v, 4);
        send_frame(p.main, got);
        EXPECT_EQ(recv_frame(p.vm_main), got);
        // A DMA read from the device, answered by the VM.
        const Frame dma = Frame::dma_request(Op::Read, 0, 0, 0x8000, 8, 0, 5);
        send_frame(p.dma, dma);
        Frame dma_reply = recv_frame(p.vm_dma);
        EXPECT_EQ(dma_reply, dma);
        dma_reply.set_word(3, 0x0102030405060708ull);
        send_frame(p.vm_dma, dma_reply);
        EXPECT_EQ(recv_frame(p.dma), dma_reply);
        // Several frames in one write arrive intact.
        Frame burst[3] = {Frame::irq_update(2, 1, 1), Frame::irq_update(2, 1, 0), Frame::ping(true)};
        ASSERT_EQ(::send(p.main, burst, sizeof burst, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof burst));
        for (const Frame& f : burst) EXPECT_EQ(recv_frame(p.vm_main), f);
    }
    // The device model left; the VM side sees its connections close.
    for (int i = 0; i < 500 && rig.proxy.records() < 9; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rig.proxy.stop();
    ReadAll r = read_file(rig.path);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::End) << r.message;
    EXPECT_EQ(r.header.observer, Observer::Proxy);
    EXPECT_EQ(r.header.tool, "coreio-record");
    std::vector<std::string> kinds;
    for (auto& o : r.events) kinds.push_back(kind_name(o.ev.kind));
    const std::vector<std::string> want = {"connection", "connection", "claim", "mmio", "dma", "irq", "irq", "ping",
                                           "connection", "connection"};
    ASSERT_EQ(kinds, want);
    const Event& mmio = r.events[3].event();
    EXPECT_EQ(mmio.address, 0x10002008u);
    EXPECT_EQ(mmio.id, 2);
    EXPECT_EQ(mmio.tag, 0x77u);
    EXPECT_EQ(data_value({mmio.data.data(), 4}), 0xcafeu);
    EXPECT_EQ(mmio.status, Status::Complete);
    const Event& dma = r.events[4].event();
    EXPECT_EQ(dma.channel, Channel::Dma);
    EXPECT_EQ(dma.towards, Towards::Vm);
    EXPECT_EQ(data_value({dma.data.data(), 8}), 0x0102030405060708ull);
    EXPECT_EQ(r.events[0].ev.channel, Channel::Main);
    EXPECT_EQ(r.events[1].ev.channel, Channel::Dma);
    EXPECT_FALSE(r.events[8].ev.up);
}

TEST(RecordingProxyTest, SeveralDeviceModelsAtOnceAndInSequence) {
    ProxyRig rig;
    {
        Pair a(rig);
        Pair b(rig);
        send_frame(b.main, Frame::claim(1));
        EXPECT_EQ(recv_frame(b.vm_main), Frame::claim(1));
        send_frame(a.main, Frame::claim(0));
        EXPECT_EQ(recv_frame(a.vm_main), Frame::claim(0));
    }
    {
        Pair c(rig);
        send_frame(c.main, Frame::claim(3));
        EXPECT_EQ(recv_frame(c.vm_main), Frame::claim(3));
    }
    for (int i = 0; i < 500 && rig.proxy.records() < 15; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rig.proxy.stop();
    EXPECT_EQ(rig.proxy.clients(), 3u);
    ReadAll r = read_file(rig.path);
    std::map<std::uint32_t, int> claim_rid;
    for (auto& o : r.events)
        if (o.ev.kind == EventKind::Claim) claim_rid[o.ev.client] = o.ev.id;
    EXPECT_EQ(claim_rid, (std::map<std::uint32_t, int>{{0, 0}, {1, 1}, {2, 3}}));
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;  // its quarantine keeps freed memory resident
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

/// This process's resident set, in KiB (VmRSS of /proc/self/status).
long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string key;
    while (in >> key) {
        if (key == "VmRSS:") {
            long v = 0;
            in >> v;
            return v;
        }
        in.ignore(1 << 20, '\n');
    }
    return -1;
}

/// Closes with a reset: no TIME_WAIT left behind by thousands of cycles.
void close_with_reset(int& fd) {
    const linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
    fd = -1;
}

}  // namespace

// Issue 9: the proxy kept every device model's trace tap (~25 KB) forever.
// 10 k device models connect, claim and leave; the resident set stays flat.
TEST(RecordingProxyTest, ConnectCloseCyclesKeepMemoryFlat) {
    ProxyRig rig;
    const auto cycle = [&] {
        Pair p(rig);
        ASSERT_GE(p.vm_dma, 0);
        send_frame(p.main, Frame::claim(0));
        ASSERT_EQ(recv_frame(p.vm_main), Frame::claim(0));
        for (int* fd : {&p.main, &p.dma, &p.vm_main, &p.vm_dma}) close_with_reset(*fd);
    };
    for (int i = 0; i < 500; ++i) {
        cycle();
        if (HasFatalFailure()) return;
    }
    const long before = rss_kib();
    ASSERT_GT(before, 0);
    const int cycles = kAddressSanitizer ? 2000 : 10000;
    for (int i = 0; i < cycles; ++i) {
        cycle();
        if (HasFatalFailure()) return;
    }
    const long growth = rss_kib() - before;
    if (!kAddressSanitizer) {
        EXPECT_LT(growth, 4 * 1024) << "resident set grew by " << growth << " KiB over " << cycles
                                    << " device models";
    }
    rig.proxy.stop();
    EXPECT_EQ(rig.proxy.clients(), static_cast<std::uint32_t>(500 + cycles));
}

TEST(RecordingProxyTest, VmNotThereClosesTheDeviceConnection) {
    std::uint16_t port = 0;
    const int l = listen_any(port);
    ::close(l);  // nothing listens on `port` now
    recorder::RecordingProxy proxy;
    recorder::ProxyOptions o;
    o.target = "127.0.0.1:" + std::to_string(port);
    o.output = temp_path("novm");
    std::vector<std::string> logs;
    o.log = [&](std::string_view s) { logs.emplace_back(s); };
    ASSERT_EQ(proxy.start(o), "");
    proxy.run_in_thread();
    const int fd = connect_to(proxy.port());
    ASSERT_GE(fd, 0);
    char c;
    EXPECT_EQ(::recv(fd, &c, 1, 0), 0);  // closed by the proxy
    ::close(fd);
    proxy.stop();
    ASSERT_FALSE(logs.empty());
    EXPECT_NE(logs[0].find("cannot connect to 127.0.0.1:" + std::to_string(port)), std::string::npos) << logs[0];
}

TEST(RecordingProxyTest, StartErrorsNameTheProblem) {
    recorder::RecordingProxy p;
    recorder::ProxyOptions o;
    o.target = "127.0.0.1:notaport";
    o.output = temp_path("err");
    EXPECT_NE(p.start(o).find("bad target"), std::string::npos);
    o.target = "127.0.0.1:4800";
    o.listen = "127.0.0.1";
    EXPECT_NE(p.start(o).find("bad listen address"), std::string::npos);
    o.listen = "127.0.0.1:0";
    o.output = "/nonexistent/dir/x.ctrace";
    EXPECT_NE(p.start(o).find("cannot create"), std::string::npos);
}

// A write error mid-recording (here the file size limit, SIGXFSZ ignored) is
// reported by close_trace(), and records_written() is what the file holds.
TEST(RecordingProxyTest, WriteErrorIsReportedAndTheCountMatchesTheFile) {
    constexpr int kIrqs = 20000;  // ~ 8 bytes of trace each: far past the limit
    std::string error;
    std::uint64_t written = 0, recorded = 0;
    std::string path;
    {
        FileSizeLimit limit(16 * 1024);
        ASSERT_TRUE(limit.ok());
        ProxyRig rig;
        path = rig.path;
        {
            Pair p(rig);
            ASSERT_GE(p.vm_main, 0);
            std::thread vm([&] {  // the VM reads everything the device sends
                std::vector<char> buf(1 << 16);
                std::size_t got = 0;
                while (got < kIrqs * 64u) {
                    const ssize_t k = ::recv(p.vm_main, buf.data(), buf.size(), 0);
                    if (k <= 0) break;
                    got += static_cast<std::size_t>(k);
                }
                EXPECT_EQ(got, kIrqs * 64u);
            });
            for (int i = 0; i < kIrqs; ++i) send_frame(p.main, Frame::irq_update(0, 0, i & 1));
            vm.join();
        }
        for (int i = 0; i < 500 && rig.proxy.records() < kIrqs + 4; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        rig.proxy.stop();
        error = rig.proxy.close_trace();
        written = rig.proxy.records_written();
        recorded = rig.proxy.records();
    }
    EXPECT_NE(error.find("File too large"), std::string::npos) << error;
    EXPECT_NE(error.find("the file holds the first " + std::to_string(written) + " of " + std::to_string(recorded)),
              std::string::npos)
        << error;
    EXPECT_LT(written, recorded);
    ReadAll r = read_file(path);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, ReadStatus::End) << r.message;
    EXPECT_EQ(r.events.size(), written);
}
