#include "coreio/trace/tap.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fast_mutex.hpp"

namespace coreio::trace {
namespace {

// A record waiting for its turn (and, for a transaction, its reply).
struct Entry {
    Event ev;
    bool done = false;            // may be written
    std::uint64_t key[3] = {};    // w0 (error and length bits cleared), w1, w2 of the request
    std::uint64_t cause_seq = ~std::uint64_t{0};  // DMA: seq of the MMIO entry in flight
    std::vector<std::byte> raw;   // request / only frame, when kept
    std::vector<std::byte> raw_reply;
    std::string message;          // ProtocolError text
};

// w0 without the bits a reply may change (error) or that only frame the bytes (length).
constexpr std::uint64_t kKeyMask0 = ~((std::uint64_t{1} << 30) | 0xff00ull);

}  // namespace

struct TraceTap::Impl {
    TraceWriter& writer;  // its lock guards this state too (one lock per frame)
    TapOptions options;
    // Pending entries at seq & mask. It starts small (the entries a pipelined
    // client keeps in flight stay in cache) and doubles when full, up to
    // max_pending; allocation happens only then.
    std::vector<Entry> ring;
    std::uint64_t mask = 0;   // ring.size() - 1 (a power of two)
    std::uint64_t head = 0;   // seq of the oldest unwritten entry
    std::uint64_t tail = 0;   // seq of the next entry
    std::vector<std::pair<std::uint64_t, std::uint64_t>> written;  // seq & written_mask -> (seq, record index) of MMIO
    std::uint64_t written_mask = 0;
    std::optional<std::uint64_t> inflight;  // seq of the MMIO request being handled
    std::uint64_t frames = 0;

    static std::size_t pow2_at_least(std::size_t n) {
        std::size_t p = 1;
        while (p < n) p *= 2;
        return p;
    }

    Impl(TraceWriter& w, const TapOptions& o) : writer(w), options(o) {
        if (options.max_pending < 16) options.max_pending = 16;
        grow(std::min<std::size_t>(64, pow2_at_least(options.max_pending)));
        written.assign(pow2_at_least(options.max_pending), {~std::uint64_t{0}, 0});
        written_mask = written.size() - 1;
    }

    // Resizes the ring to `size` entries (a power of two holding every pending one).
    void grow(std::size_t size) {
        std::vector<Entry> bigger(size);
        if (options.raw_frames)
            for (Entry& e : bigger) {
                e.raw.reserve(kBlockSize);
                e.raw_reply.reserve(kBlockSize);
            }
        for (std::uint64_t s = head; s < tail; ++s) std::swap(bigger[s & (size - 1)], at(s));
        ring.swap(bigger);
        mask = size - 1;
    }

    Entry& at(std::uint64_t seq) { return ring[seq & mask]; }

    // A fresh entry at the tail (writing the oldest first when max_pending wait already).
    Entry& push(Channel channel, Towards towards, EventKind kind, std::uint64_t now) {
        if (tail - head == ring.size() && ring.size() < options.max_pending) grow(ring.size() * 2);
        if (tail - head == options.max_pending) {
            at(head).done = true;  // never answered in time: NO_REPLY
            drain();
        }
        Entry& e = at(tail++);
        e.ev = Event{};
        e.ev.time_ns = now;
        e.ev.client = options.client;
        e.ev.channel = channel;
        e.ev.towards = towards;
        e.ev.kind = kind;
        e.done = true;
        e.cause_seq = ~std::uint64_t{0};
        e.raw.clear();
        e.raw_reply.clear();
        return e;
    }

    void write(std::uint64_t seq) {
        Entry& e = at(seq);
        if (e.cause_seq != ~std::uint64_t{0}) {
            const auto& w = written[e.cause_seq & written_mask];
            if (w.first == e.cause_seq) e.ev.cause = w.second;
        }
        e.ev.raw = e.raw;
        e.ev.raw_reply = e.raw_reply;
        if (e.ev.kind == EventKind::ProtocolError) e.ev.message = e.message;
        const std::uint64_t index = writer.append_locked(e.ev);
        if (e.ev.kind == EventKind::Mmio) written[seq & written_mask] = {seq, index};
    }

    // Writes entries from the head while they are done.
    void drain() {
        while (head < tail && at(head).done) write(head++);
    }

    void finish_where(auto&& pred) {
        for (std::uint64_t s = head; s < tail; ++s)
            if (!at(s).done && pred(at(s))) at(s).done = true;
        drain();
    }

    static void copy_data(Event& ev, const Frame& f) {
        const unsigned n = ev.size;
        std::memcpy(ev.data.data(), f.payload(), n);
        if (is_pair_op(ev.op)) std::memcpy(ev.data2.data(), f.pair_second(), n);
    }

    void keep(std::vector<std::byte>& dst, std::span<const std::byte> frame) {
        dst.assign(frame.begin(), frame.end());
    }

    void frame(Channel channel, Direction direction, std::span<const std::byte> bytes, std::uint64_t now) {
        ++frames;
        const bool sent = direction == Direction::Sent;
        const Towards towards = (options.observer == Observer::Vm) == sent ? Towards::Client : Towards::Vm;
        if (bytes.size() < kBlockSize) {
            Entry& e = push(channel, towards, EventKind::ProtocolError, now);
            e.ev.code = static_cast<std::uint8_t>(FrameError::Truncated);
            e.message = "frame of " + std::to_string(bytes.size()) + " bytes, under 64";
            keep(e.raw, bytes);
            drain();
            return;
        }
        const Frame f = Frame::from_bytes(bytes.data());
        const FrameError err = f.validate();
        if (err != FrameError::Ok) {
            Entry& e = push(channel, towards, EventKind::ProtocolError, now);
            e.ev.code = static_cast<std::uint8_t>(err);
            e.message = describe_error(err, f);
            keep(e.raw, bytes);
            drain();
            return;
        }
        const Op op = f.op();
        if (!is_access_op(op)) {
            EventKind kind = EventKind::Ping;
            if (op == Op::Reset) kind = EventKind::Reset;
            if (op == Op::Claim) kind = EventKind::Claim;
            if (op == Op::IrqUpdate) kind = EventKind::Irq;
            Entry& e = push(channel, towards, kind, now);
            e.ev.id = static_cast<std::uint8_t>(f.rid());
            e.ev.tag = f.tag();
            e.ev.line = static_cast<std::uint8_t>(f.irq_line());
            e.ev.level = static_cast<std::uint8_t>(f.irq_level());
            if (kind != EventKind::Ping) e.ev.tag = 0;
            if (kind != EventKind::Irq) e.ev.line = e.ev.level = 0;
            if (kind == EventKind::Ping || kind == EventKind::Reset) e.ev.id = 0;
            if (options.raw_frames) keep(e.raw, bytes);
            drain();
            return;
        }
        const bool dma = f.from_client();
        const Towards request_way = dma ? Towards::Vm : Towards::Client;
        const std::uint64_t key[3] = {f.word(0) & kKeyMask0, f.word(1), f.word(2)};
        if (towards == request_way) {
            Entry& e = push(channel, towards, dma ? EventKind::Dma : EventKind::Mmio, now);
            const std::uint64_t seq = tail - 1;
            Event& ev = e.ev;
            ev.id = static_cast<std::uint8_t>(f.rid());
            ev.op = op;
            ev.size = static_cast<std::uint8_t>(f.size());
            ev.sid = static_cast<std::uint8_t>(f.sid());
            ev.flags = static_cast<std::uint8_t>(f.flags());
            ev.tag = f.tag();
            ev.mask = f.byte_mask();
            ev.address = f.address();
            if (!is_read_op(op)) copy_data(ev, f);
            std::copy(std::begin(key), std::end(key), e.key);
            if (dma || access_wants_reply(op)) {
                e.done = false;
                ev.status = Status::NoReply;  // until the reply comes
            }
            if (dma) {
                if (inflight) e.cause_seq = *inflight;
            } else {
                inflight = seq;
            }
            if (options.raw_frames) keep(e.raw, bytes);
            drain();
            return;
        }
        // A reply: find its request among the waiting entries of this channel.
        const EventKind kind = dma ? EventKind::Dma : EventKind::Mmio;
        for (std::uint64_t s = head; s < tail; ++s) {
            Entry& e = at(s);
            if (e.done || e.ev.kind != kind || e.ev.channel != channel || e.key[0] != key[0] || e.key[1] != key[1] ||
                e.key[2] != key[2])
                continue;
            if (is_read_op(op)) copy_data(e.ev, f);
            e.ev.error = f.error();
            e.ev.status = Status::Complete;
            e.ev.reply_after_ns = now - std::min(now, e.ev.time_ns);
            if (options.raw_frames) keep(e.raw_reply, bytes);
            e.done = true;
            if (inflight == s) inflight.reset();
            drain();
            return;
        }
        Entry& e = push(channel, towards, kind, now);  // the request was not seen
        Event& ev = e.ev;
        ev.id = static_cast<std::uint8_t>(f.rid());
        ev.op = op;
        ev.size = static_cast<std::uint8_t>(f.size());
        ev.sid = static_cast<std::uint8_t>(f.sid());
        ev.flags = static_cast<std::uint8_t>(f.flags());
        ev.tag = f.tag();
        ev.mask = f.byte_mask();
        ev.address = f.address();
        ev.error = f.error();
        ev.status = Status::ReplyOnly;
        copy_data(ev, f);
        if (options.raw_frames) keep(e.raw_reply, bytes);
        drain();
    }
};

TraceTap::TraceTap(TraceWriter& writer, const TapOptions& options)
    : impl_(std::make_unique<Impl>(writer, options)) {}

TraceTap::~TraceTap() { finish(); }

void TraceTap::on_frame(Channel channel, Direction direction, std::span<const std::byte> frame) {
    std::lock_guard lock(impl_->writer.mutex());
    impl_->frame(channel, direction, frame, impl_->writer.now_locked());
}

void TraceTap::on_frames(Channel channel, Direction direction, std::span<const Frame> frames) {
    std::lock_guard lock(impl_->writer.mutex());
    const std::uint64_t now = impl_->writer.now_locked();
    for (const Frame& f : frames) impl_->frame(channel, direction, f.bytes(), now);
}

void TraceTap::on_connection(Channel channel, bool up) {
    std::lock_guard lock(impl_->writer.mutex());
    Impl& m = *impl_;
    if (!up) {
        if (m.inflight && m.at(*m.inflight).ev.channel == channel) m.inflight.reset();
        m.finish_where([channel](const Entry& e) { return e.ev.channel == channel; });
    }
    Entry& e = m.push(channel, Towards::Client, EventKind::Connection, m.writer.now_locked());
    e.ev.up = up;
    m.drain();
}

void TraceTap::finish() {
    std::lock_guard lock(impl_->writer.mutex());
    impl_->finish_where([](const Entry&) { return true; });
}

std::uint64_t TraceTap::frames() const {
    std::lock_guard lock(impl_->writer.mutex());
    return impl_->frames;
}

}  // namespace coreio::trace
