#include "coreio/client_session.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace coreio {

namespace {

constexpr std::uint32_t kNone = 0xffffffffu;

constexpr std::size_t idx(Channel ch) { return static_cast<std::size_t>(ch); }
// Frames a receive() holds for its tap at most (a handler raising IRQ edges in a
// loop would grow the batch without end): beyond, the tap gets them early.
constexpr std::size_t kMaxTapBatch = 4096;
const char* channel_name(Channel ch) { return ch == Channel::Main ? "main" : "DMA"; }

}  // namespace

void log_to_stderr(std::string_view message) {
    std::string line;
    line.reserve(message.size() + 9);
    line += "coreio: ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

// ---- MmioHandler defaults (PROTOCOL.md: element 2 is at addr + size) --------

int MmioHandler::read_pair(std::uint64_t addr, std::size_t len, void* buf1, void* buf2, unsigned flags) {
    const int r1 = read(addr, len, buf1, flags);
    const int r2 = read(addr + len, len, buf2, flags);
    return (r1 != 0 || r2 != 0) ? 1 : 0;
}

int MmioHandler::write_pair(std::uint64_t addr, std::size_t len, const void* buf1, const void* buf2,
                            unsigned flags) {
    const int r1 = write(addr, len, buf1, flags);
    const int r2 = write(addr + len, len, buf2, flags);
    return (r1 != 0 || r2 != 0) ? 1 : 0;
}

// ---- internal structures -----------------------------------------------------

struct ClientSession::Transfer {
    DmaCompletion done;
    std::byte* buf = nullptr;       // user buffer (read into / write from)
    std::uint64_t addr = 0;
    std::size_t len = 0;            // bytes to transfer
    std::size_t sent = 0;           // bytes already sent as chunks
    std::uint32_t in_flight = 0;    // chunks sent without reply
    std::uint32_t gen = 0;          // bumps on reuse, so stale handles miss
    std::uint32_t next = kNone;     // send-queue link
    Op op = Op::Read;
    std::uint8_t mid = 0, sid = 0, flags = 0;
    bool faulted = false;
    bool cancelled = false;
    bool live = false;
};

/// A chunk in flight. Its op, size, address, mid and sid are in `key`: a reply
/// that matches it carries them too.
struct ClientSession::Slot {
    ReplyKey key;                   // what the chunk's reply must echo (is_reply_to)
    std::size_t offset = 0;         // of this chunk in the transfer's buffer
    std::uint32_t transfer = kNone;
    bool used = false;
};

struct ClientSession::Ready {
    DmaCompletion done;
    int result;
};

// ---- session -------------------------------------------------------------------

ClientSession::ClientSession(SessionOptions options)
    : options_(std::move(options)),
      reader_{FrameReader(std::clamp<std::size_t>(options_.max_frame_blocks, 1, kMaxBlocks)),
              FrameReader(std::clamp<std::size_t>(options_.max_frame_blocks, 1, kMaxBlocks))},
      queue_head_(kNone),
      queue_tail_(kNone),
      slots_(new Slot[kMaxOutstanding]) {
    free_slots_.reserve(kMaxOutstanding);
    for (std::size_t i = kMaxOutstanding; i-- > 0;) free_slots_.push_back(static_cast<std::uint16_t>(i));
    transfers_.reserve(16);
    free_transfers_.reserve(16);
    ready_.reserve(16);
}

ClientSession::~ClientSession() = default;

int ClientSession::receive(Channel ch, std::span<const std::byte> bytes) {
    const std::size_t i = idx(ch);
    if (closed_) return -ENOTCONN;
    if (poisoned_[i]) return -EPROTO;
    if (ch == Channel::Main && dispatching_) return -EDEADLK;
    // Nested (a handler's blocking DMA): what the outer batch saw goes first;
    // the outer batch's later received frames keep its start time.
    flush_tap();
    const bool nested = receiving_;
    const auto outer_since = tap_since_;
    if (options_.tap && options_.clock) tap_since_ = options_.clock();
    bool ok;
    {
        // Nested when a handler's blocking DMA receives on the DMA channel mid-batch.
        struct Restore {
            bool& flag;
            bool value;
            ~Restore() { flag = value; }
        } restore{receiving_, receiving_};
        receiving_ = true;
        ok = reader_[i].feed(
            bytes, [&](const Frame& f) { on_frame(ch, f); },
            [&](FrameError e, const Frame& f) { report(ch, e, f); });
        if (!ok) poisoned_[i] = true;
        refill_window();
    }
    if (nested || !options_.defer_tap) {
        flush_tap();
        tap_since_ = outer_since;
    } else if (!tap_batch_.empty()) {  // for deliver_tap(), once the owner has sent the replies
        tap_until_ = options_.clock();
        tap_ended_ = true;
    }
    if (!ready_.empty()) run_completions();  // most batches complete no DMA: skip the call
    return ok ? 0 : -EPROTO;
}

void ClientSession::on_frame(Channel ch, const Frame& f) {
    if (closed_) return;  // a handler's DMA wait may have seen the connection end
    tap_frame(ch, Direction::Received, f);
    const FrameError e = f.validate(reader_[idx(ch)].max_blocks());
    if (e != FrameError::Ok) {
        on_malformed(ch, e, f);
        return;
    }
    const Op op = f.op();
    if (op == Op::Ping) {
        if (f.from_client()) {  // we never ping, so this answers nothing
            report(ch, FrameError::UnexpectedOp, f);
            return;
        }
        echo(ch, f);
        return;
    }
    if (is_access_op(op)) {
        if (f.from_client()) {
            if (ch == Channel::Dma && (op == Op::Read || op == Op::WriteAck))
                on_dma_reply(f);
            else
                report(ch, FrameError::UnexpectedOp, f);
            return;
        }
        if (ch == Channel::Dma) {  // ranges are claimed on main: unclaimed here, echo
            echo(ch, f);
            return;
        }
        on_mmio(f);
        return;
    }
    if (op == Op::Reset) {
        if (dispatching_)
            reset_deferred_ = true;  // never re-enter a device model mid-access
        else
            deliver_reset();
        return;
    }
    report(ch, FrameError::UnexpectedOp, f);  // IRQ_UPDATE, RGN_CLAIM: client -> VM only
}

void ClientSession::on_malformed(Channel ch, FrameError e, const Frame& f) {
    report(ch, e, f);
    // A VM request it waits for (bad size): answer with a bus error rather than
    // leave the VM hanging. Only the 64-byte header is echoed, never the data.
    const bool sized = e == FrameError::BadSize || e == FrameError::BadPairSize;
    if (sized && !f.from_client() && access_wants_reply(f.op())) {
        Frame r = f;
        r.set_error(true);
        echo(ch, r);
    }
}

void ClientSession::on_mmio(Frame f) {
    f.set_extra_blocks(0);  // every frame a client sends is 64 bytes
    const unsigned rid = f.rid();
    MmioHandler* h = rid < kNumRanges ? handlers_[rid] : nullptr;
    if (h == nullptr) {  // unclaimed or rid >= 8: straight back, unchanged
        send(Channel::Main, f);
        return;
    }
    const Op op = f.op();
    const std::size_t size = f.size();
    const std::uint64_t addr = f.address();
    const unsigned flags = f.flags();
    int rc = 0;
    dispatching_ = true;
    try {
        switch (op) {
        case Op::Read: rc = h->read(addr, size, f.payload(), flags); break;
        case Op::Write:
        case Op::WriteAck: rc = h->write_masked(addr, size, f.payload(), flags, f.byte_mask()); break;
        case Op::ReadPair: rc = h->read_pair(addr, size, f.payload(), f.pair_second(), flags); break;
        case Op::WritePair:
        case Op::WriteAckPair: rc = h->write_pair(addr, size, f.payload(), f.pair_second(), flags); break;
        default: break;
        }
    } catch (const std::exception& ex) {
        rc = 1;
        log_line(Channel::Main, std::string("MMIO handler for rid ") + std::to_string(rid) +
                                    " threw: " + ex.what() + " (answered as a bus error)");
    } catch (...) {
        rc = 1;
        log_line(Channel::Main, std::string("MMIO handler for rid ") + std::to_string(rid) +
                                    " threw an exception (answered as a bus error)");
    }
    dispatching_ = false;
    if (rc != 0) f.set_error(true);
    if (access_wants_reply(op) && !closed_) send(Channel::Main, f);
    if (reset_deferred_) deliver_reset();
}

void ClientSession::deliver_reset() {
    reset_deferred_ = false;
    dispatching_ = true;
    for (unsigned rid = 0; rid < kNumRanges; ++rid) {
        MmioHandler* h = handlers_[rid];
        // A range claimed twice by one handler object still resets once per claim:
        // the device model sees one reset per range it serves.
        if (h == nullptr) continue;
        try {
            h->reset();
        } catch (...) {
            log_line(Channel::Main, "reset handler for rid " + std::to_string(rid) + " threw an exception");
        }
    }
    dispatching_ = false;
}

void ClientSession::on_dma_reply(const Frame& f) {
    const std::uint32_t tag = f.tag();
    const std::uint32_t si = tag;  // the slot number: ids stay within 0..kMaxOutstanding-1, as the original's
    if (si >= kMaxOutstanding || !slots_[si].used || !(slots_[si].key == reply_key(f))) {
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "DMA reply matches no request in flight (tag 0x%08x (w0[63:32]), %s addr 0x%llx size %u)", tag,
                      op_name(f.opcode()), static_cast<unsigned long long>(f.address()), f.size());
        log_line(Channel::Dma, buf);
        return;
    }
    Slot& s = slots_[si];
    Transfer& t = transfers_[s.transfer];
    if (f.error())
        t.faulted = true;
    else if (f.op() == Op::Read && !t.cancelled)  // op and size: the request's (the key matched)
        std::memcpy(t.buf + s.offset, f.payload(), f.size());  // straight into the user's buffer
    s.used = false;
    free_slots_.push_back(static_cast<std::uint16_t>(si));
    if (--t.in_flight == 0 && t.sent == t.len) finish(s.transfer, t.faulted ? -EFAULT : 0);
}

void ClientSession::send(Channel ch, const Frame& f) {
    if (closed_) return;
    ByteQueue& out = out_[idx(ch)];
    std::memcpy(out.append(kBlockSize), f.data(), kBlockSize);
    tap_frame(ch, Direction::Sent, f);
    if (ch == Channel::Main && on_backlog_ && (dispatching_ || !receiving_) && out.size() > backlog_limit_)
        on_backlog_(ch);
}

void ClientSession::tap_frame_to(FrameTap& tap, Channel ch, Direction d, const Frame& f) {
    if (!receiving_ || options_.clock == nullptr) {
        flush_tap();  // a batch kept for deliver_tap() came first
        tap.on_frame(ch, d, f.bytes());
        return;
    }
    tap_batch_.push_back(TapFrame{ch, d, f});
    if (tap_batch_.size() >= kMaxTapBatch) flush_tap();
}

void ClientSession::flush_tap_batch() {
    if (options_.tap)
        options_.tap->on_frames(
            TapBatch{tap_batch_, tap_since_, tap_ended_ ? tap_until_ : options_.clock()});
    tap_batch_.clear();
    tap_ended_ = false;
}

void ClientSession::echo(Channel ch, Frame f) {
    f.set_extra_blocks(0);
    send(ch, f);
}

void ClientSession::refill_window() {
    while (queue_head_ != kNone && !free_slots_.empty()) {
        const std::uint32_t ti = queue_head_;
        Transfer& t = transfers_[ti];
        const std::uint64_t a = t.addr + t.sent;
        const std::size_t chunk = std::min<std::size_t>(kChunkAlign - (a & (kChunkAlign - 1)), t.len - t.sent);
        const std::uint16_t si = free_slots_.back();
        free_slots_.pop_back();
        Slot& s = slots_[si];
        s.offset = t.sent;
        s.transfer = ti;
        s.used = true;

        Frame fr = Frame::dma_request(t.op, t.mid, t.sid, a, static_cast<unsigned>(chunk), t.flags, si);
        if (t.op == Op::WriteAck) std::memcpy(fr.payload(), t.buf + t.sent, chunk);
        std::memset(fr.payload() + chunk, 0, kDataBytes - chunk);  // padding: zero, as the original
        s.key = reply_key(fr);
        send(Channel::Dma, fr);
        t.sent += chunk;
        ++t.in_flight;
        if (t.sent == t.len) {  // fully sent: leave the send queue
            queue_head_ = t.next;
            if (queue_head_ == kNone) queue_tail_ = kNone;
            t.next = kNone;
        }
    }
}

int ClientSession::dma_start(Op op, unsigned mid, unsigned sid, std::uint64_t addr, std::byte* buf,
                             std::size_t len, unsigned flags, DmaCompletion done, std::uint64_t* handle) {
    if (op != Op::Read && op != Op::WriteAck) return -EINVAL;
    if (mid >= kNumMids || sid >= kNumSids || len == 0 || buf == nullptr) return -EINVAL;
    if (addr + (len - 1) < addr) return -EINVAL;  // wraps past 2^64
    if (closed_) return -ENOTCONN;
    std::uint32_t ti;
    if (!free_transfers_.empty()) {
        ti = free_transfers_.back();
        free_transfers_.pop_back();
    } else {
        ti = static_cast<std::uint32_t>(transfers_.size());
        transfers_.emplace_back();
    }
    Transfer& t = transfers_[ti];
    t.done = std::move(done);
    t.buf = buf;
    t.addr = addr;
    t.len = len;
    t.sent = 0;
    t.in_flight = 0;
    t.next = kNone;
    t.op = op;
    t.mid = static_cast<std::uint8_t>(mid);
    t.sid = static_cast<std::uint8_t>(sid);
    t.flags = static_cast<std::uint8_t>(flags & kDmaFlagMask);
    t.faulted = false;
    t.cancelled = false;
    t.live = true;
    ++live_transfers_;
    if (queue_tail_ == kNone)
        queue_head_ = ti;
    else
        transfers_[queue_tail_].next = ti;
    queue_tail_ = ti;
    if (handle) *handle = (static_cast<std::uint64_t>(t.gen) << 32) | ti;
    refill_window();
    return 0;
}

int ClientSession::dma_cancel(std::uint64_t handle) {
    const auto ti = static_cast<std::uint32_t>(handle);
    if (ti >= transfers_.size()) return -ENOENT;
    Transfer& t = transfers_[ti];
    if (!t.live || t.cancelled || t.gen != static_cast<std::uint32_t>(handle >> 32)) return -ENOENT;
    t.cancelled = true;
    t.done = nullptr;
    if (t.sent < t.len) {  // unlink from the send queue: no more chunks
        std::uint32_t prev = kNone;
        for (std::uint32_t q = queue_head_; q != kNone; prev = q, q = transfers_[q].next) {
            if (q != ti) continue;
            const std::uint32_t nx = transfers_[q].next;
            if (prev == kNone)
                queue_head_ = nx;
            else
                transfers_[prev].next = nx;
            if (queue_tail_ == ti) queue_tail_ = prev;
            break;
        }
        t.next = kNone;
        t.len = t.sent;
    }
    if (t.in_flight == 0) finish(ti, -ECANCELED);
    return 0;
}

void ClientSession::finish(std::uint32_t ti, int result) {
    Transfer& t = transfers_[ti];
    if (!t.cancelled) ready_.push_back(Ready{std::move(t.done), result});
    t.done = nullptr;
    t.buf = nullptr;
    t.live = false;
    t.gen = (t.gen + 1) & 0x7fffffffu;
    free_transfers_.push_back(ti);
    --live_transfers_;
}

void ClientSession::fail_all_dma(int result) {
    for (std::size_t si = 0; si < kMaxOutstanding; ++si) {
        Slot& s = slots_[si];
        if (!s.used) continue;
        s.used = false;
        free_slots_.push_back(static_cast<std::uint16_t>(si));
    }
    queue_head_ = queue_tail_ = kNone;
    for (std::uint32_t ti = 0; ti < transfers_.size(); ++ti) {
        if (!transfers_[ti].live) continue;
        transfers_[ti].next = kNone;
        transfers_[ti].in_flight = 0;
        finish(ti, result);
    }
}

void ClientSession::run_completions() {
    // Index-based so that a completion may start DMA or pump the session again
    // (a nested call drains the same queue).
    while (ready_head_ < ready_.size()) {
        Ready r = std::move(ready_[ready_head_++]);
        if (r.done) r.done(r.result);
    }
    ready_.clear();
    ready_head_ = 0;
}

void ClientSession::connection_closed(Channel ch) {
    const std::size_t i = idx(ch);
    if (reader_[i].mid_frame() && !poisoned_[i]) report(ch, FrameError::Truncated, Frame{});
    reader_[i].reset();
    flush_tap();  // before the owner tells the tap the connection is down
    closed_ = true;
    out_[0].clear();
    out_[1].clear();
    fail_all_dma(-ECONNRESET);
    run_completions();
}

void ClientSession::reset() {
    flush_tap();
    fail_all_dma(-ECONNRESET);
    for (std::size_t i = 0; i < 2; ++i) {
        reader_[i].reset();
        poisoned_[i] = false;
        out_[i].clear();
    }
    closed_ = false;
    reset_deferred_ = false;
    std::fill(std::begin(handlers_), std::end(handlers_), nullptr);
    std::fill(std::begin(irq_levels_), std::end(irq_levels_), std::uint8_t{0});
    run_completions();
}

std::span<const std::byte> ClientSession::pending(Channel ch) const { return out_[idx(ch)].pending(); }

void ClientSession::consume(Channel ch, std::size_t n) { out_[idx(ch)].consume(n); }

bool ClientSession::has_pending() const { return !out_[0].empty() || !out_[1].empty(); }

int ClientSession::claim(unsigned rid, MmioHandler& handler) {
    if (rid >= kNumRanges) return -EINVAL;
    if (closed_) return -ENOTCONN;
    if (handlers_[rid] != nullptr) return -EBUSY;
    handlers_[rid] = &handler;
    send(Channel::Main, Frame::claim(rid));
    return 0;
}

int ClientSession::irq_update(unsigned rid, unsigned line, bool level) {
    if (rid >= kNumRanges || line >= kNumIrqLines) return -EINVAL;
    if (closed_) return -ENOTCONN;
    const auto bit = static_cast<std::uint8_t>(1u << line);
    if (((irq_levels_[rid] & bit) != 0) == level) return 0;  // lines are levels: no change, no frame
    irq_levels_[rid] = static_cast<std::uint8_t>(irq_levels_[rid] ^ bit);
    send(Channel::Main, Frame::irq_update(rid, line, level ? 1 : 0));
    return 0;
}

void ClientSession::report(Channel ch, FrameError e, const Frame& f) {
    log_line(ch, describe_error(e, f, reader_[idx(ch)].max_blocks()));
}

void ClientSession::log_line(Channel ch, std::string_view what) {
    std::string msg;
    msg.reserve(what.size() + 20);
    msg += channel_name(ch);
    msg += " connection: ";
    msg += what;
    if (options_.log)
        options_.log(msg);
    else
        log_to_stderr(msg);
}

}  // namespace coreio
