// The physical limit a CoreIO client library is measured against: a device
// written straight on POSIX sockets with nothing but the frame codec. One recv
// per batch of frames, one send per batch of replies, no other work.
//
// It can also wait the way any library that watches more than one descriptor
// must (Wait::Epoll: epoll_wait, then a non-blocking recv). The difference
// between the two styles is the floor of a multiplexing device's overhead.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "coreio/frame.hpp"

namespace coreio::bench {

/// Offset of the bench devices' "kick" register: a write of N raises and
/// lowers IRQ line 0 of range 0 N times from inside the handler.
inline constexpr std::uint64_t kKickOffset = 0xff0;

class BareResponder {
public:
    /// How serve() waits for MMIO requests.
    enum class Wait {
        Recv,   ///< blocks in recv() on the main socket: one system call per batch
        Epoll,  ///< blocks in epoll_wait(), then recv(MSG_DONTWAIT): two per batch
    };

    /// Connects main then DMA to 127.0.0.1:port and claims range 0 at `base`
    /// (a 4 KiB register file). Throws std::runtime_error on failure.
    BareResponder(std::uint16_t port, std::uint64_t base, Wait wait = Wait::Recv);
    ~BareResponder();

    /// Serves MMIO on a background thread until destroyed.
    void start();
    /// Blocking DMA read of buf.size() bytes at addr (<= 1024 chunks in flight).
    /// Returns 0 or -EFAULT.
    int dma_read(std::uint64_t addr, std::span<std::byte> buf);
    /// Blocking DMA write of buf to addr, the same way. Returns 0 or -EFAULT.
    int dma_write(std::uint64_t addr, std::span<const std::byte> buf);

private:
    void serve();
    ssize_t receive(std::byte* p, std::size_t n);
    int dma(Op op, std::uint64_t addr, std::span<std::byte> buf);

    int main_fd_ = -1;                  // main connection
    int dma_fd_ = -1;                   // DMA connection
    int epoll_fd_ = -1;                 // Wait::Epoll: watches main_fd_
    std::uint64_t base_;                // guest-physical base of range 0
    std::vector<std::byte> regs_;       // 4 KiB register file
    std::atomic<bool> stop_{false};     // ends serve()
    std::thread thread_;                // runs serve()
};

}  // namespace coreio::bench
