#include "coreio/trace/tap.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coreio/trace/frame_event.hpp"
#include "fast_mutex.hpp"

namespace coreio::trace {
namespace {

// A record waiting for its turn (and, for a transaction, its reply).
struct Entry {
    Event ev;
    bool done = false;            // may be written
    ReplyKey key;                 // what the reply must echo (is_reply_to)
    std::uint64_t cause_seq = ~std::uint64_t{0};  // DMA: seq of the MMIO entry in flight
    std::vector<std::byte> raw;   // request / only frame, when kept
    std::vector<std::byte> raw_reply;
    std::string message;          // ProtocolError text
};

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

    // A fresh entry at the tail (writing the oldest first when max_pending
    // wait already), its event as it was: the caller sets every field it uses.
    Entry& next_entry() {
        if (tail - head == ring.size() && ring.size() < options.max_pending) grow(ring.size() * 2);
        if (tail - head == options.max_pending) {
            at(head).done = true;  // never answered in time: NO_REPLY
            drain();
        }
        Entry& e = at(tail++);
        e.done = true;
        e.cause_seq = ~std::uint64_t{0};
        e.raw.clear();
        e.raw_reply.clear();
        return e;
    }
    // Time, client, channel and direction are the tap's.
    void stamp(Event& ev, Channel channel, Towards towards, std::uint64_t now) const {
        ev.time_ns = now;
        ev.client = options.client;
        ev.channel = channel;
        ev.towards = towards;
    }
    // A fresh entry at the tail holding `ev`.
    Entry& push(const Event& ev, Channel channel, Towards towards, std::uint64_t now) {
        Entry& e = next_entry();
        e.ev = ev;
        stamp(e.ev, channel, towards, now);
        return e;
    }
    Entry& push(Channel channel, Towards towards, EventKind kind, std::uint64_t now) {
        Event ev;
        ev.kind = kind;
        return push(ev, channel, towards, now);
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

    void keep(std::vector<std::byte>& dst, std::span<const std::byte> frame) {
        dst.assign(frame.begin(), frame.end());
    }

    // Classifies one frame (exchange_of, is_request_from) and hands it on.
    void frame(Channel channel, Direction direction, std::span<const std::byte> bytes, std::uint64_t now) {
        if (bytes.size() < kBlockSize) {
            ++frames;
            Entry& e = push(channel, towards_of(direction), EventKind::ProtocolError, now);
            e.ev.code = static_cast<std::uint8_t>(FrameError::Truncated);
            e.message = "frame of " + std::to_string(bytes.size()) + " bytes, under 64";
            keep(e.raw, bytes);
            drain();
            return;
        }
        frame(channel, direction, Frame::from_bytes(bytes.data()), bytes, now);
    }

    // The same for a frame whose first block is `f` (whole frame: `bytes`).
    void frame(Channel channel, Direction direction, const Frame& f, std::span<const std::byte> bytes,
               std::uint64_t now) {
        ++frames;
        const Towards towards = towards_of(direction);
        FrameError err = f.validate();
        const Exchange x = exchange_of(f);
        if (err == FrameError::Ok && x == Exchange::Invalid) err = FrameError::UnexpectedOp;
        if (err != FrameError::Ok) {
            protocol_error(channel, towards, f, err, bytes, now);
        } else if (x != Exchange::Mmio && x != Exchange::Dma) {
            Entry& e = push(control_event(f), channel, towards, now);
            if (options.raw_frames) keep(e.raw, bytes);
        } else if (is_request_from(f.from_client(), towards == Towards::Vm)) {
            request(channel, towards, f, bytes, now);
        } else {
            reply(channel, towards, x, f, bytes, now);
        }
        drain();
    }

    Towards towards_of(Direction direction) const {
        const bool sent = direction == Direction::Sent;
        return (options.observer == Observer::Vm) == sent ? Towards::Client : Towards::Vm;
    }

    void protocol_error(Channel channel, Towards towards, const Frame& f, FrameError err,
                        std::span<const std::byte> bytes, std::uint64_t now) {
        Entry& e = push(channel, towards, EventKind::ProtocolError, now);
        e.ev.code = static_cast<std::uint8_t>(err);
        e.message = describe_error(err, f);
        keep(e.raw, bytes);
    }

    // An MMIO access or DMA chunk from the end that starts it.
    void request(Channel channel, Towards towards, const Frame& f, std::span<const std::byte> bytes,
                 std::uint64_t now) {
        Entry& e = next_entry();
        e.ev = Event{};
        fill_transaction(e.ev, f);
        stamp(e.ev, channel, towards, now);
        const std::uint64_t seq = tail - 1;
        e.key = reply_key(f);
        e.done = e.ev.status != Status::NoReply;  // waits for its reply
        if (e.ev.kind == EventKind::Dma) {
            if (inflight) e.cause_seq = *inflight;
        } else {
            inflight = seq;
        }
        if (options.raw_frames) keep(e.raw, bytes);
    }

    // An MMIO request directly followed by its reply, with nothing waiting
    // before it (a synchronous handler's batch: request, reply, request, ...):
    // recorded as frame(request) then frame(reply) would record it, without
    // queueing the request. False (nothing done) when the pair is not that.
    // Precondition: head == tail.
    bool request_and_reply(const TapFrame& req, const TapFrame& rep, std::uint64_t req_time, std::uint64_t rep_time) {
        if (options.raw_frames || req.channel != rep.channel) return false;
        const Frame& q = req.frame;
        const Frame& r = rep.frame;
        const Towards towards = towards_of(req.direction);
        const Towards back = towards_of(rep.direction);
        if (exchange_of(q) != Exchange::Mmio || !expects_reply(q) ||
            !is_request_from(q.from_client(), towards == Towards::Vm) ||
            is_request_from(r.from_client(), back == Towards::Vm) || !(reply_key(q) == reply_key(r)) ||
            q.validate() != FrameError::Ok)
            return false;  // a reply echoing a valid MMIO request's key words is a valid MMIO reply too
        frames += 2;
        Event ev;
        fill_transaction(ev, q);
        stamp(ev, req.channel, towards, req_time);
        apply_reply(ev, r);
        ev.reply_after_ns = rep_time - std::min(rep_time, req_time);
        inflight.reset();
        const std::uint64_t seq = tail++;  // its place in the sequence, written at once
        head = tail;
        written[seq & written_mask] = {seq, writer.append_locked(ev)};
        return true;
    }

    // A reply: completes its request among the waiting entries of this channel.
    void reply(Channel channel, Towards towards, Exchange x, const Frame& f, std::span<const std::byte> bytes,
               std::uint64_t now) {
        const EventKind kind = x == Exchange::Dma ? EventKind::Dma : EventKind::Mmio;
        const ReplyKey key = reply_key(f);
        for (std::uint64_t s = head; s < tail; ++s) {
            Entry& e = at(s);
            if (e.done || e.ev.kind != kind || e.ev.channel != channel || !(e.key == key)) continue;
            apply_reply(e.ev, f);
            e.ev.reply_after_ns = now - std::min(now, e.ev.time_ns);
            if (options.raw_frames) keep(e.raw_reply, bytes);
            e.done = true;
            if (inflight == s) inflight.reset();
            return;
        }
        Entry& e = push(reply_only_event(f), channel, towards, now);  // the request was not seen
        if (options.raw_frames) keep(e.raw_reply, bytes);
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
    for (const Frame& f : frames) impl_->frame(channel, direction, f, f.bytes(), now);
}

void TraceTap::on_frames(const TapBatch& batch) {
    std::lock_guard lock(impl_->writer.mutex());
    const std::uint64_t received = impl_->writer.time_of(batch.received_at);
    const std::uint64_t sent = std::max(received, impl_->writer.time_of(batch.sent_at));
    const auto time = [&](const TapFrame& f) { return f.direction == Direction::Received ? received : sent; };
    const std::span<const TapFrame> frames = batch.frames;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const TapFrame& f = frames[i];
        if (impl_->head == impl_->tail && i + 1 < frames.size() &&
            impl_->request_and_reply(f, frames[i + 1], time(f), time(frames[i + 1]))) {
            ++i;
            continue;
        }
        impl_->frame(f.channel, f.direction, f.frame, f.frame.bytes(), time(f));
    }
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
