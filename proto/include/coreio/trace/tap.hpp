// TraceTap: a FrameTap that turns the raw frames an end sends and receives into
// typed trace records: MMIO requests folded with their replies (matched by tag,
// w1 and w2 as a VM does), DMA chunks likewise, IRQ, claims, pings, resets,
// connections and protocol errors.
//
// Records of one tap are written in the order their first frame was seen; a
// transaction waits in a bounded queue until its reply arrives (or its
// connection closes, or finish() runs), and holds back the records after it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "coreio/client.hpp"
#include "coreio/trace/event.hpp"
#include "coreio/trace/writer.hpp"

namespace coreio::trace {

struct TapOptions {
    /// The end that calls the tap: Client (libcoreio, or a proxy: "Sent" means
    /// towards the VM) or Vm ("Sent" means towards the device).
    Observer observer = Observer::Client;
    /// Written as Record.client: which device model this tap watches.
    std::uint32_t client = 0;
    /// Keep whole wire frames in the records (byte-exact, ~140 more bytes per transaction).
    bool raw_frames = false;
    /// Transactions that may wait for replies; beyond it the oldest is written as NO_REPLY.
    std::size_t max_pending = 2048;
};

class TraceTap final : public FrameTap {
public:
    /// Records into `writer` (not owned; must outlive the tap). Thread-safe.
    explicit TraceTap(TraceWriter& writer, const TapOptions& options = {});
    /// Calls finish().
    ~TraceTap() override;
    TraceTap(const TraceTap&) = delete;
    TraceTap& operator=(const TraceTap&) = delete;

    /// Records one whole frame (64 bytes or more) crossing `channel`.
    void on_frame(Channel channel, Direction direction, std::span<const std::byte> frame) override;
    /// Records frames that crossed `channel` together (e.g. what one read
    /// returned): one lock and one clock reading for all, the same time for each.
    void on_frames(Channel channel, Direction direction, std::span<const Frame> frames);
    /// Records a ClientSession's batch under one lock: the received frames get
    /// the time they came in, the sent ones the time they went out, so a
    /// reply's latency stays what it was.
    void on_frames(const TapBatch& batch) override;
    /// Records a connection opening or closing; transactions waiting on a
    /// closed connection are written as NO_REPLY.
    void on_connection(Channel channel, bool up) override;
    /// Writes every transaction still waiting for its reply (as NO_REPLY).
    void finish();
    /// Frames seen so far.
    std::uint64_t frames() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace coreio::trace
