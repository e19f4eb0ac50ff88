#include "bare_vm.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "coreio/frame.hpp"

namespace coreio::bench {
namespace {

int send_all(int fd, const std::byte* p, std::size_t n) {
    while (n > 0) {
        const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -ECONNRESET;
        p += k;
        n -= static_cast<std::size_t>(k);
    }
    return 0;
}

}  // namespace

BareVm::BareVm() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("bare VM: socket failed");
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
        ::close(listen_fd_);
        throw std::runtime_error(std::string("bare VM: cannot listen: ") + std::strerror(errno));
    }
    port_ = ntohs(sa.sin_port);
}

BareVm::~BareVm() {
    for (int fd : {main_fd_, dma_fd_, listen_fd_})
        if (fd >= 0) ::close(fd);
}

void BareVm::accept_device() {
    main_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    dma_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (main_fd_ < 0 || dma_fd_ < 0) throw std::runtime_error("bare VM: accept failed");
    int one = 1;
    ::setsockopt(main_fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::byte claim[kBlockSize];
    if (::recv(main_fd_, claim, sizeof claim, MSG_WAITALL) != static_cast<ssize_t>(sizeof claim) ||
        Frame::from_bytes(claim).op() != Op::Claim)
        throw std::runtime_error("bare VM: no claim from the device");
}

int BareVm::readl(std::uint64_t addr, std::uint32_t& value) {
    const Frame req = Frame::mmio_request(Op::Read, 0, addr, 4, 0, tag_++);
    if (send_all(main_fd_, req.data(), kBlockSize) != 0) return -ECONNRESET;
    std::byte in[kBlockSize];
    if (::recv(main_fd_, in, sizeof in, MSG_WAITALL) != static_cast<ssize_t>(sizeof in)) return -ECONNRESET;
    const Frame reply = Frame::from_bytes(in);
    if (reply.error()) return -EIO;
    std::memcpy(&value, reply.payload(), 4);
    return 0;
}

int BareVm::read_many(std::span<const std::uint64_t> addrs, std::span<std::uint64_t> out, unsigned window) {
    std::vector<std::byte> tx(static_cast<std::size_t>(window) * kBlockSize), rx(64 * 1024);
    std::size_t issued = 0, done = 0, have = 0;
    const std::uint32_t first = tag_;
    int result = 0;
    while (done < addrs.size()) {
        std::size_t n = 0;
        for (; issued < addrs.size() && issued - done < window; ++issued, ++n) {
            const Frame f = Frame::mmio_request(Op::Read, 0, addrs[issued], 4, 0, tag_++);
            std::memcpy(tx.data() + n * kBlockSize, f.data(), kBlockSize);
        }
        if (n > 0 && send_all(main_fd_, tx.data(), n * kBlockSize) != 0) return -ECONNRESET;
        const ssize_t k = ::recv(main_fd_, rx.data() + have, rx.size() - have, 0);
        if (k <= 0) return -ECONNRESET;
        have += static_cast<std::size_t>(k);
        std::size_t off = 0;
        for (; have - off >= kBlockSize; off += kBlockSize, ++done) {
            const Frame f = Frame::from_bytes(rx.data() + off);
            if (f.error()) result = -EIO;
            const std::size_t i = f.tag() - first;  // replies echo the tag: it says which read this was
            if (i >= out.size()) continue;
            out[i] = 0;
            std::memcpy(&out[i], f.payload(), 4);
        }
        std::memmove(rx.data(), rx.data() + off, have - off);
        have -= off;
    }
    return result;
}

}  // namespace coreio::bench
