// net::Uring: the requests run_for() uses, on a socket pair, and where it
// declines to run.
#include "coreio/net/uring.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <string>

namespace {

using coreio::net::Uring;
using namespace std::chrono_literals;

struct SocketPair {
    int fd[2] = {-1, -1};
    SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0); }
    ~SocketPair() {
        for (int f : fd) ::close(f);
    }
};

// Waits until a completion with `key` arrives (bounded); returns its result.
int wait_for(Uring& ring, std::uint64_t key) {
    std::array<Uring::Completion, 4> done;
    for (int round = 0; round < 50; ++round) {
        const int n = ring.wait(done);
        EXPECT_GE(n, 0);
        for (int i = 0; i < n; ++i)
            if (done[static_cast<std::size_t>(i)].key == key) return done[static_cast<std::size_t>(i)].result;
    }
    ADD_FAILURE() << "no completion for key " << key;
    return -1;
}

#define SKIP_WITHOUT_IO_URING(ring) \
    if (!(ring).valid()) GTEST_SKIP() << "this kernel refuses io_uring (run_for() uses epoll here)"

TEST(Uring, RecvCompletesWithTheBytesSentLater) {
    Uring ring(8);
    SKIP_WITHOUT_IO_URING(ring);
    SocketPair sp;
    char buf[16] = {};
    ASSERT_TRUE(ring.recv(sp.fd[0], buf, sizeof buf, 7));
    ASSERT_EQ(::send(sp.fd[1], "hello", 5, 0), 5);
    EXPECT_EQ(wait_for(ring, 7), 5);
    EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST(Uring, PollSeesAReadableDescriptor) {
    Uring ring(8);
    SKIP_WITHOUT_IO_URING(ring);
    SocketPair sp;
    ASSERT_TRUE(ring.poll(sp.fd[0], POLLIN, 3));
    ASSERT_EQ(::send(sp.fd[1], "x", 1, 0), 1);
    EXPECT_TRUE(wait_for(ring, 3) & POLLIN);
}

TEST(Uring, TimeoutFiresAtItsTimeAndCancelEndsAPendingRecv) {
    Uring ring(8);
    SKIP_WITHOUT_IO_URING(ring);
    SocketPair sp;
    char buf[4];
    ASSERT_TRUE(ring.recv(sp.fd[0], buf, sizeof buf, 1));
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(ring.timeout_at(t0 + 20ms, 2));
    EXPECT_EQ(wait_for(ring, 2), -ETIME);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    ASSERT_TRUE(ring.cancel(1, 9));
    EXPECT_EQ(wait_for(ring, 1), -ECANCELED);
}

TEST(Uring, FullSubmissionQueueRefusesMoreRequests) {
    Uring ring(2);
    SKIP_WITHOUT_IO_URING(ring);
    SocketPair sp;
    char buf[4];
    int accepted = 0;
    while (accepted < 64 && ring.recv(sp.fd[0], buf, sizeof buf, 1)) ++accepted;
    EXPECT_GE(accepted, 2);
    EXPECT_LT(accepted, 64);  // refused once the queue is full, never overwritten
}

TEST(Uring, DeclinesUnderValgrind) {
    // Valgrind's preload marks a process it runs; a ring there would hang the
    // loop (Valgrind holds every thread while one waits in io_uring_enter).
    const char* old = std::getenv("LD_PRELOAD");
    const std::string saved = old ? old : "";
    ::setenv("LD_PRELOAD", "/usr/libexec/valgrind/vgpreload_core-amd64-linux.so", 1);
    Uring ring(8);
    if (old)
        ::setenv("LD_PRELOAD", saved.c_str(), 1);
    else
        ::unsetenv("LD_PRELOAD");
    EXPECT_FALSE(ring.valid());
    char buf[4];
    EXPECT_FALSE(ring.recv(0, buf, sizeof buf, 1));
    std::array<Uring::Completion, 1> done;
    EXPECT_EQ(ring.wait(done), -ENOSYS);
}

}  // namespace
