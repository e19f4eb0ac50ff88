#include "coreio/vm_session.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace coreio {

namespace {
const char* channel_name(Channel c) { return c == Channel::Main ? "main" : "dma"; }
constexpr std::size_t clamp_blocks(std::size_t n) { return std::clamp<std::size_t>(n, 1, kMaxBlocks); }
}  // namespace

VmSession::VmSession(DmaMemory& memory, VmSessionEvents& events, VmSessionOptions options)
    : memory_(memory),
      events_(events),
      options_(std::move(options)),
      readers_{FrameReader(clamp_blocks(options_.max_stream_blocks)),
               FrameReader(clamp_blocks(options_.max_stream_blocks))} {
    options_.max_frame_blocks = std::min(clamp_blocks(options_.max_frame_blocks), readers_[0].max_blocks());
}

bool VmSession::irq_level(unsigned rid, unsigned line) const {
    if (rid >= kNumRanges || line >= kNumIrqLines) return false;
    return (irq_[rid].load(std::memory_order_relaxed) >> line) & 1;
}

std::uint8_t VmSession::irq_lines(unsigned rid) const {
    return rid < kNumRanges ? irq_[rid].load(std::memory_order_relaxed) : 0;
}

std::uint64_t VmSession::irq_edges(unsigned rid, unsigned line) const {
    if (rid >= kNumRanges || line >= kNumIrqLines) return 0;
    return edges_[rid][line].load(std::memory_order_relaxed);
}

VmSessionCounters VmSession::counters() const {
    VmSessionCounters t;
    for (const ChannelCounts& c : counts_) {
        t.frames_in += c.frames_in.load(std::memory_order_relaxed);
        t.frames_out += c.frames_out.load(std::memory_order_relaxed);
        t.dma_chunks += c.dma_chunks.load(std::memory_order_relaxed);
        t.dma_faults += c.dma_faults.load(std::memory_order_relaxed);
        t.protocol_errors += c.protocol_errors.load(std::memory_order_relaxed);
        t.echoed_posted += c.echoed_posted.load(std::memory_order_relaxed);
    }
    return t;
}

void VmSession::protocol_error(Channel channel, std::string_view what, const Frame& f) {
    bump(counts(channel).protocol_errors);
    events_.on_protocol_error(*this, channel, what, f);
    if (!options_.log) return;
    char head[64];
    std::snprintf(head, sizeof head, "client %u %s: ", options_.id, channel_name(channel));
    std::string line(head);
    line += what;
    line += "; frame dropped: ";
    line += describe(f);
    options_.log(line);
}

bool VmSession::receive(Channel channel, std::span<const std::byte> bytes) {
    std::uint64_t frames = 0;
    FrameReader& reader = readers_[index(channel)];
    const bool ok = reader.feed(
        bytes,
        [&](const Frame& f) {
            ++frames;
            on_frame(channel, f);
        },
        [&](FrameError e, const Frame& f) {
            ++frames;
            protocol_error(channel,
                           describe_error(e, f, reader.max_blocks()) + " (stream can no longer be split into frames)",
                           f);
        });
    bump(counts(channel).frames_in, frames);
    return ok;
}

void VmSession::on_frame(Channel channel, const Frame& f) {
    tap_frame(channel, Direction::Received, f);
    if (channel == Channel::Dma) {
        on_dma_frame(f);
        return;
    }
    const FrameError e = f.validate(options_.max_frame_blocks);
    if (e != FrameError::Ok) {
        protocol_error(channel, describe_error(e, f, options_.max_frame_blocks), f);
        return;
    }
    if (f.from_client())
        on_client_frame(f);
    else
        on_reply_frame(f);
}

// A frame the client started on the main connection.
void VmSession::on_client_frame(const Frame& f) {
    switch (exchange_of(f)) {
    case Exchange::Claim:
        claimed_.store(static_cast<std::uint8_t>(claimed_.load(std::memory_order_relaxed) | 1u << f.rid()),
                       std::memory_order_relaxed);
        events_.on_claim(*this, f.rid());
        return;
    case Exchange::Irq:
        on_irq_update(f);
        return;
    case Exchange::Ping: {
        // Not required by the protocol, but harmless: answer a client's ping.
        Frame reply = f;
        reply.set_extra_blocks(0);
        send(Channel::Main, reply);
        return;
    }
    default:
        protocol_error(Channel::Main,
                       describe_error(FrameError::UnexpectedOp, f) +
                           " (client-originated accesses belong on the DMA connection)",
                       f);
        return;
    }
}

void VmSession::on_irq_update(const Frame& f) {
    const unsigned rid = f.rid();
    const auto line = static_cast<unsigned>(f.irq_line());
    const bool level = f.irq_level() != 0;
    const auto bit = static_cast<std::uint8_t>(1u << line);
    const std::uint8_t old = irq_[rid].load(std::memory_order_relaxed);  // written on Main only
    irq_[rid].store(static_cast<std::uint8_t>(level ? old | bit : old & ~bit), std::memory_order_relaxed);
    const bool rising = level && (old & bit) == 0;
    if (rising) bump(edges_[rid][line]);
    events_.on_irq(*this, rid, line, level, rising);
}

// w0[31] clear on main: the client's answer to one of our requests.
void VmSession::on_reply_frame(const Frame& f) {
    if (!expects_reply(f)) {
        if (exchange_of(f) == Exchange::Mmio) {
            // A client echoes posted writes for ranges it has not claimed; nothing waits for them.
            bump(counts(Channel::Main).echoed_posted);
            return;
        }
        protocol_error(Channel::Main, describe_error(FrameError::UnexpectedOp, f), f);
        return;
    }
    const ReplyKey key = reply_key(f);
    for (std::size_t i = 0; i < pending_.size; ++i) {
        const Pending& p = pending_.at(i);
        if (!p.live || !(p.key == key)) continue;
        const std::uint64_t cookie = p.cookie;
        pending_.retire(i);
        events_.on_reply(*this, cookie, f);
        return;
    }
    protocol_error(Channel::Main,
                   "reply matches no outstanding request (late after a timeout, or tag/w1/w2 not echoed)", f);
}

void VmSession::on_dma_frame(const Frame& f) {
    const FrameError e = f.validate(options_.max_frame_blocks);
    const bool dma = exchange_of(f) == Exchange::Dma;
    if (e != FrameError::Ok) {
        protocol_error(Channel::Dma, describe_error(e, f, options_.max_frame_blocks), f);
        if (dma) {
            // Answer with a fault so a client waiting for this chunk fails instead of hanging.
            Frame reply = f;
            reply.set_extra_blocks(0);
            reply.set_error(true);
            bump(counts(Channel::Dma).dma_faults);
            send(Channel::Dma, reply);
        }
        return;
    }
    if (!dma) {
        protocol_error(Channel::Dma,
                       describe_error(FrameError::UnexpectedOp, f) +
                           " (the DMA connection carries only READ and WRITEA requests with w0[31] set)",
                       f);
        return;
    }
    serve_dma(f);
}

void VmSession::serve_dma(Frame f) {
    const Frame request = f;
    f.set_extra_blocks(0);
    const bool ok = f.op() == Op::Read ? memory_.dma_read(request, std::span<std::byte>(f.payload(), f.size()))
                                       : memory_.dma_write(request);
    if (!ok) {
        f.set_error(true);
        bump(counts(Channel::Dma).dma_faults);
    }
    bump(counts(Channel::Dma).dma_chunks);
    events_.on_dma(*this, request, f);
    send(Channel::Dma, f);
}

// ---- requests and their replies ---------------------------------------------------

void VmSession::request(const Frame& frame, std::uint64_t cookie) {
    note_request(frame, cookie);
    // Queued here rather than through send(): no call and no channel index
    // per request (a mock VM's pipelined reads make one per read).
    std::memcpy(out_[index(Channel::Main)].append(kBlockSize), frame.data(), kBlockSize);
}

void VmSession::request_delivered(const Frame& frame, std::uint64_t cookie) { note_request(frame, cookie); }

void VmSession::PendingTable::grow() {
    const std::size_t n = capacity == 0 ? 16 : 2 * capacity;
    auto bigger = std::make_unique<Pending[]>(n);
    for (std::size_t i = 0; i < size; ++i) bigger[i] = at(i);
    ring = std::move(bigger);
    capacity = n;
    head = 0;
}

bool VmSession::cancel(std::uint64_t cookie) {
    for (std::size_t i = 0; i < pending_.size; ++i) {
        const Pending& p = pending_.at(i);
        if (!p.live || p.cookie != cookie) continue;
        pending_.retire(i);
        return true;
    }
    return false;
}

void VmSession::cancel_all() { pending_.clear(); }

bool VmSession::pending(std::uint64_t cookie) const {
    for (std::size_t i = 0; i < pending_.size; ++i)
        if (pending_.at(i).live && pending_.at(i).cookie == cookie) return true;
    return false;
}

// ---- outbound bytes -----------------------------------------------------------------

void VmSession::send(Channel channel, const Frame& frame) {
    tap_frame(channel, Direction::Sent, frame);
    std::memcpy(out_[index(channel)].append(kBlockSize), frame.data(), kBlockSize);
    bump(counts(channel).frames_out);
}

std::span<const std::byte> VmSession::outbound(Channel channel) const { return out_[index(channel)].pending(); }

void VmSession::consume(Channel channel, std::size_t n) { out_[index(channel)].consume(n); }

void VmSession::take_outbound(Channel channel, std::vector<std::byte>& into) { out_[index(channel)].take(into); }

void VmSession::reset_streams() {
    for (unsigned i = 0; i < 2; ++i) {
        readers_[i].reset();
        out_[i].clear();
    }
}

}  // namespace coreio
