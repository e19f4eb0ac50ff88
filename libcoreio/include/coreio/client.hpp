// coreio::Client: one CoreIO connection pair (main + DMA) to one VM.
// Many Clients may live in one process, each talking to its own VM.
// The C API (coreio.h) is a thin layer over one default Client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <sys/select.h>

#include "coreio/export.hpp"
#include "coreio/frame.hpp"

namespace asio {
class io_context;
}

namespace coreio {

/// Which of a client's two TCP connections a frame crossed.
enum class Channel : std::uint8_t { Main = 0, Dma = 1 };
/// Which way a frame went, seen from the end that observes it.
enum class Direction : std::uint8_t { Received = 0, Sent = 1 };

/// Observes every frame an end sends or receives (whole declared length),
/// e.g. to record a trace. Called on the thread that moves the bytes.
class COREIO_EXPORT FrameTap {
public:
    virtual ~FrameTap() = default;
    virtual void on_frame(Channel channel, Direction direction, std::span<const std::byte> frame) = 0;
    /// A connection opened (`up`) or closed.
    virtual void on_connection(Channel channel, bool up) { (void)channel, (void)up; }
};

/// A device model's MMIO handlers for one range. Return 0 on success, non-zero
/// for a bus error (the reply carries the error bit). Addresses are full
/// guest-physical addresses. Called from the thread that runs the loop.
class COREIO_EXPORT MmioHandler {
public:
    virtual ~MmioHandler() = default;
    virtual int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) = 0;
    virtual int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) = 0;
    /// A single write with the wire's byte-enable mask (bit i = data byte i is
    /// valid). The library calls this one; the default ignores the mask and
    /// calls write(). Override it where partial writes matter (bus strobes).
    virtual int write_masked(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags,
                             std::uint32_t byte_mask) {
        (void)byte_mask;
        return write(addr, len, buf, flags);
    }
    /// Pair accesses; the defaults call read/write at addr and at addr + len.
    virtual int read_pair(std::uint64_t addr, std::size_t len, void* buf1, void* buf2, unsigned flags);
    virtual int write_pair(std::uint64_t addr, std::size_t len, const void* buf1, const void* buf2,
                           unsigned flags);
    /// The VM reset the device (RESET frame). Default: nothing.
    virtual void reset() {}
};

/// Completion of a non-blocking DMA: 0, -EFAULT (a chunk faulted), -ECONNRESET
/// (connection lost or disconnect()).
using DmaCompletion = std::function<void(int result)>;
/// Receives one line per protocol error or notable event.
using LogFunction = std::function<void(std::string_view message)>;

struct ClientOptions {
    /// Where protocol errors are reported; default: one line on stderr.
    LogFunction log;
    /// Blocking DMA gives up with -ETIMEDOUT after this long; 0 = wait forever.
    std::chrono::milliseconds dma_timeout{0};
    /// Longest frame accepted from the VM, in 64-byte blocks (1..256).
    std::size_t max_frame_blocks = kMaxBlocks;
    /// Observes every frame (not owned; must outlive the connection).
    FrameTap* tap = nullptr;
};

/// Errors are negative errno values, listed per call. "Lost" below means the
/// connection ended under the client: -ECONNRESET (the VM closed it, or a
/// socket error) or -EPROTO (the VM broke the framing), until disconnect().
class COREIO_EXPORT Client {
public:
    explicit Client(ClientOptions options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Opens the main then the DMA connection to "host[:port]" (port 4800 by
    /// default). Returns 0, -EINVAL (bad target, host not resolved), -EISCONN
    /// (already connected), or the errno of the failed socket()/connect()
    /// (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, -EMFILE, ...).
    int connect(std::string_view target);
    /// Closes both connections; pending DMA completes with -ECONNRESET;
    /// registrations are forgotten.
    void disconnect();
    bool connected() const;

    /// Claims range rid (0..7) and routes its MMIO to `handler` (not owned).
    /// Returns 0, -EINVAL (rid >= 8), -EBUSY (claimed), -ENOTCONN, or lost.
    int register_range(unsigned rid, MmioHandler& handler);

    /// Sets IRQ line `line` of range `rid`; sent at once, only on change.
    /// Thread-safe. Returns 0, -EINVAL (rid or line >= 8), -ENOTCONN, or lost.
    int irq_update(unsigned rid, unsigned line, bool level);

    /// Starts a DMA; `done` runs from the loop when every chunk has a reply.
    /// `buf` must stay valid until then. Returns 0, or (then `done` is not
    /// called) -EINVAL (mid >= 8, sid >= 16, empty buf, address wraps),
    /// -ENOTCONN, or lost. Flag bits other than kFlag* are dropped. Thread-safe.
    int dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags,
                 DmaCompletion done);
    int dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf, unsigned flags,
                  DmaCompletion done);
    /// Blocking forms: the errors above, or the transfer's result: 0, -EFAULT,
    /// -ECONNRESET, -ETIMEDOUT (ClientOptions::dma_timeout), -ENOMEM (no
    /// eventfd). Safe inside an MMIO handler (not re-entered while it waits).
    int dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags);
    int dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf, unsigned flags);

    /// select()-style loop: add this client's fds (returns the new nfds) /
    /// process what select found (returns 0); both: -ENOTCONN, or lost.
    int prepare_fds(int nfds, fd_set* readfds, fd_set* writefds);
    int process_fds(fd_set* readfds, fd_set* writefds);
    /// Runs the select loop for `usec` microseconds (negative: until an error).
    /// Returns 0 when the time is up, -ENOTCONN, lost, or a ppoll() errno.
    int run_for(long long usec);

    /// Drives this client from an Asio io_context instead (no select loop);
    /// `on_close(result)` runs once when the VM closes or an error occurs.
    void attach(asio::io_context& io, std::function<void(int)> on_close = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace coreio
