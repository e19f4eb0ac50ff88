// coreio::ClientSession: the client end of the CoreIO protocol without I/O.
//
// The transport feeds the bytes it received on a connection to receive() and
// sends what pending() returns, then calls consume(). The session never touches
// a socket, a clock or a thread: coreio::Client drives it over TCP, tests and
// fuzzers drive it with scripted bytes. It is not thread-safe (Client locks it).
//
// Malformed input (see PROTOCOL.md) is logged as one line through the log
// callback, "<channel> connection: <what>", e.g.
//   "main connection: unknown opcode 0x13 (w1[7:0])"
// and then:
//   - a VM request that expects a reply (READ, READP, WRITEA, WRITEAP with bit
//     31 clear) whose size or pair size is out of range is answered with the
//     error bit set (the request echoed, 64 bytes), so the VM never waits for
//     a reply that cannot come; the device model is not called;
//   - any other frame with a bad field (unknown opcode, IRQ fields, a posted
//     write's size) or one this end does not accept (CLAIM, IRQ_UPDATE, a DMA
//     reply matching no request, ...) is skipped; the stream continues;
//   - a declared length over max_frame_blocks poisons that stream (the frame
//     boundary can no longer be trusted): receive() returns -EPROTO and the
//     transport must close the connection;
//   - a stream that ends inside a frame is reported by connection_closed().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "coreio/byte_queue.hpp"
#include "coreio/client.hpp"
#include "coreio/export.hpp"
#include "coreio/frame.hpp"

namespace coreio {

/// The protocol settings of a session (the part of ClientOptions it uses).
struct SessionOptions {
    /// Receives one line per protocol error; empty: "coreio: <line>" on stderr.
    LogFunction log;
    /// Longest frame accepted from the VM, in 64-byte blocks (1..256).
    std::size_t max_frame_blocks = kMaxBlocks;
    /// Observes every frame queued for sending and every frame received (first block).
    FrameTap* tap = nullptr;
    /// The owner's clock (the session reads none itself). With it, the tap gets
    /// what each receive() brought in and sent as one TapBatch, timed by it;
    /// without, frame by frame as they pass.
    std::chrono::steady_clock::time_point (*clock)() = nullptr;
    /// With a clock: receive() keeps its batch of tapped frames for
    /// deliver_tap(), which the owner calls once it has sent the replies:
    /// recording then happens off the reply path.
    bool defer_tap = false;
};

/// Writes "coreio: <message>\n" to stderr in one call (the default log).
COREIO_EXPORT void log_to_stderr(std::string_view message);

class COREIO_EXPORT ClientSession {
public:
    /// DMA chunks allowed in flight at once (PROTOCOL.md); a chunk's packet id
    /// (w0[63:32]) is its slot, 0..kMaxOutstanding-1, as in the original library.
    static constexpr std::size_t kMaxOutstanding = 1024;
    /// The access flag bits a DMA request may carry (IFETCH | PRIV | SECURE);
    /// other bits of `flags` are dropped, as the original library does.
    static constexpr unsigned kDmaFlagMask = kFlagIfetch | kFlagPriv | kFlagSecure;
    /// Chunk boundary: no DMA chunk crosses a multiple of this.
    static constexpr std::size_t kChunkAlign = 32;

    explicit ClientSession(SessionOptions options = {});
    ~ClientSession();
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;

    // ---- input ------------------------------------------------------------

    /// Handles every whole frame in `bytes` received on `channel` (partial
    /// frames are kept for the next call), queueing replies. Runs DMA
    /// completions that became due. Returns 0, -EPROTO when the stream is
    /// unusable (close the connection), -EDEADLK when called for the main
    /// channel from inside an MMIO handler (MMIO handlers are never re-entered).
    int receive(Channel channel, std::span<const std::byte> bytes);

    /// The connection `channel` ended (EOF or error): logs a frame cut short,
    /// completes every DMA with -ECONNRESET and refuses new work until reset().
    void connection_closed(Channel channel);

    /// Starts over for a new connection pair: forgets claims, IRQ levels,
    /// partial frames and unsent bytes (pending DMA completes with -ECONNRESET).
    void reset();

    /// True after connection_closed() until reset().
    bool closed() const { return closed_; }
    /// True while an MMIO handler runs (main-channel input must wait).
    bool in_handler() const { return dispatching_; }

    // ---- output -----------------------------------------------------------

    /// Bytes queued for `channel`, oldest first; valid until the next call.
    std::span<const std::byte> pending(Channel channel) const;
    /// Drops the first `n` bytes of pending(channel) (they were sent).
    void consume(Channel channel, std::size_t n);
    /// True when either channel has bytes to send.
    bool has_pending() const;

    // ---- commands (the device model's side) --------------------------------

    /// Claims range `rid` for `handler` (not owned) and queues RGN_CLAIM.
    /// Returns 0, -EINVAL (rid >= 8), -EBUSY (already claimed), -ENOTCONN (closed).
    int claim(unsigned rid, MmioHandler& handler);

    /// Queues IRQ_UPDATE when line `line` of range `rid` changes level.
    /// Returns 0 (also when nothing changed), -EINVAL, -ENOTCONN (closed).
    int irq_update(unsigned rid, unsigned line, bool level);

    /// Starts a DMA of `len` bytes at `addr` (op Read or WriteAck). `buf` must
    /// stay valid until `done` runs (or cancel). Chunks are queued now (up to
    /// the window). `handle`, when given, receives an id for dma_cancel().
    /// `flags` is masked with kDmaFlagMask. Returns 0, -EINVAL (mid >= 8,
    /// sid >= 16, len 0, buf null, address wraps, op not Read/WriteAck),
    /// -ENOTCONN (closed); `done` is then not called.
    int dma_start(Op op, unsigned mid, unsigned sid, std::uint64_t addr, std::byte* buf, std::size_t len,
                  unsigned flags, DmaCompletion done, std::uint64_t* handle = nullptr);

    /// Forgets a transfer (e.g. a blocking DMA that timed out): its buffer is
    /// never touched again and its completion never runs; chunks in flight
    /// are matched and dropped. Returns 0 or -ENOENT (already complete).
    int dma_cancel(std::uint64_t handle);

    /// DMA chunks in flight (sent, no reply yet).
    std::size_t dma_in_flight() const { return kMaxOutstanding - free_slots_.size(); }
    /// Transfers not yet completed (including cancelled ones with chunks in flight).
    std::size_t dma_transfers() const { return live_transfers_; }

    /// Gives the tap the frames the last receive() kept (SessionOptions::defer_tap):
    /// those received with the time the receive() began, those sent with the
    /// time it ended (the owner sends them then).
    void deliver_tap() { flush_tap(); }

    /// Changes the tap (e.g. a trace opened at connect); nullptr: none. Frames
    /// the old tap has not been given yet go to it first.
    void set_tap(FrameTap* tap) {
        flush_tap();
        options_.tap = tap;
    }

    /// Unsent bytes per channel above which the backlog handler runs.
    static constexpr std::size_t kDefaultBacklogLimit = 32 * 1024;
    /// `handler(Channel::Main)` runs when the main channel's unsent bytes pass
    /// `limit` while the device model adds to them: inside an MMIO handler or
    /// from a command (e.g. IRQ edges raised in a loop). It sends
    /// pending(Channel::Main), blocking if need be, and consume()s it; the
    /// session goes on after the call. It must not call receive(), reset() or
    /// connection_closed(). Without one (the default) the queue simply grows.
    /// Not for the DMA channel (bounded by the window) nor for the replies of
    /// one receive() batch (bounded by its input): blocking there could stall
    /// a VM that waits for this end to read.
    void set_backlog_handler(std::function<void(Channel)> handler, std::size_t limit = kDefaultBacklogLimit) {
        on_backlog_ = std::move(handler);
        backlog_limit_ = limit;
    }

private:
    struct Transfer;      // one DMA transfer
    struct Slot;          // one chunk in flight
    struct Ready;         // a completion waiting to run

    void on_frame(Channel ch, const Frame& f);
    void on_mmio(Frame f);
    void on_malformed(Channel ch, FrameError e, const Frame& f);
    void on_dma_reply(const Frame& f);
    void deliver_reset();
    void send(Channel ch, const Frame& f);
    /// Shows `f` to the tap: at once outside receive(), else batched until it ends.
    /// (The checks inline: without a tap, every frame pays one test, not a call.)
    void tap_frame(Channel ch, Direction d, const Frame& f) {
        if (options_.tap != nullptr) tap_frame_to(*options_.tap, ch, d, f);
    }
    void tap_frame_to(FrameTap& tap, Channel ch, Direction d, const Frame& f);
    /// Gives the tap the batch so far: its received frames came in at tap_since_, the
    /// sent ones go out at tap_until_ once its receive() ended, else now.
    void flush_tap() {
        if (!tap_batch_.empty()) flush_tap_batch();
    }
    void flush_tap_batch();
    /// Sends `f` back as received, but 64 bytes long (all a client ever sends).
    void echo(Channel ch, Frame f);
    void refill_window();
    void finish(std::uint32_t index, int result);
    void fail_all_dma(int result);
    void run_completions();
    void report(Channel ch, FrameError e, const Frame& f);
    void log_line(Channel ch, std::string_view what);

    SessionOptions options_;
    std::function<void(Channel)> on_backlog_;
    std::size_t backlog_limit_ = kDefaultBacklogLimit;
    ByteQueue out_[2];  // per channel: bytes to send
    FrameReader reader_[2];
    bool poisoned_[2] = {false, false};  // a stream cut beyond repair (TooLong)
    bool closed_ = false;
    bool dispatching_ = false;     // inside an MMIO handler (no re-entry)
    bool receiving_ = false;       // inside receive()
    bool reset_deferred_ = false;  // RESET arrived on the DMA channel during a handler
    MmioHandler* handlers_[kNumRanges] = {};
    std::uint8_t irq_levels_[kNumRanges] = {};  // last level sent, one bit per line

    // DMA state: pooled, so the hot path never allocates once warmed up.
    std::vector<Transfer> transfers_;       // pool, indexed by transfer id
    std::vector<std::uint32_t> free_transfers_;
    std::uint32_t queue_head_;              // transfers with unsent chunks (linked through Transfer::next)
    std::uint32_t queue_tail_;
    std::size_t live_transfers_ = 0;
    std::unique_ptr<Slot[]> slots_;         // kMaxOutstanding chunks in flight
    std::vector<std::uint16_t> free_slots_; // stack of unused slot indices
    std::vector<Ready> ready_;              // completions due, run after the batch
    std::vector<TapFrame> tap_batch_;       // frames of this receive() not yet shown to the tap
    std::chrono::steady_clock::time_point tap_since_{};  // when that receive() began
    std::chrono::steady_clock::time_point tap_until_{};  // when it ended, if tap_ended_
    bool tap_ended_ = false;                             // the batch waits for deliver_tap()
    std::size_t ready_head_ = 0;
};

}  // namespace coreio
