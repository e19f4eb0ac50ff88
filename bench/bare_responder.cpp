#include "bare_responder.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coreio/frame.hpp"
#include "loopback.hpp"

namespace coreio::bench {
namespace {

int connect_or_throw(std::uint16_t port) {
    const int fd = connect_loopback(port);
    if (fd < 0) throw std::runtime_error(std::string("bare device: connect failed: ") + std::strerror(-fd));
    return fd;
}

void send_or_throw(int fd, const std::byte* p, std::size_t n) {
    if (const int rc = send_all(fd, p, n); rc != 0)
        throw std::runtime_error(std::string("bare device: send failed: ") + std::strerror(-rc));
}

}  // namespace

BareResponder::BareResponder(std::uint16_t port, std::uint64_t base, Wait wait) : base_(base), regs_(4096) {
    main_fd_ = connect_or_throw(port);
    dma_fd_ = connect_or_throw(port);
    if (wait == Wait::Epoll) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN;
        if (epoll_fd_ < 0 || ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, main_fd_, &ev) != 0)
            throw std::runtime_error("epoll setup failed");
    }
    const Frame claim = Frame::claim(0);
    send_or_throw(main_fd_, claim.data(), kBlockSize);
}

BareResponder::~BareResponder() {
    stop_ = true;
    if (main_fd_ >= 0) ::shutdown(main_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (main_fd_ >= 0) ::close(main_fd_);
    if (dma_fd_ >= 0) ::close(dma_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void BareResponder::start() { thread_ = std::thread([this] { serve(); }); }

/// One wait for requests and one read of what arrived; recv()'s result.
ssize_t BareResponder::receive(std::byte* p, std::size_t n) {
    if (epoll_fd_ < 0) return ::recv(main_fd_, p, n, 0);
    for (;;) {
        epoll_event ev{};
        if (::epoll_wait(epoll_fd_, &ev, 1, -1) < 0 && errno != EINTR) return -1;
        const ssize_t k = ::recv(main_fd_, p, n, MSG_DONTWAIT);
        if (k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return k;
    }
}

void BareResponder::serve() {
    std::vector<std::byte> in(256 * 1024);
    std::vector<std::byte> out;
    out.reserve(1 << 20);
    std::size_t have = 0;
    while (!stop_) {
        const ssize_t k = receive(in.data() + have, in.size() - have);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return;
        }
        have += static_cast<std::size_t>(k);
        std::size_t off = 0;
        out.clear();
        auto emit = [&out](const Frame& f) { out.insert(out.end(), f.data(), f.data() + kBlockSize); };
        while (have - off >= kBlockSize) {
            Frame f = Frame::from_bytes(in.data() + off);
            off += kBlockSize;  // the mock VM sends single-block frames only
            const std::uint64_t at = f.address() - base_;
            const unsigned size = f.size();
            switch (f.op()) {
            case Op::Read:
                if (at + size <= regs_.size()) std::memcpy(f.payload(), regs_.data() + at, size);
                emit(f);
                break;
            case Op::Write:
            case Op::WriteAck:
                if (at + size <= regs_.size()) std::memcpy(regs_.data() + at, f.payload(), size);
                if (at == kKickOffset) {
                    std::uint32_t n = 0;
                    std::memcpy(&n, f.payload(), sizeof n);
                    for (std::uint32_t i = 0; i < n; ++i) {
                        emit(Frame::irq_update(0, 0, 1));
                        emit(Frame::irq_update(0, 0, 0));
                    }
                }
                if (f.op() == Op::WriteAck) emit(f);
                break;
            case Op::Ping:
                emit(f);
                break;
            default:
                break;
            }
        }
        std::memmove(in.data(), in.data() + off, have - off);
        have -= off;
        if (!out.empty()) send_or_throw(main_fd_, out.data(), out.size());
    }
}

int BareResponder::dma_read(std::uint64_t addr, std::span<std::byte> buf) { return dma(Op::Read, addr, buf); }

int BareResponder::dma_write(std::uint64_t addr, std::span<const std::byte> buf) {
    return dma(Op::WriteAck, addr, std::span<std::byte>(const_cast<std::byte*>(buf.data()), buf.size()));
}

// Up to 1024 chunks in flight: every freed slot is refilled after each recv,
// all new requests in one send; replies are used where they lie in the
// receive buffer. (Refilling only once a larger part of the window is free
// measured no faster.)
int BareResponder::dma(Op op, std::uint64_t addr, std::span<std::byte> buf) {
    constexpr std::size_t kWindow = 1024;
    std::vector<std::byte> out(kWindow * kBlockSize);
    std::vector<std::byte> in(kWindow * kBlockSize);
    std::size_t sent = 0;      // bytes of buf requested so far
    std::size_t inflight = 0;  // chunks without a reply
    std::size_t have = 0;
    int result = 0;
    std::uint32_t pid = 0;
    while (sent < buf.size() || inflight > 0) {
        std::size_t n = 0;
        for (; sent < buf.size() && inflight < kWindow; ++n, ++inflight) {
            const std::uint64_t a = addr + sent;
            const std::size_t chunk = std::min<std::size_t>(32 - (a & 31), buf.size() - sent);
            // A reply echoes the chunk address, which says where its data goes.
            Frame f = Frame::dma_request(op, 0, 0, a, static_cast<unsigned>(chunk), 0, pid++);
            if (op == Op::WriteAck) std::memcpy(f.payload(), buf.data() + sent, chunk);
            std::memcpy(out.data() + n * kBlockSize, f.data(), kBlockSize);
            sent += chunk;
        }
        if (n > 0) send_or_throw(dma_fd_, out.data(), n * kBlockSize);
        const ssize_t k = ::recv(dma_fd_, in.data() + have, in.size() - have, 0);
        if (k <= 0) return -ECONNRESET;
        have += static_cast<std::size_t>(k);
        std::size_t off = 0;
        for (; have - off >= kBlockSize; off += kBlockSize, --inflight) {
            const Frame f = Frame::from_bytes(in.data() + off);
            if (f.error()) result = -EFAULT;
            const std::uint64_t pos = f.address() - addr;
            if (op == Op::Read && pos + f.size() <= buf.size()) std::memcpy(buf.data() + pos, f.payload(), f.size());
        }
        std::memmove(in.data(), in.data() + off, have - off);
        have -= off;
    }
    return result;
}

}  // namespace coreio::bench
