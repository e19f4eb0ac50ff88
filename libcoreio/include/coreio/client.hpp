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

namespace coreio {

/// Which of a client's two TCP connections a frame crossed.
enum class Channel : std::uint8_t { Main = 0, Dma = 1 };
/// Which way a frame went, seen from the end that observes it.
enum class Direction : std::uint8_t { Received = 0, Sent = 1 };

/// One frame of a TapBatch (its first 64-byte block, as on_frame() gets).
struct TapFrame {
    Channel channel;
    Direction direction;
    Frame frame;
};

/// Frames that crossed in one batch, in wire order: what one receive brought
/// in, interleaved with what was sent in answer.
struct TapBatch {
    std::span<const TapFrame> frames;
    /// When the received frames came in and when the sent ones went out (the
    /// batch's replies): a reply's latency is the time between, not zero.
    std::chrono::steady_clock::time_point received_at, sent_at;
};

/// Observes every frame an end sends or receives (whole declared length),
/// e.g. to record a trace. Called on the thread that moves the bytes.
class COREIO_EXPORT FrameTap {
public:
    virtual ~FrameTap() = default;
    virtual void on_frame(Channel channel, Direction direction, std::span<const std::byte> frame) = 0;
    /// A connection opened (`up`) or closed.
    virtual void on_connection(Channel channel, bool up) { (void)channel, (void)up; }
    /// A batch (a ClientSession gives each receive's frames as one, so that a
    /// tap may take one lock for all and read no clock). The default calls
    /// on_frame() for each, at the time of this call.
    virtual void on_frames(const TapBatch& batch) {
        for (const TapFrame& f : batch.frames) on_frame(f.channel, f.direction, f.frame.bytes());
    }
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

/// The blocking-DMA timeout the environment asks for, as the C API reads it:
/// COREIO_DMA_TIMEOUT_MS milliseconds; unset, malformed or negative: 0 (none).
COREIO_EXPORT std::chrono::milliseconds dma_timeout_from_env();

/// Every call that returns int returns 0 on success or a negative errno;
/// the codes each call can return are listed beside it. "The connection's
/// error" is what ended it: -ECONNRESET (the VM closed it or a socket
/// failed) or -EPROTO (the VM sent a frame longer than max_frame_blocks);
/// it is returned until disconnect() or the next connect().
class COREIO_EXPORT Client {
public:
    explicit Client(ClientOptions options = {});
    /// Disconnects.
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Opens the main then the DMA connection to "host[:port]" (port
    /// net::kDefaultPort = 4800 by default; "[v6addr]:port" for IPv6), both
    /// with TCP_NODELAY. Returns 0, -EISCONN (already connected), -EINVAL
    /// (malformed target, or a host name that does not resolve), or the
    /// error of the failed connect(2): -ECONNREFUSED, -ETIMEDOUT,
    /// -ENETUNREACH, -EHOSTUNREACH, ... (a connection lost earlier is
    /// closed first).
    int connect(std::string_view target);
    /// Closes both connections; pending DMA completes with -ECONNRESET;
    /// registrations are forgotten. A handler still running on another
    /// thread finishes in the old session: its reply is dropped.
    void disconnect();
    bool connected() const;

    /// Claims range rid (0..7) and routes its MMIO to `handler` (not owned).
    /// Returns 0, -EINVAL (rid >= 8), -EBUSY (already claimed), -ENOTCONN
    /// (never connected or disconnected), or the connection's error.
    int register_range(unsigned rid, MmioHandler& handler);

    /// Sets IRQ line `line` of range `rid`; sent at once, only on change.
    /// Thread-safe. Returns 0, -EINVAL (rid >= 8 or line >= 8), -ENOTCONN,
    /// or the connection's error.
    int irq_update(unsigned rid, unsigned line, bool level);

    /// Starts a DMA; `done` runs from the loop when every chunk has a reply
    /// (with 0, -EFAULT when the VM answered with an error, -ECONNRESET when
    /// the connection ended first). `buf` must stay valid until then.
    /// Thread-safe. Returns 0 or (then `done` is not called): -EINVAL (empty
    /// buffer, mid >= 8, sid >= 16, address range wraps), -ENOTCONN, or
    /// the connection's error. Flag bits other than kFlag* are dropped.
    int dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags,
                 DmaCompletion done);
    int dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf, unsigned flags,
                  DmaCompletion done);
    /// Blocking forms: return the transfer's result: 0, -EFAULT, -ECONNRESET
    /// (the connection ended or was replaced by disconnect()/connect() while
    /// waiting), -ETIMEDOUT (options.dma_timeout passed; the transfer is
    /// cancelled and `buf` is not touched again), -ENOMEM (no eventfd for
    /// this thread), or the start errors above. Safe inside an MMIO handler
    /// (MMIO handlers are not re-entered while it waits).
    int dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags);
    int dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf, unsigned flags);

    /// select()-style loop: prepare_fds() adds this client's event fd to
    /// `readfds` and returns the new nfds (or -ENOTCONN / the connection's
    /// error); process_fds() handles what select() found and flushes queued
    /// output: 0, -ENOTCONN, or the connection's error.
    int prepare_fds(int nfds, fd_set* readfds, fd_set* writefds);
    int process_fds(fd_set* readfds, fd_set* writefds);
    /// Runs the loop for `usec` microseconds (negative: until an error).
    /// Returns 0 when the time is up, -ENOTCONN, the connection's error, or
    /// the -errno of a failed epoll_wait(2). A call of 1 ms or more waits in
    /// io_uring where the kernel has it (one system call per request waits
    /// and receives); COREIO_IO_URING=0 in the environment keeps it on epoll.
    int run_for(long long usec);

    /// For any other event loop (see coreio/asio_driver.hpp): one fd, owned by
    /// the Client and valid for its whole life (connected or not), that is
    /// readable whenever process_events() has work: input, room to send
    /// queued output, a wake-up from another thread, a lost connection.
    int event_fd() const;
    /// Does that work without blocking. Returns 0, -ENOTCONN (not
    /// connected), or the connection's error.
    int process_events();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace coreio
