// coreio::VmSession: the VM's side of one connected CoreIO client, sans-I/O.
// Bytes from the client's main and DMA connections go in through receive();
// frames for the client come out of per-channel outbound buffers that the
// transport drains. Inside: frame splitting and validation, the table of VM
// requests waiting for their replies (matched by is_reply_to: tag, w1, w2),
// claims, IRQ line levels and edge counts, and DMA served from a DmaMemory.
// It never touches a socket, a clock or a lock, so the mock VM, the
// replayer's links and tests all drive this one engine.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "coreio/byte_queue.hpp"
#include "coreio/client.hpp"
#include "coreio/export.hpp"
#include "coreio/frame.hpp"

namespace coreio {

/// Guest memory as the VM session serves DMA from it.
class COREIO_EXPORT DmaMemory {
public:
    virtual ~DmaMemory() = default;
    /// A DMA read chunk (request.size() bytes at request.address(); IOMMU ids
    /// in request.mid()/sid()): fill `out` and return true, or false for a fault.
    virtual bool dma_read(const Frame& request, std::span<std::byte> out) = 0;
    /// A DMA write chunk: request.size() bytes of request.payload(), byte i
    /// written only where bit i of request.byte_mask() is set. False: a fault.
    virtual bool dma_write(const Frame& request) = 0;
};

class VmSession;

/// What a session reports to its owner. Called from inside receive(), on the
/// thread feeding the channel the frame came in on.
class COREIO_EXPORT VmSessionEvents {
public:
    virtual ~VmSessionEvents() = default;
    /// The client claimed range rid (0..7) with RGN_CLAIM.
    virtual void on_claim(VmSession& session, unsigned rid) { (void)session, (void)rid; }
    /// The client set IRQ line `line` of range rid to `level`; `rising` when it went 0 -> 1.
    virtual void on_irq(VmSession& session, unsigned rid, unsigned line, bool level, bool rising) {
        (void)session, (void)rid, (void)line, (void)level, (void)rising;
    }
    /// The reply to the request sent with request(frame, cookie) arrived.
    virtual void on_reply(VmSession& session, std::uint64_t cookie, const Frame& reply) = 0;
    /// A DMA chunk was served (after DmaMemory ran; `reply` is what goes back).
    virtual void on_dma(VmSession& session, const Frame& request, const Frame& reply) {
        (void)session, (void)request, (void)reply;
    }
    /// A malformed or unexpected frame, or a reply that answers no pending
    /// request; `what` names the field and value. The frame was dropped.
    virtual void on_protocol_error(VmSession& session, Channel channel, std::string_view what, const Frame& frame) {
        (void)session, (void)channel, (void)what, (void)frame;
    }
};

/// A snapshot of one session's counters (VmSession::counters(), from any thread).
struct VmSessionCounters {
    std::uint64_t frames_in = 0;        // valid and malformed frames received, both channels
    std::uint64_t frames_out = 0;       // frames queued for sending, both channels
    std::uint64_t dma_chunks = 0;       // DMA requests served (reads and writes)
    std::uint64_t dma_faults = 0;       // DMA requests answered with the error bit
    std::uint64_t protocol_errors = 0;  // malformed or unexpected frames, unmatched replies
    std::uint64_t echoed_posted = 0;    // posted writes the client echoed (unclaimed on its side)
};

struct VmSessionOptions {
    /// One line per protocol error, "client ID CHANNEL: what; frame dropped: ...";
    /// may be empty. Called from inside receive(): a caller holding a lock
    /// there should collect the lines and log them after unlocking.
    LogFunction log;
    /// Sees every frame received and queued (may be null).
    FrameTap* tap = nullptr;
    /// Names the client in log lines.
    unsigned id = 0;
    /// Longest frame the stream may declare, in 64-byte blocks (1..256); a
    /// longer one makes the stream unusable (receive() returns false).
    std::size_t max_stream_blocks = kMaxBlocks;
    /// Longest frame accepted as valid; longer ones (within the stream limit)
    /// are consumed and reported as protocol errors. A client's frames are one
    /// block, so a strict checker (the replayer) sets 1.
    std::size_t max_frame_blocks = kMaxBlocks;
};

/// One client's protocol state on the VM side. Channels are independent: the
/// transport may feed Main and Dma from different threads as long as each
/// channel is fed (and its outbound drained) by one thread at a time, and
/// request()/cancel() are serialised with the Main channel.
class COREIO_EXPORT VmSession {
public:
    VmSession(DmaMemory& memory, VmSessionEvents& events, VmSessionOptions options = {});
    VmSession(const VmSession&) = delete;
    VmSession& operator=(const VmSession&) = delete;

    /// Feeds bytes the client sent on `channel`, split at any point. Frames are
    /// validated; malformed ones are reported and dropped (a DMA request with a
    /// bad size is answered with the error bit, so the client does not wait
    /// forever). Returns false when the stream can no longer be split into
    /// frames (declared length over the stream limit): close the client.
    bool receive(Channel channel, std::span<const std::byte> bytes);

    /// Queues a VM request (MMIO access, PING, RESET) on the main channel.
    /// If it expects a reply it waits in the pending table under `cookie`
    /// until on_reply() or cancel().
    void request(const Frame& frame, std::uint64_t cookie = 0);
    /// As request(), for a transport that hands the frame to the client itself
    /// (in process: straight into its ClientSession, no byte stream): the
    /// request is tapped, counted and waits for its reply, but nothing is
    /// queued on outbound(Main). Saves a 64-byte copy per request.
    void request_delivered(const Frame& frame, std::uint64_t cookie = 0);
    /// Forgets the pending request sent with `cookie` (its caller gave up);
    /// a reply arriving later is an unmatched reply. False if none was pending.
    bool cancel(std::uint64_t cookie);
    /// Forgets every pending request (the connection is gone).
    void cancel_all();
    /// True while the request sent with `cookie` waits for its reply.
    bool pending(std::uint64_t cookie) const;
    /// Requests waiting for their replies.
    std::size_t pending_count() const { return pending_.size - pending_.dead; }

    /// Queues frames to send to the client on `channel` as they are.
    void send(Channel channel, const Frame& frame);

    /// Bytes waiting to be sent on `channel`; valid until the next call on it.
    std::span<const std::byte> outbound(Channel channel) const;
    /// Drops the first n outbound bytes of `channel` (they were sent).
    void consume(Channel channel, std::size_t n);
    /// Moves all outbound bytes of `channel` into `into` (its old contents are
    /// dropped, its capacity reused), so a transport can write them while new
    /// frames queue up, without copying or allocating in the steady state.
    void take_outbound(Channel channel, std::vector<std::byte>& into);
    /// Drops everything not yet sent and any partial frame received (new connection).
    void reset_streams();

    /// Ranges this client claimed, bit rid set per claim.
    std::uint8_t claimed_mask() const { return claimed_.load(std::memory_order_relaxed); }
    /// Current level of IRQ line `line` of range rid as this client last set it.
    bool irq_level(unsigned rid, unsigned line) const;
    /// All 8 lines of range rid: bit i = level of line i.
    std::uint8_t irq_lines(unsigned rid) const;
    /// 0 -> 1 transitions this client made on that line.
    std::uint64_t irq_edges(unsigned rid, unsigned line) const;
    unsigned id() const { return options_.id; }
    /// The counters now; callable from any thread.
    VmSessionCounters counters() const;

private:
    struct Pending {
        ReplyKey key;
        std::uint64_t cookie = 0;
        bool live = false;
    };
    /// What request() and request_delivered() share: a request that expects
    /// a reply enters the pending table; the tap sees it and Main counts it.
    /// (In the header: inlined into both; as a call it was a tenth of an
    /// in-process replay step.)
    void note_request(const Frame& frame, std::uint64_t cookie) {
        if (expects_reply(frame)) {
            Pending& p = pending_.push();  // filled in place: a temporary copied in stalled on store forwarding
            p.key = reply_key(frame);
            p.cookie = cookie;
            p.live = true;
        }
        tap_frame(Channel::Main, Direction::Sent, frame);
        bump(counts(Channel::Main).frames_out);
    }
    void on_frame(Channel channel, const Frame& f);
    void on_client_frame(const Frame& f);
    void on_reply_frame(const Frame& f);
    void on_irq_update(const Frame& f);
    void on_dma_frame(const Frame& f);
    void serve_dma(Frame f);
    void protocol_error(Channel channel, std::string_view what, const Frame& f);
    void tap_frame(Channel channel, Direction direction, const Frame& f) {
        if (options_.tap != nullptr) options_.tap->on_frame(channel, direction, f.bytes());
    }

    static unsigned index(Channel c) { return c == Channel::Main ? 0u : 1u; }

    DmaMemory& memory_;
    VmSessionEvents& events_;
    VmSessionOptions options_;
    std::array<FrameReader, 2> readers_;               // per channel: splits the byte stream
    std::array<ByteQueue, 2> out_;                     // per channel: bytes to send
    // Requests waiting for replies, oldest first: a ring of 2^k entries from
    // `head`, live ones and answered or cancelled ones not yet popped. Replies
    // usually come in order, so the match is almost always the head. A ring,
    // not a vector with a moving head: adding an entry is a bounds check and
    // three stores, with no compaction to decide.
    struct PendingTable {
        std::unique_ptr<Pending[]> ring;
        std::size_t capacity = 0;  // 0 or a power of two
        std::size_t head = 0;      // ring index of the oldest entry
        std::size_t size = 0;      // entries from head on, live or not
        std::size_t dead = 0;      // of those, no longer live
        Pending& at(std::size_t i) { return ring[(head + i) & (capacity - 1)]; }
        const Pending& at(std::size_t i) const { return ring[(head + i) & (capacity - 1)]; }
        Pending& push() {
            if (size == capacity) grow();
            return at(size++);
        }
        /// Entry i is answered or cancelled: no longer live; pops the head while it is not.
        void retire(std::size_t i) {
            at(i).live = false;
            ++dead;
            while (size > 0 && !at(0).live) {
                head = (head + 1) & (capacity - 1);
                --size;
                --dead;
            }
        }
        void clear() { head = size = dead = 0; }
        void grow();
    };
    PendingTable pending_;
    std::atomic<std::uint8_t> claimed_{0};             // bit per claimed rid
    std::array<std::atomic<std::uint8_t>, kNumRanges> irq_{};  // per rid: bit per line at level 1
    std::array<std::array<std::atomic<std::uint64_t>, kNumIrqLines>, kNumRanges> edges_{};
    /// Counts of one channel, written only by the thread feeding that channel
    /// (request() counts as Main), so bump() is a relaxed load and store, not
    /// a locked read-modify-write (about 11 ns each on the bench machine, two
    /// per MMIO round trip); other threads only read them. The IRQ state
    /// above is written on Main only, likewise.
    struct ChannelCounts {
        std::atomic<std::uint64_t> frames_in{0}, frames_out{0}, dma_chunks{0}, dma_faults{0}, protocol_errors{0},
            echoed_posted{0};
    };
    static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    ChannelCounts& counts(Channel c) { return counts_[index(c)]; }
    std::array<ChannelCounts, 2> counts_;
};

}  // namespace coreio
