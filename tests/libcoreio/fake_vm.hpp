// The VM end of a client test: a listener on 127.0.0.1 (ephemeral port), the
// client's two connections, and blocking frame I/O with timeouts, driven step
// by step by the test. Shared by the C++ API and the C API tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "coreio/frame.hpp"

namespace coreio::test {

class FakeVm {
public:
    static constexpr int kTimeoutMs = 10000;

    FakeVm() {
        lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(lfd_, 8);
        socklen_t len = sizeof a;
        ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    ~FakeVm() {
        close_conns();
        if (lfd_ >= 0) ::close(lfd_);
    }
    FakeVm(const FakeVm&) = delete;
    FakeVm& operator=(const FakeVm&) = delete;

    std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

    /// Accepts the client's two connections: the first is main, the second DMA.
    bool accept_pair() {
        main = accept_one();
        dma = accept_one();
        return main >= 0 && dma >= 0;
    }
    void close_conns() {
        for (int* f : {&main, &dma}) {
            if (*f >= 0) ::close(*f);
            *f = -1;
        }
    }
    static bool send(int fd, const Frame& f) { return ::send(fd, f.data(), kBlockSize, MSG_NOSIGNAL) == 64; }
    static bool send_bytes(int fd, const std::vector<std::byte>& b) {
        return ::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size());
    }
    /// Reads one 64-byte frame; false on timeout or EOF.
    static bool recv(int fd, Frame& f, int timeout_ms = kTimeoutMs) {
        std::size_t have = 0;
        while (have < kBlockSize) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return false;
            const ssize_t n = ::recv(fd, f.data() + have, kBlockSize - have, 0);
            if (n <= 0) return false;
            have += static_cast<std::size_t>(n);
        }
        return true;
    }
    /// True when nothing arrives within `ms`.
    static bool quiet(int fd, int ms) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, ms) == 0;
    }

    int main = -1, dma = -1;

private:
    int accept_one() {
        pollfd p{lfd_, POLLIN, 0};
        if (::poll(&p, 1, kTimeoutMs) <= 0) return -1;
        return ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    int lfd_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace coreio::test
