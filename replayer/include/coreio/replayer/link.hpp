// The VM's end of one device connection, as the replayer, the stub and the
// fuzzer drive it: send MMIO requests and resets (numbered by the caller),
// learn in order when each completed, which IRQ changes and DMA chunks each
// one caused, and whether the device broke the protocol.
//
// Two transports share the protocol logic (LinkCore over coreio::VmSession,
// the engine the mock VM runs too):
//  - InProcessLink: a coreio::ClientSession and the device model in this
//    process, bytes moved by function calls (no sockets, no threads): replay
//    and fuzzing at full speed, and causes known exactly.
//  - TcpLink: a listening socket a device model connects to as to a VM;
//    requests are pipelined (a window of them in flight). Posted writes and
//    resets are followed by a PING, whose echo marks where the device finished
//    them, so causes are exact over TCP too.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coreio/client_session.hpp"
#include "coreio/frame.hpp"
#include "coreio/net/listener.hpp"
#include "coreio/vm_session.hpp"
#include "coreio/replayer/device.hpp"

namespace coreio::replayer {

/// "No request": the cause of what the device did before the first request.
inline constexpr std::uint64_t kNoSeq = ~std::uint64_t{0};

/// Which way a DMA chunk goes (the session knows it from the DmaMemory call it made).
enum class DmaDirection : std::uint8_t { Read, Write };

/// What the device did, reported by a Link in the order it happened.
class LinkObserver {
public:
    virtual ~LinkObserver() = default;
    /// Request `seq` is done: `reply` is the device's reply (reads and
    /// acknowledged writes) or null (posted writes and resets). Must not
    /// submit to the link (the arguments may refer to the link's own queue).
    virtual void on_complete(std::uint64_t seq, const Frame& request, const Frame* reply) = 0;
    /// IRQ line changed while request `cause` was being handled (kNoSeq: before any).
    virtual void on_irq(std::uint64_t cause, unsigned rid, unsigned line, bool level) = 0;
    /// The device claimed range `rid`.
    virtual void on_claim(unsigned rid) { (void)rid; }
    /// A DMA chunk request, a read or a write as the VM session decoded it;
    /// fill `reply` (a copy of the request: set the data of a read, or the
    /// error bit for a fault).
    virtual void on_dma(std::uint64_t cause, DmaDirection direction, const Frame& request, Frame& reply) = 0;
    /// The device broke the protocol (malformed or unexpected frame).
    virtual void on_violation(std::uint64_t cause, std::string_view what) = 0;
    /// A line the device's session logged (in process only), e.g. a handler that threw.
    virtual void on_device_log(std::uint64_t cause, std::string_view line) { (void)cause, (void)line; }
};

/// Sends requests to one device and reports what it did.
class Link {
public:
    virtual ~Link() = default;
    /// Queues request `seq` (an MMIO access or RESET frame); may send and
    /// process replies on the way. Returns 0, -ECONNRESET (device gone) or
    /// -ETIMEDOUT (the window stayed full past the timeout). `request` must
    /// stay valid until it completes (the scenario's steps do): the link
    /// keeps a pointer, not a copy, as copying cost a tenth of an in-process step.
    virtual int submit(std::uint64_t seq, const Frame& request) = 0;
    /// Sends what is queued and handles what arrives for up to `max_wait`
    /// (timed replay waits this way). Returns 0 or -ECONNRESET.
    virtual int pump(std::chrono::milliseconds max_wait) = 0;
    /// Sends everything queued and waits until every request completed.
    /// Returns 0, -ETIMEDOUT or -ECONNRESET.
    virtual int drain(std::chrono::milliseconds timeout) = 0;
    /// Requests submitted but not completed.
    virtual std::size_t outstanding() const = 0;
    /// Ranges the device claimed so far, bit rid set per claim.
    virtual std::uint8_t claimed() const = 0;
    /// Waits until every range in `mask` is claimed. Returns 0, -ETIMEDOUT, -ECONNRESET.
    virtual int wait_claims(std::uint8_t mask, std::chrono::milliseconds timeout) = 0;
    /// The oldest request not completed (where a crash or hang happened), or
    /// the newest one when none is in flight; kNoSeq before the first.
    virtual std::uint64_t current() const = 0;
    /// True when the device may act on its own after a request completed
    /// (a process with a main loop); false in process, where nothing happens
    /// between requests, so waiting for it would only time out.
    virtual bool acts_between_requests() const { return true; }
};

/// The VM end of a link: one coreio::VmSession (framing, validation, reply
/// matching, claims, IRQ levels, DMA serving) plus what a replay needs on
/// top: requests numbered by the caller and completed in that order, the
/// request in flight as the cause of what the device does, and the fence
/// PINGs that mark where a posted write or reset was handled over TCP.
class LinkCore final : private VmSessionEvents, private DmaMemory {
public:
    /// Tag bits marking the PING frames used as fences.
    static constexpr std::uint32_t kFenceTag = 0xFE000000u;

    /// `fence_posted`: follow posted writes and resets by a fence PING (TCP).
    LinkCore(LinkObserver& observer, bool fence_posted);
    /// Queues request `seq` (and its fence) on the session's main channel;
    /// keeps a pointer to `request` until it completes.
    void push(std::uint64_t seq, const Frame& request);
    /// As push(), for a transport that hands `request` to the device itself
    /// (in process): the session tracks it, but queues no bytes, and no fence.
    void push_delivered(std::uint64_t seq, const Frame& request);
    /// In process: the oldest request has been fully handled; completes it if
    /// it expects no reply (or reports the missing reply).
    void finish_front() {
        if (head_ < fifo_.size()) finish_head();  // else its reply completed it
    }
    /// The request being handled now (the cause of what the device does).
    std::uint64_t cause() const { return head_ < fifo_.size() ? fifo_[head_].seq : last_seq_; }
    std::size_t outstanding() const { return fifo_.size() - head_; }
    std::uint8_t claimed() const { return session_.claimed_mask(); }
    LinkObserver& observer() { return observer_; }
    VmSession& session() { return session_; }
    /// Forgets requests in flight and bytes not yet moved (the connection is gone).
    void clear();

private:
    struct Pending {
        std::uint64_t seq = 0;             // caller's number
        const Frame* request = nullptr;    // the caller's (see Link::submit)
        bool done = false;                 // answered (or fenced); waits for older ones
        bool early_reply = false;          // answered before an older request: reply in early_
    };
    void enqueue(std::uint64_t seq, const Frame& request) {
        if (fifo_.size() == fifo_.capacity()) make_room();
        Pending& p = fifo_.emplace_back();  // filled in place: a temporary copied in stalled on store forwarding
        p.seq = seq;
        p.request = &request;
        last_seq_ = seq;
    }
    void make_room();
    // VmSessionEvents
    void on_claim(VmSession& s, unsigned rid) override;
    void on_irq(VmSession& s, unsigned rid, unsigned line, bool level, bool rising) override;
    void on_reply(VmSession& s, std::uint64_t cookie, const Frame& reply) override;
    void on_protocol_error(VmSession& s, Channel channel, std::string_view what, const Frame& frame) override;
    // DmaMemory: asks the observer
    bool dma_read(const Frame& request, std::span<std::byte> out) override;
    bool dma_write(const Frame& request) override;
    Frame dma_reply(DmaDirection direction, const Frame& request);
    /// The head entry: hands it to the observer and moves the head on first,
    /// so cause() names the next request while the observer runs.
    void complete(const Pending& p, const Frame* reply) {
        ++head_;
        observer_.on_complete(p.seq, *p.request, reply);  // p stays valid: the observer does not submit
        if (head_ == fifo_.size()) {  // empty: start again at the front
            fifo_.clear();
            head_ = 0;
        }
    }
    void complete_ready();
    void finish_head();
    bool head_done() const { return head_ < fifo_.size() && fifo_[head_].done; }

    LinkObserver& observer_;
    bool fence_posted_;
    VmSession session_;
    std::vector<Pending> fifo_;        // requests in flight, oldest at head_
    // Replies that came before an older request completed (rare: replies
    // come in order), by seq; kept apart so that a Pending stays 24 bytes.
    std::vector<std::pair<std::uint64_t, Frame>> early_;
    std::size_t head_ = 0;             // first live entry of fifo_
    std::uint64_t last_seq_ = kNoSeq;  // newest request pushed
    std::uint32_t fences_ = 0;         // fence PINGs issued (their tags count up)
};

/// A device model in this process, driven through a ClientSession with no
/// sockets. Not thread-safe; a handler that loops forever hangs the caller
/// (run it under run_isolated() when that matters).
class InProcessLink final : public Link, private DeviceHost {
public:
    /// Builds the model with `factory` and claims its ranges.
    InProcessLink(const DeviceFactory& factory, LinkObserver& observer);
    ~InProcessLink() override;

    int submit(std::uint64_t seq, const Frame& request) override;
    int pump(std::chrono::milliseconds) override { return 0; }   // nothing ever waits in process
    int drain(std::chrono::milliseconds) override { return 0; }  // submit() completes at once
    std::size_t outstanding() const override { return core_.outstanding(); }
    std::uint8_t claimed() const override { return core_.claimed(); }
    int wait_claims(std::uint8_t mask, std::chrono::milliseconds) override {
        return (core_.claimed() & mask) == mask ? 0 : -ETIMEDOUT;
    }
    std::uint64_t current() const override { return core_.cause(); }
    bool acts_between_requests() const override { return false; }
    /// The model built by the factory.
    Device& device() { return *device_; }

private:
    int irq_update(unsigned rid, unsigned line, bool level) override;
    int dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags) override;
    int dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf,
                  unsigned flags) override;
    int dma(Op op, unsigned mid, unsigned sid, std::uint64_t addr, std::byte* buf, std::size_t len, unsigned flags);
    void pump_dma();
    void pump_main();

    LinkCore core_;
    ClientSession session_;
    std::unique_ptr<Device> device_;
    std::vector<std::byte> dma_replies_;  // reused: DMA replies moved the same way
};

struct TcpLinkOptions {
    /// Address to listen on (loopback by default).
    std::string listen = "127.0.0.1";
    /// Port; 0 picks a free one (see port()).
    std::uint16_t port = 0;
    /// Requests kept in flight at most (pipelining depth).
    std::size_t window = 256;
    /// Longest wait for the window to drain a little.
    std::chrono::milliseconds timeout{5000};
};

/// The VM end over TCP: listens, accepts one device (main then DMA
/// connection, as PROTOCOL.md orders them) and drives it.
class TcpLink final : public Link {
public:
    /// Binds and listens; throws std::system_error (naming the address) on failure.
    TcpLink(LinkObserver& observer, TcpLinkOptions options = {});
    ~TcpLink() override;

    /// The port listened on.
    std::uint16_t port() const { return port_; }
    /// Waits for a device: its main, then its DMA connection. Returns 0,
    /// -ETIMEDOUT, or -ECHILD once `give_up_fd` (DeviceProcess::ended_fd()
    /// of the device's process) is readable: it ended and will not connect.
    /// Closes any previous device first.
    int accept(std::chrono::milliseconds timeout, int give_up_fd = -1);
    /// Closes the device's connections and forgets requests in flight (the
    /// listening socket stays).
    void disconnect();
    /// True while a device is connected.
    bool connected() const { return main_fd_ >= 0; }

    int submit(std::uint64_t seq, const Frame& request) override;
    int pump(std::chrono::milliseconds max_wait) override;
    int drain(std::chrono::milliseconds timeout) override;
    std::size_t outstanding() const override { return core_.outstanding(); }
    std::uint8_t claimed() const override { return core_.claimed(); }
    int wait_claims(std::uint8_t mask, std::chrono::milliseconds timeout) override;
    std::uint64_t current() const override { return core_.cause(); }

private:
    void close_fds();
    int poll_once(int timeout_ms);
    int flush_out();
    int read_channel(Channel ch);

    LinkCore core_;
    TcpLinkOptions options_;
    net::Listener listener_;
    std::uint16_t port_ = 0;
    int main_fd_ = -1, dma_fd_ = -1;
    std::vector<std::byte> in_;          // receive buffer
};

}  // namespace coreio::replayer
