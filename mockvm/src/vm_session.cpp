#include "coreio/mockvm/vm_session.hpp"

#include <cstdio>
#include <string>

namespace coreio::mockvm {

namespace {
const char* channel_name(Channel c) { return c == Channel::Main ? "main" : "dma"; }
}  // namespace

VmSession::VmSession(GuestMemory& memory, VmSessionEvents& events, LogFunction log, FrameTap* tap, unsigned id)
    : memory_(memory), events_(events), log_(std::move(log)), tap_(tap), id_(id) {}

void VmSession::set_max_frame_blocks(std::size_t blocks) {
    if (blocks < 1) blocks = 1;
    if (blocks > kMaxBlocks) blocks = kMaxBlocks;
    for (auto& r : readers_) r.set_max_blocks(blocks);
}

bool VmSession::irq_level(unsigned rid, unsigned line) const {
    if (rid >= kNumRanges || line >= kNumIrqLines) return false;
    return (irq_[rid].load(std::memory_order_relaxed) >> line) & 1;
}

void VmSession::tap_frame(Channel channel, Direction direction, const std::byte* p) {
    if (tap_ != nullptr) tap_->on_frame(channel, direction, std::span<const std::byte>(p, kBlockSize));
}

void VmSession::protocol_error(Channel channel, const std::string& what, const Frame& f) {
    counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    if (!log_) return;
    char head[64];
    std::snprintf(head, sizeof head, "client %u %s: ", id_, channel_name(channel));
    log_(std::string(head) + what + "; frame dropped: " + describe(f));
}

bool VmSession::receive(Channel channel, std::span<const std::byte> bytes) {
    std::uint64_t frames = 0;
    const bool ok = readers_[index(channel)].feed(
        bytes,
        [&](const Frame& f) {
            ++frames;
            tap_frame(channel, Direction::Received, f.data());
            if (channel == Channel::Main)
                on_main_frame(f);
            else
                on_dma_frame(f);
        },
        [&](FrameError e, const Frame& f) {
            ++frames;
            protocol_error(channel, describe_error(e, f, readers_[index(channel)].max_blocks()) +
                                        " (stream can no longer be split into frames)",
                           f);
        });
    counters_.frames_in.fetch_add(frames, std::memory_order_relaxed);
    return ok;
}

void VmSession::on_main_frame(const Frame& f) {
    const FrameError e = f.validate(readers_[0].max_blocks());
    if (e != FrameError::Ok) {
        protocol_error(Channel::Main, describe_error(e, f), f);
        return;
    }
    if (f.from_client()) {
        switch (f.op()) {
        case Op::Claim:
            claimed_.fetch_or(static_cast<std::uint8_t>(1u << f.rid()), std::memory_order_relaxed);
            events_.on_claim(*this, f.rid());
            return;
        case Op::IrqUpdate: {
            const auto line = static_cast<unsigned>(f.irq_line());
            const bool level = f.irq_level() != 0;
            const auto bit = static_cast<std::uint8_t>(1u << line);
            if (level)
                irq_[f.rid()].fetch_or(bit, std::memory_order_relaxed);
            else
                irq_[f.rid()].fetch_and(static_cast<std::uint8_t>(~bit), std::memory_order_relaxed);
            events_.on_irq(*this, f.rid(), line, level);
            return;
        }
        case Op::Ping: {
            // Not required by the protocol, but harmless: answer a client's ping.
            Frame reply = f;
            reply.set_extra_blocks(0);
            send(Channel::Main, reply);
            return;
        }
        default:
            protocol_error(Channel::Main, describe_error(FrameError::UnexpectedOp, f) +
                                              " (client-originated accesses belong on the DMA connection)",
                           f);
            return;
        }
    }
    // bit 31 clear: the client's reply to one of our requests.
    switch (f.op()) {
    case Op::Read:
    case Op::ReadPair:
    case Op::WriteAck:
    case Op::WriteAckPair:
    case Op::Ping:
        events_.on_reply(*this, f);
        return;
    case Op::Write:
    case Op::WritePair:
        // A client echoes posted writes for ranges it has not claimed; nothing waits for them.
        counters_.echoed_posted.fetch_add(1, std::memory_order_relaxed);
        return;
    default:
        protocol_error(Channel::Main, describe_error(FrameError::UnexpectedOp, f), f);
        return;
    }
}

void VmSession::on_dma_frame(const Frame& f) {
    const FrameError e = f.validate(readers_[1].max_blocks());
    const bool dma_op = f.opcode() == static_cast<std::uint8_t>(Op::Read) ||
                        f.opcode() == static_cast<std::uint8_t>(Op::WriteAck);
    if (e != FrameError::Ok) {
        protocol_error(Channel::Dma, describe_error(e, f), f);
        if (dma_op && f.from_client()) {
            // Answer with a fault so a client waiting for this chunk fails instead of hanging.
            Frame reply = f;
            reply.set_extra_blocks(0);
            reply.set_error(true);
            counters_.dma_faults.fetch_add(1, std::memory_order_relaxed);
            send(Channel::Dma, reply);
        }
        return;
    }
    if (!f.from_client() || !dma_op) {
        protocol_error(Channel::Dma,
                       describe_error(FrameError::UnexpectedOp, f) +
                           " (the DMA connection carries only READ and WRITEA requests with w0[31] set)",
                       f);
        return;
    }
    serve_dma(f);
}

void VmSession::serve_dma(Frame f) {
    f.set_extra_blocks(0);
    bool ok = false;
    // mid 0 with sid 0 is direct guest-physical access; the mock VM has no IOMMU.
    if (f.mid() == 0 && f.sid() == 0) {
        if (f.op() == Op::Read)
            ok = memory_.read(f.address(), std::span<std::byte>(f.payload(), f.size()));
        else
            ok = memory_.write_masked(f.address(), f.payload(), f.size(), f.byte_mask());
    }
    if (!ok) {
        f.set_error(true);
        counters_.dma_faults.fetch_add(1, std::memory_order_relaxed);
    }
    counters_.dma_chunks.fetch_add(1, std::memory_order_relaxed);
    send(Channel::Dma, f);
}

void VmSession::send(Channel channel, const Frame& frame) { send(channel, std::span<const Frame>(&frame, 1)); }

void VmSession::send(Channel channel, std::span<const Frame> frames) {
    auto& out = out_[index(channel)];
    for (const Frame& f : frames) {
        tap_frame(channel, Direction::Sent, f.data());
        out.insert(out.end(), f.data(), f.data() + kBlockSize);
    }
    counters_.frames_out.fetch_add(frames.size(), std::memory_order_relaxed);
}

std::span<const std::byte> VmSession::outbound(Channel channel) const {
    const auto i = index(channel);
    return std::span<const std::byte>(out_[i]).subspan(out_head_[i]);
}

void VmSession::consume(Channel channel, std::size_t n) {
    const auto i = index(channel);
    out_head_[i] += n;
    if (out_head_[i] >= out_[i].size()) {
        out_[i].clear();
        out_head_[i] = 0;
    }
}

void VmSession::take_outbound(Channel channel, std::vector<std::byte>& into) {
    const auto i = index(channel);
    if (out_head_[i] > 0) {
        out_[i].erase(out_[i].begin(), out_[i].begin() + static_cast<std::ptrdiff_t>(out_head_[i]));
        out_head_[i] = 0;
    }
    into.clear();
    into.swap(out_[i]);
}

}  // namespace coreio::mockvm
