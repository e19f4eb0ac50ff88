// VmSession: the VM's side of one connected CoreIO client, sans-I/O.
// Bytes from the client's main and DMA connections go in through receive();
// frames for the client come out of per-channel outbound buffers that the
// transport drains. It never touches a socket or a clock, so tests and fuzzers
// drive it directly, byte by byte if they like.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "coreio/client.hpp"
#include "coreio/frame.hpp"
#include "coreio/mockvm/guest_memory.hpp"

namespace coreio::mockvm {

class VmSession;

/// What a session reports to its owner (the Vm, or a test).
class VmSessionEvents {
public:
    virtual ~VmSessionEvents() = default;
    /// The client claimed range rid (0..7) with RGN_CLAIM.
    virtual void on_claim(VmSession& session, unsigned rid) = 0;
    /// The client changed IRQ line `line` of range rid to `level`.
    virtual void on_irq(VmSession& session, unsigned rid, unsigned line, bool level) = 0;
    /// A reply to a VM-originated request (READ, READP, WRITEA, WRITEAP, PING)
    /// arrived on the main connection; match it by tag, w1 and w2.
    virtual void on_reply(VmSession& session, const Frame& reply) = 0;
};

/// Counters of one session; readable from any thread.
struct SessionCounters {
    std::atomic<std::uint64_t> frames_in{0};        // valid and malformed frames received, both channels
    std::atomic<std::uint64_t> frames_out{0};       // frames queued for sending, both channels
    std::atomic<std::uint64_t> dma_chunks{0};       // DMA requests served (reads and writes)
    std::atomic<std::uint64_t> dma_faults{0};       // DMA requests answered with the error bit
    std::atomic<std::uint64_t> protocol_errors{0};  // malformed or unexpected frames
    std::atomic<std::uint64_t> echoed_posted{0};    // posted writes the client echoed (unclaimed on its side)
};

/// One client's protocol state on the VM side: frame splitting, validation,
/// claims, IRQ levels and DMA serving. Channels are independent: the transport
/// may feed Main and Dma from different threads as long as each channel is fed
/// (and its outbound drained) by one thread at a time.
class VmSession {
public:
    /// `memory` serves DMA; `log` gets one line per protocol error (may be empty);
    /// `tap` (may be null) sees every frame; `id` names the client in log lines.
    VmSession(GuestMemory& memory, VmSessionEvents& events, LogFunction log = {}, FrameTap* tap = nullptr,
              unsigned id = 0);
    VmSession(const VmSession&) = delete;
    VmSession& operator=(const VmSession&) = delete;

    /// Feeds bytes the client sent on `channel`. Frames are validated; malformed
    /// ones are logged and dropped (a DMA request with a bad size is answered
    /// with the error bit, so the client does not wait forever). Returns false
    /// when the stream can no longer be split into frames (declared length over
    /// the limit): the transport should close the client.
    bool receive(Channel channel, std::span<const std::byte> bytes);

    /// Queues frames to send to the client on `channel`.
    void send(Channel channel, const Frame& frame);
    void send(Channel channel, std::span<const Frame> frames);

    /// Bytes waiting to be sent on `channel`; valid until the next call on it.
    std::span<const std::byte> outbound(Channel channel) const;
    /// Drops the first n outbound bytes of `channel` (they were sent).
    void consume(Channel channel, std::size_t n);
    /// Moves all outbound bytes of `channel` into `into` (its old contents are
    /// dropped, its capacity reused), so a transport can write them while new
    /// frames queue up, without copying or allocating in the steady state.
    void take_outbound(Channel channel, std::vector<std::byte>& into);

    /// Ranges this client claimed, bit rid set per claim.
    std::uint8_t claimed_mask() const { return claimed_.load(std::memory_order_relaxed); }
    /// Current level of IRQ line `line` of range rid as this client last set it.
    bool irq_level(unsigned rid, unsigned line) const;
    /// This client's id (as given at construction).
    unsigned id() const { return id_; }
    const SessionCounters& counters() const { return counters_; }
    /// Longest frame accepted, in 64-byte blocks (default 256: the protocol's maximum).
    void set_max_frame_blocks(std::size_t blocks);

private:
    void on_main_frame(const Frame& f);
    void on_dma_frame(const Frame& f);
    void serve_dma(Frame f);
    void protocol_error(Channel channel, const std::string& what, const Frame& f);
    void tap_frame(Channel channel, Direction direction, const std::byte* p);
    static unsigned index(Channel c) { return c == Channel::Main ? 0u : 1u; }

    GuestMemory& memory_;
    VmSessionEvents& events_;
    LogFunction log_;
    FrameTap* tap_;
    unsigned id_;
    std::array<FrameReader, 2> readers_;               // per channel: splits the byte stream
    std::array<std::vector<std::byte>, 2> out_;        // per channel: bytes to send
    std::array<std::size_t, 2> out_head_{0, 0};        // per channel: bytes of out_ already sent
    std::atomic<std::uint8_t> claimed_{0};             // bit per claimed rid
    std::array<std::atomic<std::uint8_t>, kNumRanges> irq_{};  // per rid: bit per line at level 1
    SessionCounters counters_;
};

}  // namespace coreio::mockvm
