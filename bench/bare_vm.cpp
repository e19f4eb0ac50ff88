#include "bare_vm.hpp"

#include <cerrno>
#include <stdexcept>
#include <vector>

#include "coreio/frame.hpp"
#include "loopback.hpp"

namespace coreio::bench {

BareVm::BareVm() { listen_fd_ = listen_loopback(port_, "bare VM"); }

BareVm::~BareVm() {
    for (int fd : {main_fd_, dma_fd_, listen_fd_})
        if (fd >= 0) ::close(fd);
}

void BareVm::accept_device() {
    main_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    dma_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (main_fd_ < 0 || dma_fd_ < 0) throw std::runtime_error("bare VM: accept failed");
    set_nodelay(main_fd_);
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
