// The physical limit of a VM's driver path: a VM peer written straight on
// POSIX sockets with nothing but the frame codec. The calling thread sends a
// request and receives its reply itself (two thread wake-ups per round trip:
// the device's and the caller's); pipelined reads send each refill in one
// write and take each recv's batch of replies at once.
#pragma once

#include <cstdint>
#include <span>

namespace coreio::bench {

class BareVm {
public:
    /// Listens on 127.0.0.1 (an ephemeral port). Throws std::runtime_error on failure.
    BareVm();
    ~BareVm();
    BareVm(const BareVm&) = delete;
    BareVm& operator=(const BareVm&) = delete;

    std::uint16_t port() const { return port_; }
    /// Accepts a device's main and DMA connections and reads its claim of range 0.
    void accept_device();
    /// A 4-byte MMIO read at addr; returns 0 or -EIO / -ECONNRESET.
    int readl(std::uint64_t addr, std::uint32_t& value);
    /// 4-byte reads of every address, `window` outstanding; returns 0 or the first error.
    int read_many(std::span<const std::uint64_t> addrs, std::span<std::uint64_t> out, unsigned window);

private:
    int listen_fd_ = -1;
    int main_fd_ = -1;
    int dma_fd_ = -1;
    std::uint16_t port_ = 0;
    std::uint32_t tag_ = 0;
};

}  // namespace coreio::bench
