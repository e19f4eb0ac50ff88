// The mock VM out of file descriptors (issue 9): accept() failing with EMFILE
// must not spin (it logged 270 k lines/s before): it backs off, logs once per
// interval, keeps serving the clients it has, and accepts again once
// descriptors are free. Runs the VM in a forked child with a low RLIMIT_NOFILE.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "coreio/client.hpp"
#include "coreio/mockvm/vm.hpp"
#include "coreio/net/socket.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kBase = 0xfef00000;

/// Answers every read with 0x5a bytes.
struct Fixed final : coreio::MmioHandler {
    int read(std::uint64_t, std::size_t len, void* buf, unsigned) override {
        std::memset(buf, 0x5a, len);
        return 0;
    }
    int write(std::uint64_t, std::size_t, const void*, unsigned) override { return 0; }
};

bool wait_readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

// The child's checks as an exit code: 0 = all held, else the failed step.
int vm_child(int to_parent, int from_parent) {
    rlimit lim{256, 256};
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 10;
    std::atomic<int> accept_lines{0}, lines{0};
    coreio::mockvm::VmConfig c;
    c.ranges = {{kBase, 0x1000}};
    c.timeout = 5s;
    c.log = [&](std::string_view l) {
        ++lines;
        if (l.find("accept") != std::string_view::npos) ++accept_lines;
    };
    coreio::mockvm::Vm vm(c);
    const std::uint16_t port = vm.port();
    if (::write(to_parent, &port, sizeof port) != sizeof port) return 11;
    if (!vm.wait_for_claim(0, 10s)) return 12;
    std::vector<int> hog;  // use up every descriptor left
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hog.push_back(fd);
    if (errno != EMFILE || hog.empty()) return 13;
    const char go = 'h';
    if (::write(to_parent, &go, 1) != 1) return 14;  // the parent now connects more clients
    char ack;
    if (!wait_readable(from_parent, 10000) || ::read(from_parent, &ack, 1) != 1) return 15;
    // Served meanwhile: the claimed client answers; accept errors are logged once (60 s interval... 1 s default).
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    const auto start = std::chrono::steady_clock::now();
    int reads = 0;
    while (std::chrono::steady_clock::now() - start < 600ms) {
        if (vm.readl(kBase).value != 0x5a5a5a5a) return 16;
        ++reads;
        std::this_thread::sleep_for(20ms);
    }
    ::getrusage(RUSAGE_SELF, &after);
    const auto cpu_us = [](const rusage& r) {
        return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000ll + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
    };
    if (accept_lines.load() < 1) return 17;  // it did run out
    if (accept_lines.load() > 2) return 18;  // once per 1 s interval, not once per attempt
    if (lines.load() > 4) return 19;
    // A spinning accept loop burns a whole core (600 ms here); backing off costs next to nothing.
    if (cpu_us(after) - cpu_us(before) > 300000) return 20;
    for (int fd : hog) ::close(fd);
    // Descriptors free again: the waiting clients are accepted.
    for (int i = 0; i < 200 && vm.client_count() < 2; ++i) std::this_thread::sleep_for(20ms);
    if (vm.client_count() < 2) return 21;
    (void)reads;
    return 0;
}

TEST(VmOutOfDescriptors, BacksOffLogsOnceAndKeepsServing) {
    int up[2], down[2];
    ASSERT_EQ(::pipe(up), 0);
    ASSERT_EQ(::pipe(down), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(up[0]);
        ::close(down[1]);
        ::_exit(vm_child(up[1], down[0]));
    }
    ::close(up[1]);
    ::close(down[0]);
    std::uint16_t port = 0;
    ASSERT_TRUE(wait_readable(up[0], 10000));
    ASSERT_EQ(::read(up[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
    // The client the VM keeps serving.
    Fixed dev;
    coreio::Client client;
    ASSERT_EQ(client.connect("127.0.0.1:" + std::to_string(port)), 0);
    ASSERT_EQ(client.register_range(0, dev), 0);
    std::atomic<bool> stop{false};
    std::thread loop([&] {
        while (!stop && client.run_for(20000) >= 0) {
        }
    });
    char go = 0;
    const bool hogged = wait_readable(up[0], 10000) && ::read(up[0], &go, 1) == 1;
    std::vector<coreio::net::UniqueFd> waiting;  // wait in the child's backlog
    for (int i = 0; hogged && i < 3; ++i)
        waiting.emplace_back(coreio::net::connect_tcp(coreio::net::HostPort{"127.0.0.1", port}));
    const char ack = 'c';
    EXPECT_EQ(::write(down[1], &ack, 1), 1);
    int status = 0;
    for (int i = 0; i < 300 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::poll(nullptr, 0, 100);
    if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ADD_FAILURE() << "child did not finish";
    }
    stop = true;
    loop.join();
    client.disconnect();
    ::close(up[0]);
    ::close(down[1]);
    ASSERT_TRUE(hogged);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "failed step " << WEXITSTATUS(status);
}

}  // namespace
