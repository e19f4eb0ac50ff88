// A minimal CoreIO client written from the protocol text with raw sockets, so
// the mock VM is tested against something other than libcoreio.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "coreio/frame.hpp"

namespace coreio::testing {

class RawClient {
public:
    /// Connects the main connection, then (unless main_only) the DMA connection.
    explicit RawClient(std::uint16_t port, bool main_only = false) {
        main_ = dial(port);
        if (!main_only) dma_ = dial(port);
    }
    ~RawClient() {
        stop_serving();
        close();
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    void close() {
        if (main_ >= 0) ::close(main_);
        if (dma_ >= 0) ::close(dma_);
        main_ = dma_ = -1;
    }

    void send_main(const Frame& f) { send_raw(main_, f.data(), kBlockSize); }
    void send_dma(const Frame& f) { send_raw(dma_, f.data(), kBlockSize); }
    void send_main_bytes(const void* p, std::size_t n) { send_raw(main_, p, n); }
    void send_dma_bytes(const void* p, std::size_t n) { send_raw(dma_, p, n); }

    /// Reads one 64-byte frame; false on timeout or EOF.
    bool recv_main(Frame& f, int timeout_ms = 10000) { return recv_frame(main_, f, timeout_ms); }
    bool recv_dma(Frame& f, int timeout_ms = 10000) { return recv_frame(dma_, f, timeout_ms); }
    /// True when the peer closed `main` (EOF seen within the timeout).
    bool main_closed(int timeout_ms = 10000) {
        Frame f;
        return !recv_frame(main_, f, timeout_ms) && eof_;
    }

    /// Serves MMIO on the main connection from a thread: `handle` may edit the
    /// request into its reply; the frame goes back when the op wants a reply.
    void serve(std::function<void(Frame&)> handle) {
        running_ = true;
        server_ = std::thread([this, handle = std::move(handle)] {
            while (running_) {
                Frame f;
                if (!recv_frame(main_, f, 50)) {
                    if (eof_) return;
                    continue;
                }
                handle(f);
                if (f.op() == Op::Ping || access_wants_reply(f.op())) send_main(f);
            }
        });
    }
    void stop_serving() {
        running_ = false;
        if (server_.joinable()) server_.join();
    }

private:
    static int dial(std::uint16_t port) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd);
            throw std::runtime_error("connect failed");
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }
    void send_raw(int fd, const void* p, std::size_t n) {
        std::lock_guard lock(send_mu_);
        const auto* b = static_cast<const char*>(p);
        while (n > 0) {
            const ssize_t k = ::send(fd, b, n, MSG_NOSIGNAL);
            if (k <= 0) return;
            b += k;
            n -= static_cast<std::size_t>(k);
        }
    }
    bool recv_frame(int fd, Frame& f, int timeout_ms) {
        std::size_t have = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (have < kBlockSize) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (have == 0 && left <= 0) return false;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left > 0 ? left : 1000)) <= 0) {
                if (have == 0) return false;
                continue;
            }
            const ssize_t k = ::recv(fd, f.data() + have, kBlockSize - have, 0);
            if (k <= 0) {
                eof_ = true;
                return false;
            }
            have += static_cast<std::size_t>(k);
        }
        return true;
    }

    int main_ = -1;
    int dma_ = -1;
    std::mutex send_mu_;
    std::atomic<bool> running_{false};
    std::atomic<bool> eof_{false};
    std::thread server_;
};

}  // namespace coreio::testing
