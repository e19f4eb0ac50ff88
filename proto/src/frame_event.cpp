#include "coreio/trace/frame_event.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace coreio::trace {

namespace {

// Copies `n` bytes of access data from a frame into an event's data array
// (which holds >= 16); up to 8, as one masked word (no library call per access).
void copy_bytes(std::byte* dst, const std::byte* src, unsigned n) {
    if (n <= 8) {  // the frame's payload has >= 8 bytes after any element start
        std::uint64_t v = 0;
        std::memcpy(&v, src, 8);
        if (n < 8) {
            if constexpr (std::endian::native == std::endian::little) {
                v &= (std::uint64_t{1} << (8 * n)) - 1;
            } else {
                v &= ~((~std::uint64_t{0}) >> (8 * n));
            }
        }
        std::memcpy(dst, &v, 8);
    } else {
        std::memcpy(dst, src, n);
    }
}

// Copies the access data of `f` (both pair elements) into ev.
void copy_data(Event& ev, const Frame& f) {
    const bool pair = is_pair_op(ev.op);
    const unsigned n = std::min<unsigned>(ev.size, pair ? kMaxPairElement : kMaxAccessSize);
    copy_bytes(ev.data.data(), f.payload(), n);
    if (pair) copy_bytes(ev.data2.data(), f.pair_second(), n);
}

void copy_access_fields(Event& ev, const Frame& f) {
    ev.id = static_cast<std::uint8_t>(f.rid());
    ev.op = f.op();
    ev.size = static_cast<std::uint8_t>(f.size());
    ev.sid = static_cast<std::uint8_t>(f.sid());
    ev.flags = static_cast<std::uint8_t>(f.flags());
    ev.tag = f.tag();
    ev.mask = f.byte_mask();
    ev.address = f.address();
}

}  // namespace

Event transaction_event(const Frame& request) {
    Event ev;
    fill_transaction(ev, request);
    return ev;
}

void fill_transaction(Event& ev, const Frame& request) {
    const bool dma = exchange_of(request) == Exchange::Dma;
    ev.kind = dma ? EventKind::Dma : EventKind::Mmio;
    ev.channel = dma ? Channel::Dma : Channel::Main;
    ev.towards = dma ? Towards::Vm : Towards::Client;
    copy_access_fields(ev, request);
    if (!is_read_op(ev.op)) copy_data(ev, request);
    ev.status = expects_reply(request) ? Status::NoReply : Status::Complete;
}

void apply_reply(Event& ev, const Frame& reply) {
    if (is_read_op(ev.op)) copy_data(ev, reply);
    ev.error = reply.error();
    ev.status = Status::Complete;
}

Event reply_only_event(const Frame& reply) {
    Event ev = transaction_event(reply);
    ev.towards = ev.towards == Towards::Vm ? Towards::Client : Towards::Vm;
    copy_data(ev, reply);
    ev.error = reply.error();
    ev.status = Status::ReplyOnly;
    return ev;
}

Event control_event(const Frame& f) {
    Event ev;
    switch (exchange_of(f)) {
    case Exchange::Reset: ev.kind = EventKind::Reset; break;
    case Exchange::Claim:
        ev.kind = EventKind::Claim;
        ev.id = static_cast<std::uint8_t>(f.rid());
        break;
    case Exchange::Irq:
        ev.kind = EventKind::Irq;
        ev.id = static_cast<std::uint8_t>(f.rid());
        ev.line = static_cast<std::uint8_t>(f.irq_line());
        ev.level = static_cast<std::uint8_t>(f.irq_level());
        break;
    default:
        ev.kind = EventKind::Ping;
        ev.tag = f.tag();
        break;
    }
    return ev;
}

Frame request_from_event(const Event& ev) {
    Frame f = Frame::mmio_request(ev.op, ev.id, ev.address, ev.size, ev.flags, ev.tag);
    if (!is_read_op(ev.op)) {
        std::memcpy(f.payload(), ev.data.data(), std::min<std::size_t>(ev.size, kMaxAccessSize));
        if (is_pair_op(ev.op))
            std::memcpy(f.pair_second(), ev.data2.data(), std::min<std::size_t>(ev.size, kMaxPairElement));
        f.set_byte_mask(ev.mask);
    }
    return f;
}

}  // namespace coreio::trace
