// Listener, Poller and connect_tcp() over real TCP on 127.0.0.1, including
// accept() when the process is out of file descriptors.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "coreio/net/listener.hpp"
#include "coreio/net/poller.hpp"
#include "coreio/net/socket.hpp"

using namespace coreio::net;
using namespace std::chrono_literals;

namespace {

HostPort loopback(std::uint16_t port) { return HostPort{"127.0.0.1", port}; }

/// Accepts one connection within 5 s (-ETIMEDOUT otherwise).
int accept_within(Listener& l, std::string* peer = nullptr) {
    for (int i = 0; i < 500; ++i) {
        const int fd = l.accept(peer);
        if (fd != -EAGAIN) return fd;
        pollfd p{l.fd(), POLLIN, 0};
        ::poll(&p, 1, 10);
    }
    return -ETIMEDOUT;
}

bool nodelay(int fd) {
    int v = 0;
    socklen_t len = sizeof v;
    return ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v != 0;
}

}  // namespace

TEST(Listener, AcceptsWithNodelayAndNonBlocking) {
    Listener l;
    std::string error;
    ASSERT_EQ(l.open(loopback(0), &error), 0) << error;
    ASSERT_NE(l.port(), 0);
    EXPECT_EQ(l.accept(), -EAGAIN);  // nothing pending
    const int c = connect_tcp(loopback(l.port()));
    ASSERT_GE(c, 0);
    UniqueFd client(c);
    EXPECT_TRUE(nodelay(client.get()));
    EXPECT_TRUE(::fcntl(client.get(), F_GETFL) & O_NONBLOCK);
    std::string peer;
    UniqueFd server(accept_within(l, &peer));
    ASSERT_TRUE(server);
    EXPECT_TRUE(nodelay(server.get()));
    EXPECT_TRUE(::fcntl(server.get(), F_GETFL) & O_NONBLOCK);
    EXPECT_EQ(peer.rfind("127.0.0.1:", 0), 0u) << peer;
    EXPECT_EQ(peer_name(server.get()), peer);
    EXPECT_EQ(l.backoff(), 0ms);
}

TEST(Listener, OpenFailsWithAMessageNamingTheAddress) {
    Listener a;
    ASSERT_EQ(a.open(loopback(0)), 0);
    Listener b;
    std::string error;
    EXPECT_EQ(b.open(loopback(a.port()), &error), -EADDRINUSE);
    EXPECT_EQ(error, "cannot listen on 127.0.0.1:" + std::to_string(a.port()) + ": Address already in use");
    EXPECT_EQ(b.open(HostPort{"no.such.host.invalid", 0}, &error), -EINVAL);
    EXPECT_EQ(error.rfind("cannot listen on no.such.host.invalid:0: cannot resolve 'no.such.host.invalid'", 0), 0u)
        << error;
    EXPECT_FALSE(b.is_open());
    EXPECT_EQ(b.accept(), -EBADF);
}

TEST(ConnectTcp, ReportsRefusedAndUnresolvable) {
    Listener l;
    ASSERT_EQ(l.open(loopback(0)), 0);
    const std::uint16_t port = l.port();
    l.close();
    EXPECT_EQ(connect_tcp(loopback(port)), -ECONNREFUSED);
    EXPECT_EQ(connect_tcp(HostPort{"no.such.host.invalid", 1}), -EINVAL);
}

TEST(ConnectTcp, NonBlockingConnectCompletes) {
    Listener l;
    ASSERT_EQ(l.open(loopback(0)), 0);
    std::vector<SocketAddress> addrs;
    ASSERT_EQ(resolve(loopback(l.port()), false, addrs), 0);
    ASSERT_FALSE(addrs.empty());
    EXPECT_EQ(addrs[0].to_string(), "127.0.0.1:" + std::to_string(l.port()));
    UniqueFd c(start_connect(addrs[0]));
    ASSERT_TRUE(c);
    pollfd p{c.get(), POLLOUT, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    EXPECT_EQ(finish_connect(c.get()), 0);
    EXPECT_TRUE(nodelay(c.get()));
    UniqueFd s(accept_within(l));
    EXPECT_TRUE(s);
}

TEST(Poller, ReportsReadableAndWritableAndIsItselfPollable) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    Poller p;
    ASSERT_TRUE(p.valid());
    ASSERT_EQ(p.watch(a.get(), 7, Poller::Read), 0);
    Poller::Event ev[4];
    EXPECT_EQ(p.wait(ev, 0), 0);
    pollfd outer{p.fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&outer, 1, 0), 0);
    ASSERT_EQ(::write(b.get(), "x", 1), 1);
    EXPECT_EQ(::poll(&outer, 1, 5000), 1);  // the epoll fd shows the watched fd's readiness
    ASSERT_EQ(p.wait(ev, 5000), 1);
    EXPECT_EQ(ev[0].key, 7u);
    EXPECT_TRUE(ev[0].readable);
    EXPECT_FALSE(ev[0].writable);
    ASSERT_EQ(p.change(a.get(), 8, Poller::Read | Poller::Write), 0);
    ASSERT_EQ(p.wait(ev, 5000), 1);
    EXPECT_EQ(ev[0].key, 8u);
    EXPECT_TRUE(ev[0].writable);
    p.forget(a.get());
    EXPECT_EQ(p.wait(ev, 0), 0);
}

// Out of file descriptors: accept backs off (a bounded number of attempts and
// log lines), the connection already accepted is still served, and accepting
// resumes once descriptors are free. Runs in a child with a low RLIMIT_NOFILE.
namespace {

// The child's checks, as an exit code: 0 = all held, else the number of the failed step.
int emfile_child(int ready_pipe) {
    rlimit lim{64, 64};
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 10;
    int log_lines = 0;
    ListenerOptions o;
    o.backoff = 50ms;
    o.log_interval = 60s;
    o.log = [&](std::string_view) { ++log_lines; };
    Listener l(o);
    if (l.open(loopback(0)) != 0) return 11;
    const std::uint16_t port = l.port();
    if (::write(ready_pipe, &port, sizeof port) != sizeof port) return 12;
    // The first connection is accepted while descriptors are free: it is the one to keep serving.
    UniqueFd served(accept_within(l));
    if (!served) return 13;
    std::vector<UniqueFd> hog;  // use up every descriptor left
    for (;;) {
        const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        hog.emplace_back(fd);
    }
    if (hog.empty()) return 14;
    hog.pop_back();  // one descriptor for the poller
    Poller p2;
    if (!p2.valid()) return 15;
    p2.watch(served.get(), 1, Poller::Read);
    p2.watch(l.fd(), 2, Poller::Read);
    bool listening = true;
    int echoed = 0, accept_calls = 0;
    const auto start = std::chrono::steady_clock::now();
    // Serve until the parent's second connection has hit the limit, 300 ms have passed and
    // the first connection was served meanwhile (bounded by 20 s).
    const auto done = [&] {
        const auto t = std::chrono::steady_clock::now() - start;
        return t > 20s || (t > 300ms && echoed >= 3 && l.resource_errors() > 0);
    };
    while (!done()) {
        const auto wait = l.backoff();
        if (!listening && wait == 0ms) {
            p2.watch(l.fd(), 2, Poller::Read);
            listening = true;
        }
        Poller::Event ev[4];
        const int n = p2.wait(ev, listening ? 20 : static_cast<int>(wait.count()));
        for (int i = 0; i < n; ++i) {
            if (ev[i].key == 1) {
                char c;
                if (::recv(served.get(), &c, 1, 0) == 1 && ::send(served.get(), &c, 1, MSG_NOSIGNAL) == 1) ++echoed;
            } else {
                ++accept_calls;
                const int fd = l.accept();
                if (fd >= 0) return 16;  // there is no descriptor to take it with
                if (l.backoff() > 0ms) {  // stop watching while backing off: no spinning
                    p2.forget(l.fd());
                    listening = false;
                }
            }
        }
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (l.resource_errors() == 0) return 17;
    // At most one attempt per back-off period (plus the first), whatever the machine's speed.
    if (accept_calls > 2 + elapsed / 50ms) return 18;
    if (log_lines != 1) return 19;  // one line per 60 s interval
    if (echoed < 3) return 20;      // the existing connection kept being served
    hog.clear();                    // descriptors free again: the pending connection is taken
    for (int i = 0; i < 100; ++i) {
        const int fd = accept_within(l);
        if (fd >= 0) return 0;
        if (fd != -EMFILE && fd != -ETIMEDOUT) return 21;
        ::poll(nullptr, 0, 60);
    }
    return 22;
}

}  // namespace

TEST(Listener, OutOfDescriptorsBacksOffLogsOnceAndKeepsServing) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(ready[0]);
        ::_exit(emfile_child(ready[1]));
    }
    ::close(ready[1]);
    std::uint16_t port = 0;
    pollfd p{ready[0], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);
    ASSERT_EQ(::read(ready[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
    ::close(ready[0]);
    UniqueFd first(connect_tcp(loopback(port)));
    ASSERT_TRUE(first);
    ::poll(nullptr, 0, 100);  // let the child accept it and use up its descriptors
    UniqueFd second(connect_tcp(loopback(port)));  // waits in the backlog
    ASSERT_TRUE(second);
    int echoed = 0;
    for (int i = 0; i < 3; ++i) {
        char c = 'a';
        if (::send(first.get(), &c, 1, MSG_NOSIGNAL) != 1) break;
        pollfd q{first.get(), POLLIN, 0};
        if (::poll(&q, 1, 10000) == 1 && ::recv(first.get(), &c, 1, 0) == 1) ++echoed;
    }
    EXPECT_EQ(echoed, 3);
    int status = 0;
    for (int i = 0; i < 300 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::poll(nullptr, 0, 100);
    if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL() << "child did not finish";
    }
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "failed step " << WEXITSTATUS(status);
}
