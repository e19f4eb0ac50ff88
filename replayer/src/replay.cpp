#include "coreio/replayer/replay.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <thread>

#include "coreio/mockvm/guest_memory.hpp"
#include "coreio/trace/writer.hpp"
#include "scenario_internal.hpp"

namespace coreio::replayer {

const char* divergence_kind_name(DivergenceKind k) {
    switch (k) {
    case DivergenceKind::Mismatch: return "mismatch";
    case DivergenceKind::Missing: return "missing";
    case DivergenceKind::Unexpected: return "unexpected";
    case DivergenceKind::Protocol: return "protocol";
    case DivergenceKind::Crash: return "crash";
    case DivergenceKind::Hang: return "hang";
    case DivergenceKind::IrqStuck: return "irq-stuck-high";
    case DivergenceKind::DmaIntoMmio: return "dma-into-mmio";
    case DivergenceKind::Assertion: return "assertion";
    }
    return "?";
}

std::string Divergence::describe() const {
    std::string s = "record " + std::to_string(record) + ": " + divergence_kind_name(kind) + " " + field;
    if (!expected.empty() || !got.empty()) s += ": expected " + expected + ", got " + got;
    if (!context.empty()) s += " (" + context + ")";
    return s;
}

std::string ReplayReport::summary(std::size_t max_lines) const {
    char head[512];
    const double rate = seconds > 0 ? static_cast<double>(counts.accesses) / seconds : 0;
    std::snprintf(head, sizeof head,
                  "%s: %zu divergence%s; %llu steps (%llu accesses, %llu replies checked, %llu IRQ changes, "
                  "%llu DMA chunks, %llu resets) in %.3f s (%.0f accesses/s)%s\n",
                  passed() ? "PASS" : "FAIL", divergences.size(), divergences.size() == 1 ? "" : "s",
                  static_cast<unsigned long long>(counts.steps), static_cast<unsigned long long>(counts.accesses),
                  static_cast<unsigned long long>(counts.replies_checked), static_cast<unsigned long long>(counts.irqs),
                  static_cast<unsigned long long>(counts.dmas), static_cast<unsigned long long>(counts.resets), seconds,
                  rate, findings_mode ? " [findings mode: replies not compared]" : "");
    std::string s;
    if (!error.empty()) s += "error: " + error + "\n";
    s += head;
    for (std::size_t i = 0; i < divergences.size() && i < max_lines; ++i) s += "  " + divergences[i].describe() + "\n";
    if (divergences.size() > max_lines)
        s += "  ... " + std::to_string(divergences.size() - max_lines) + " more\n";
    return s;
}

std::string ReadExpectation::parse(std::string_view spec, ReadExpectation& out) {
    std::uint64_t v[4];
    std::size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
        const std::size_t end = i < 3 ? spec.find(':', pos) : spec.size();
        if (end == std::string_view::npos || !parse_u64(spec.substr(pos, end - pos), v[i]))
            return "bad read expectation '" + std::string(spec) + "': expected RID:OFFSET:MASK:VALUE";
        pos = end + 1;
    }
    if (v[0] > 7) return "bad read expectation '" + std::string(spec) + "': RID must be 0..7";
    out = ReadExpectation{static_cast<unsigned>(v[0]), v[1], v[2], v[3], std::string(spec)};
    return "";
}

namespace {

std::string hex_value(const std::byte* p, unsigned n) {
    std::string s = "0x";
    char b[4];
    for (unsigned i = n; i-- > 0;) {  // little endian: most significant byte last in memory
        std::snprintf(b, sizeof b, "%02x", static_cast<unsigned>(p[i]));
        s += b;
    }
    return s;
}

std::string hex_number(std::uint64_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

std::string irq_text(unsigned rid, unsigned line, bool level) {
    return "rid " + std::to_string(rid) + " line " + std::to_string(line) + " -> " + (level ? "1" : "0");
}

// True when the first n (0..32) bytes at a and b differ; both lie in a
// frame's 40-byte payload, so 8 bytes can always be read. Reads of up to 8
// bytes (nearly all) compare two words, not through a memcmp call (a tenth of
// a replayed read's instructions).
bool bytes_differ(const std::byte* a, const std::byte* b, unsigned n) {
    if (n == 0 || n > 8) return std::memcmp(a, b, n) != 0;
    std::uint64_t x, y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    const unsigned unused_bits = 64 - 8 * n;  // the bytes after the first n
    const std::uint64_t mask = std::endian::native == std::endian::little ? ~std::uint64_t{0} >> unused_bits
                                                                          : ~std::uint64_t{0} << unused_bits;
    return ((x ^ y) & mask) != 0;
}

std::uint64_t le_value(const std::byte* p, unsigned n) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < n && i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(p[i])} << (8 * i);
    return v;
}

}  // namespace

struct Player::State {
    ReplayOptions opt;
    std::vector<trace::RangeInfo> ranges;
    mockvm::GuestMemory mem;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> dirty;  // (addr, size) written since clear_memory()

    // Per run.
    const Scenario* sc = nullptr;
    ReplayReport* rep = nullptr;
    bool compare = false;
    bool stop = false;
    std::size_t irq_next = 0, dma_next = 0;
    std::vector<std::uint8_t> dma_used;
    // Device state seen through the link.
    std::uint8_t levels[kNumRanges] = {};
    std::uint64_t high_since[kNumRanges][kNumIrqLines] = {};
    std::uint8_t claimed = 0;
    // Recording.
    std::vector<trace::Event> held;  // events of the request in flight, written after it
    std::uint64_t last_done = kNoSeq;

    void add(DivergenceKind kind, std::uint64_t step, std::string field, std::string expected, std::string got,
             std::string context = {}) {
        if (rep == nullptr) return;
        if (rep->divergences.size() < opt.max_divergences) {
            Divergence d;
            d.kind = kind;
            d.step = step;
            d.record = step < sc->steps.size() ? sc->steps[step].record : (sc->steps.empty() ? 0 : sc->steps.back().record);
            d.field = std::move(field);
            d.expected = std::move(expected);
            d.got = std::move(got);
            d.context = std::move(context);
            rep->divergences.push_back(std::move(d));
        }
        if (!opt.keep_going || rep->divergences.size() >= opt.max_divergences) stop = true;
    }
    void add_at_record(DivergenceKind kind, std::uint64_t record, std::string field, std::string expected,
                       std::string got) {
        if (rep == nullptr) return;
        if (rep->divergences.size() < opt.max_divergences) {
            Divergence d;
            d.kind = kind;
            d.step = kNoSeq;
            d.record = record;
            d.field = std::move(field);
            d.expected = std::move(expected);
            d.got = std::move(got);
            rep->divergences.push_back(std::move(d));
        }
        if (!opt.keep_going || rep->divergences.size() >= opt.max_divergences) stop = true;
    }
    /// Reports as missing the expected IRQ changes from irq_next on while
    /// `due(e)`: "no change by record `by_record`". Runs after every completion,
    /// so the text is only built for a change actually missing.
    template <class Due>
    void flag_missing_irqs(Due&& due, std::uint64_t by_record) {
        const auto& irqs = sc->irqs;
        while (irq_next < irqs.size() && due(irqs[irq_next]) && !stop) {
            const ExpectedIrq& e = irqs[irq_next++];
            if (opt.ignore.ignores_irq(e.rid, e.line)) continue;
            add_at_record(DivergenceKind::Missing, e.record, "irq", irq_text(e.rid, e.line, e.level),
                          "no change by record " + std::to_string(by_record));
        }
    }
    /// True while expected IRQ changes [irq_next, irqs_due) or DMA chunks
    /// [.., dmas_due) have not arrived.
    bool device_records_due(std::size_t irqs_due, std::size_t dmas_due) {
        const auto& irqs = sc->irqs;
        while (irq_next < irqs.size() && opt.ignore.ignores_irq(irqs[irq_next].rid, irqs[irq_next].line)) ++irq_next;
        while (dma_next < sc->dmas.size() && dma_used[dma_next]) ++dma_next;
        return irq_next < irqs_due || dma_next < dmas_due;
    }
    bool in_mmio(std::uint64_t addr, std::uint64_t size) const {
        for (const auto& r : ranges)
            if (addr < r.base + r.size && r.base < addr + size) return true;
        return false;
    }
    std::uint64_t offset(unsigned rid, std::uint64_t address) const {
        for (const auto& r : ranges)
            if (r.rid == rid) return address - r.base;
        return address & 0xfff;
    }
    /// Before step `next` (steps.size(): the end) is sent: pumps the link until
    /// the device records the trace shows before it have arrived, up to the
    /// timeout, then reports the IRQ changes still missing. Returns 0 or the link's error.
    int wait_for_device(Link& link, std::size_t next) {
        if (!compare) return 0;
        const bool at_end = next >= sc->steps.size();
        const std::uint64_t before_record = at_end ? ~std::uint64_t{0} : sc->steps[next].record;
        std::size_t irqs_due = 0, dmas_due = 0;
        for (std::size_t k = 0; k < sc->irqs.size(); ++k)
            if (sc->irqs[k].record < before_record && (!at_end || sc->irqs[k].deferred)) irqs_due = k + 1;
        for (std::size_t k = 0; k < sc->dmas.size(); ++k)
            if (sc->dmas[k].record < before_record && (!at_end || sc->dmas[k].deferred)) dmas_due = k + 1;
        const auto deadline = std::chrono::steady_clock::now() + opt.timeout;
        while (!stop && link.acts_between_requests() && device_records_due(irqs_due, dmas_due)) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            if (const int rc = link.pump(std::min(left, std::chrono::milliseconds(10))); rc != 0) return rc;
        }
        if (!at_end) {
            flag_missing_irqs([&](const ExpectedIrq& e) { return e.record < before_record; }, before_record);
        }
        return 0;
    }
    void begin(const Scenario& scenario, ReplayReport& report, std::uint8_t claimed_now);
    int send_steps(Link& link, std::chrono::steady_clock::time_point t_start);
    void wait_for_claims(Link& link);
    void link_error(Link& link, int rc);
    void fill(const Step& step);
    void wait_until(Link& link, std::chrono::steady_clock::time_point target);
    void report_unused();
    void record_completion(std::uint64_t seq, const Step& step, const Frame& req, const Frame* reply);
    void check_reset(std::uint64_t seq);
    void check_reply(std::uint64_t seq, const Step& step, const Frame& req, const Frame& reply);
    void check_read_expectations(std::uint64_t seq, const Frame& req, const Frame& reply);
    void check_stuck_irqs(std::uint64_t seq);
    /// Where a DMA chunk first differs from the recorded one (field empty: nowhere).
    struct DmaDifference {
        bool same_chunk;  // differs at most in data, flags, mask or master: still this recording's chunk
        std::string field, expected, got;
    };
    void answer_dma(std::uint64_t cause, bool read, const Frame& req, Frame& reply);
    DmaDifference compare_dma(const ExpectedDma& e, bool read, const Frame& req) const;
    void serve_dma_from_memory(bool read, const Frame& req, Frame& reply);
    void serve_dma_from_recording(std::size_t k, bool read, const Frame& req, Frame& reply);
    void write_event(trace::Event ev, std::uint64_t time) {
        if (opt.record == nullptr) return;
        ev.time_ns = time;
        opt.record->append(ev);
    }
    void hold(trace::Event ev, std::uint64_t cause) {
        if (opt.record == nullptr) return;
        if (cause == kNoSeq || (last_done != kNoSeq && cause <= last_done)) {
            write_event(ev, cause == kNoSeq ? 0 : (cause + 1) * 1000 + 900);
        } else {
            held.push_back(ev);
        }
    }
};

Player::Player(const ReplayOptions& options, const std::vector<trace::RangeInfo>& ranges,
               const std::vector<trace::MemoryInfo>& memory)
    : s_(std::make_unique<State>()) {
    s_->opt = options;
    s_->ranges = ranges;
    for (const auto& m : memory) {
        if (m.size == 0) continue;
        try {
            s_->mem.add_region(m.base, m.size);
        } catch (const std::exception&) {
            // overlapping regions in a hand-written header: the first one wins
        }
    }
}

Player::~Player() = default;

mockvm::GuestMemory& Player::memory() { return s_->mem; }

void Player::clear_memory() {
    for (const auto& [a, n] : s_->dirty) s_->mem.fill(a, n, std::byte{0});
    s_->dirty.clear();
}

void Player::new_device() {
    std::memset(s_->levels, 0, sizeof s_->levels);
    std::memset(s_->high_since, 0, sizeof s_->high_since);
    s_->claimed = 0;
}

void Player::on_claim(unsigned rid) {
    State& s = *s_;
    s.claimed = static_cast<std::uint8_t>(s.claimed | (1u << rid));
    trace::Event ev;
    ev.kind = trace::EventKind::Claim;
    ev.towards = trace::Towards::Vm;
    ev.id = static_cast<std::uint8_t>(rid);
    s.hold(ev, kNoSeq);
}

void Player::on_irq(std::uint64_t cause, unsigned rid, unsigned line, bool level) {
    State& s = *s_;
    if (rid >= kNumRanges || line >= kNumIrqLines) return;  // validate() already rejected these
    if (s.rep) ++s.rep->counts.irqs;
    const std::uint8_t bit = static_cast<std::uint8_t>(1u << line);
    if (level) {
        s.levels[rid] = static_cast<std::uint8_t>(s.levels[rid] | bit);
        s.high_since[rid][line] = cause == kNoSeq ? 0 : cause;
    } else {
        s.levels[rid] = static_cast<std::uint8_t>(s.levels[rid] & ~bit);
    }
    trace::Event ev;
    ev.kind = trace::EventKind::Irq;
    ev.towards = trace::Towards::Vm;
    ev.id = static_cast<std::uint8_t>(rid);
    ev.line = static_cast<std::uint8_t>(line);
    ev.level = level ? 1 : 0;
    s.hold(ev, cause);
    if (!s.compare || s.rep == nullptr || s.opt.ignore.ignores_irq(rid, line)) return;
    const auto& irqs = s.sc->irqs;
    while (s.irq_next < irqs.size() && s.opt.ignore.ignores_irq(irqs[s.irq_next].rid, irqs[s.irq_next].line))
        ++s.irq_next;
    const std::string got = irq_text(rid, line, level);
    const std::string where = cause == kNoSeq ? "before the first request"
                                              : "while record " + std::to_string(s.sc->steps[cause].record);
    if (s.irq_next >= irqs.size()) {
        s.add(DivergenceKind::Unexpected, cause == kNoSeq ? 0 : cause, "irq", "no change", got + " " + where);
        return;
    }
    const ExpectedIrq& e = irqs[s.irq_next++];
    const std::int64_t c = cause == kNoSeq ? -1 : static_cast<std::int64_t>(cause);
    if (e.rid != rid || e.line != line || e.level != level) {
        s.add_at_record(DivergenceKind::Mismatch, e.record, "irq", irq_text(e.rid, e.line, e.level), got + " " + where);
    } else if (c < e.lo || c > e.hi) {
        auto rec = [&](std::int64_t i) {
            return i < 0 ? std::string("start") : std::to_string(s.sc->steps[static_cast<std::size_t>(i)].record);
        };
        s.add_at_record(DivergenceKind::Mismatch, e.record, "irq.position",
                        "while record " + rec(e.lo) + (e.hi != e.lo ? ".." + rec(e.hi) : ""), where);
    }
}

void Player::on_dma(std::uint64_t cause, DmaDirection direction, const Frame& req, Frame& reply) {
    State& s = *s_;
    if (s.rep) ++s.rep->counts.dmas;
    s.answer_dma(cause, direction == DmaDirection::Read, req, reply);
    trace::Event ev = event_from_access(req, &reply);
    ev.reply_after_ns = 10;
    s.hold(ev, cause);
}

// Checks a DMA chunk against the next recorded one and fills `reply`: with the
// recording's data and error where there is one, else from guest memory.
void Player::State::answer_dma(std::uint64_t cause, bool read, const Frame& req, Frame& reply) {
    State& s = *this;
    const std::uint64_t at = cause == kNoSeq ? 0 : cause;
    if (s.opt.assertions.no_dma_into_mmio && s.in_mmio(req.address(), req.size())) {
        s.add(DivergenceKind::DmaIntoMmio, at, "dma.address", "outside the MMIO ranges", hex_number(req.address()),
              describe(req));
        reply.set_error(true);
        return;
    }
    if (!s.compare || s.rep == nullptr) {
        serve_dma_from_memory(read, req, reply);
        return;
    }
    const auto& dmas = s.sc->dmas;
    while (s.dma_next < dmas.size() && s.dma_used[s.dma_next]) ++s.dma_next;
    if (s.dma_next >= dmas.size()) {
        s.add(DivergenceKind::Unexpected, at, "dma", "no DMA", describe(req));
        serve_dma_from_memory(read, req, reply);
        return;
    }
    const std::size_t k = s.dma_next;
    const ExpectedDma& e = dmas[k];
    const DmaDifference d = compare_dma(e, read, req);
    if (d.same_chunk) {
        if (!d.field.empty()) s.add_at_record(DivergenceKind::Mismatch, e.record, d.field, d.expected, d.got);
        ++s.dma_next;
        if (e.has_reply) serve_dma_from_recording(k, read, req, reply);
        else serve_dma_from_memory(read, req, reply);
        return;
    }
    s.add_at_record(DivergenceKind::Mismatch, e.record, d.field, d.expected, d.got + " (" + describe(req) + ")");
    // Answer by address and order: the next unused recording of this chunk.
    for (std::size_t j = k + 1; j < dmas.size() && j < k + 4096; ++j) {
        const ExpectedDma& c = dmas[j];
        if (!s.dma_used[j] && c.op == req.op() && c.address == req.address() && c.size == req.size() && c.has_reply) {
            serve_dma_from_recording(j, read, req, reply);
            return;
        }
    }
    serve_dma_from_memory(read, req, reply);
}

// The first field where a DMA chunk differs from the recorded one. A chunk
// differing only in its data, flags, mask or master is still the same
// transfer step (it is answered from the recording); another op, address or
// size is not.
Player::State::DmaDifference Player::State::compare_dma(const ExpectedDma& e, bool read, const Frame& req) const {
    const Op op = req.op();
    const unsigned size = req.size();
    const std::uint64_t addr = req.address();
    if (e.op != op) return {false, "dma.op", op_name(static_cast<std::uint8_t>(e.op)), op_name(static_cast<std::uint8_t>(op))};
    if (e.address != addr) return {false, "dma.address", hex_number(e.address), hex_number(addr)};
    if (e.size != size) return {false, "dma.size", std::to_string(e.size), std::to_string(size)};
    if (e.mid != req.mid() || e.sid != req.sid())
        return {true, "dma.mid/sid", std::to_string(e.mid) + "/" + std::to_string(e.sid),
                std::to_string(req.mid()) + "/" + std::to_string(req.sid())};
    if (e.flags != req.flags()) return {true, "dma.flags", std::to_string(e.flags), std::to_string(req.flags())};
    if (read) return {true, "", "", ""};
    if (e.mask != req.byte_mask()) return {true, "dma.mask", hex_number(e.mask), hex_number(req.byte_mask())};
    for (unsigned i = 0; i < size; ++i) {
        if ((e.mask >> i & 1) == 0 || opt.ignore.ignores_dma_byte(addr + i)) continue;
        if (e.data[i] != req.payload()[i])
            return {true, "dma.data", hex_value(e.data.data(), size), hex_value(req.payload(), size)};
    }
    return {true, "", "", ""};
}

void Player::State::serve_dma_from_memory(bool read, const Frame& req, Frame& reply) {
    const std::uint64_t addr = req.address();
    const unsigned size = req.size();
    if (read) {
        if (!mem.read(addr, std::span<std::byte>(reply.payload(), size))) reply.set_error(true);
    } else {
        if (!mem.write_masked(addr, req.payload(), size, req.byte_mask())) reply.set_error(true);
        else dirty.emplace_back(addr, size);
    }
}

// Answers with recorded chunk k (a read's data, the error bit); a write still
// lands in guest memory, so later reads of it see what the device wrote.
void Player::State::serve_dma_from_recording(std::size_t k, bool read, const Frame& req, Frame& reply) {
    const ExpectedDma& e = sc->dmas[k];
    const std::uint64_t addr = req.address();
    const unsigned size = req.size();
    dma_used[k] = 1;
    if (read) std::memcpy(reply.payload(), e.data.data(), size);
    else if (mem.write_masked(addr, req.payload(), size, req.byte_mask())) dirty.emplace_back(addr, size);
    reply.set_error(e.error);
}

void Player::on_violation(std::uint64_t cause, std::string_view what) {
    s_->add(DivergenceKind::Protocol, cause == kNoSeq ? 0 : cause, "protocol", "", "", std::string(what));
}

void Player::on_device_log(std::uint64_t cause, std::string_view line) {
    if (line.find("threw") != std::string_view::npos)
        s_->add(DivergenceKind::Crash, cause == kNoSeq ? 0 : cause, "exception", "", "", std::string(line));
}

// Writes the completed request and what it caused to the run's recording (opt.record set).
void Player::State::record_completion(std::uint64_t seq, const Step& step, const Frame& req, const Frame* reply) {
    State& s = *this;
    // Recording: the request, then what it caused.
    {
        const std::uint64_t t = (seq + 1) * 1000;
        if (step.kind == Step::Kind::Reset) {
            trace::Event ev;
            ev.kind = trace::EventKind::Reset;
            s.write_event(ev, t);
        } else {
            trace::Event ev = event_from_access(req, reply);
            if (reply) ev.reply_after_ns = 500;
            s.write_event(ev, t);
        }
        std::uint64_t k = 0;
        for (const trace::Event& ev : s.held) s.write_event(ev, t + 100 + k++);
        s.held.clear();
    }
}

// After a RESET: every IRQ line must be low.
void Player::State::check_reset(std::uint64_t seq) {
    State& s = *this;
    ++s.rep->counts.resets;
    if (s.opt.assertions.irq_low_after_reset && seq >= s.opt.assertions.reset_check_from_step) {
        for (unsigned rid = 0; rid < kNumRanges; ++rid) {
            for (unsigned line = 0; line < kNumIrqLines; ++line) {
                if ((s.levels[rid] >> line & 1) == 0 || s.opt.ignore.ignores_irq(rid, line)) continue;
                s.add(DivergenceKind::IrqStuck, seq, "irq.after-reset", "rid " + std::to_string(rid) + " line " +
                      std::to_string(line) + " low", "still high", "RESET");
            }
        }
    }
}

// The device's reply against the recorded one (error bit, read data outside
// ignored bytes); the step expects a reply and the run compares.
void Player::State::check_reply(std::uint64_t seq, const Step& step, const Frame& req, const Frame& reply) {
    State& s = *this;
    const Op op = req.op();
    const unsigned size = req.size();
    const bool pair = is_pair_op(op);
    ++s.rep->counts.replies_checked;
    const Frame& e = step.expected;
    if (e.error() != reply.error()) {
        s.add(DivergenceKind::Mismatch, seq, "mmio.error", e.error() ? "1" : "0", reply.error() ? "1" : "0",
              describe(req));
    } else if (is_read_op(op) && !reply.error()) {
        const unsigned rid = req.rid();
        for (int el = 0; el < (pair ? 2 : 1); ++el) {
            const std::byte* pe = el == 0 ? e.payload() : e.pair_second();
            const std::byte* pg = el == 0 ? reply.payload() : reply.pair_second();
            bool differ = bytes_differ(pe, pg, size);
            if (differ && s.opt.ignore.has_mmio()) {  // only then can ignored bits make them equal
                const std::uint64_t base = s.offset(rid, req.address()) + static_cast<std::uint64_t>(el) * size;
                differ = false;
                for (unsigned i = 0; i < size && !differ; ++i) {
                    const auto ign = s.opt.ignore.mmio_byte_mask(rid, base + i);
                    differ = ((static_cast<std::uint8_t>(pe[i]) ^ static_cast<std::uint8_t>(pg[i])) & ~ign & 0xff) != 0;
                }
            }
            if (differ) {
                s.add(DivergenceKind::Mismatch, seq, el == 0 ? "mmio.data" : "mmio.data2", hex_value(pe, size),
                      hex_value(pg, size), describe(req));
                break;
            }
        }
    }
}

// The user's read expectations on a completed read.
void Player::State::check_read_expectations(std::uint64_t seq, const Frame& req, const Frame& reply) {
    State& s = *this;
    const Op op = req.op();
    const unsigned size = req.size();
    if (is_read_op(op) && !reply.error()) {
        for (const ReadExpectation& x : s.opt.assertions.reads) {
            if (x.rid != req.rid() || s.offset(req.rid(), req.address()) != x.offset) continue;
            if (size < 8 && (x.mask >> (8 * size)) != 0) continue;  // a narrower read: not the whole field
            const std::uint64_t v = le_value(reply.payload(), size);
            if ((v & x.mask) != x.value)
                s.add(DivergenceKind::Assertion, seq, "expect-read " + x.text, "value & mask == value", hex_number(v),
                      describe(req));
        }
    }
}

// IRQ lines high for longer than the assertion (irq_stuck_steps > 0) allows.
void Player::State::check_stuck_irqs(std::uint64_t seq) {
    State& s = *this;
    for (unsigned rid = 0; rid < kNumRanges; ++rid) {
        for (unsigned line = 0; s.levels[rid] != 0 && line < kNumIrqLines; ++line) {
            if ((s.levels[rid] >> line & 1) && seq - s.high_since[rid][line] > s.opt.assertions.irq_stuck_steps &&
                !s.opt.ignore.ignores_irq(rid, line)) {
                s.add(DivergenceKind::IrqStuck, seq, "irq.stuck",
                      "high for at most " + std::to_string(s.opt.assertions.irq_stuck_steps) + " steps",
                      "rid " + std::to_string(rid) + " line " + std::to_string(line) + " high since record " +
                          std::to_string(s.sc->steps[s.high_since[rid][line]].record));
                s.high_since[rid][line] = seq;  // report once per period
            }
        }
    }
}

void Player::on_complete(std::uint64_t seq, const Frame& req, const Frame* reply) {
    State& s = *s_;
    if (s.sc == nullptr || seq >= s.sc->steps.size()) return;
    const Step& step = s.sc->steps[seq];
    // Each check is called only when it has something to do: this runs once
    // per request, and the calls of the disabled ones were a tenth of it.
    if (s.opt.record != nullptr) s.record_completion(seq, step, req, reply);
    s.last_done = seq;
    if (step.kind == Step::Kind::Reset) {
        s.check_reset(seq);
    } else {
        if (reply != nullptr && s.compare && step.expect_reply) s.check_reply(seq, step, req, *reply);
        if (reply != nullptr && !s.opt.assertions.reads.empty()) s.check_read_expectations(seq, req, *reply);
        if (s.opt.assertions.custom) {
            std::string msg = s.opt.assertions.custom(req, reply);
            if (!msg.empty()) s.add(DivergenceKind::Assertion, seq, "custom", "", "", std::move(msg));
        }
    }
    if (s.opt.assertions.irq_stuck_steps > 0) s.check_stuck_irqs(seq);
    // Every IRQ change caused by requests up to seq has arrived by now, except
    // those the device made after seq completed: they are due before the next request.
    if (s.compare) {
        const auto sseq = static_cast<std::int64_t>(seq);
        s.flag_missing_irqs([sseq](const ExpectedIrq& e) { return e.hi < sseq || (e.hi == sseq && !e.deferred); },
                            step.record);
    }
}

// The device must hold the ranges the scenario uses before requests go out.
void Player::State::wait_for_claims(Link& link) {
    State& s = *this;
    const Scenario& scenario = *sc;
    std::uint8_t need = 0;
    if (s.compare) {
        for (const auto& c : scenario.claims) need = static_cast<std::uint8_t>(need | (1u << (c.rid & 7)));
    } else {
        for (const auto& r : scenario.ranges) need = static_cast<std::uint8_t>(need | (1u << (r.rid & 7)));
    }
    if (need != 0 && (link.claimed() & need) != need) {
        const int rc = link.wait_claims(need, s.opt.timeout);
        if (rc != 0) {
            for (unsigned rid = 0; rid < kNumRanges; ++rid) {
                if ((need >> rid & 1) && !(link.claimed() >> rid & 1)) {
                    std::uint64_t record = 0;
                    for (const auto& c : scenario.claims)
                        if (c.rid == rid) record = c.record;
                    s.add_at_record(DivergenceKind::Missing, record, "claim", "range " + std::to_string(rid) + " claimed",
                                    rc == -ECONNRESET ? "device disconnected" : "no claim");
                }
            }
        }
    }

}

// Reports why the link failed (hang, protocol, crash) at the request in flight, and stops.
void Player::State::link_error(Link& link, int rc) {
    State& s = *this;
    const Scenario& scenario = *sc;
    const std::uint64_t at = link.current();
    const std::uint64_t step = at == kNoSeq ? 0 : at;
    if (rc == -ETIMEDOUT)
        s.add(DivergenceKind::Hang, step, "timeout", "a reply within " + std::to_string(s.opt.timeout.count()) + " ms",
              "none", at < scenario.steps.size() ? describe(scenario.steps[at].frame) : "");
    else if (rc == -EPROTO)
        s.add(DivergenceKind::Protocol, step, "protocol", "", "", "frame length over the limit; stream unusable");
    else
        s.add(DivergenceKind::Crash, step, "connection", "connected", "device closed the connection",
              at < scenario.steps.size() ? describe(scenario.steps[at].frame) : "");
    s.stop = true;
}

// A Fill step: writes its bytes into guest memory.
void Player::State::fill(const Step& step) {
    State& s = *this;
    if (step.fill_size > 0 && step.fill_size <= (64u << 20)) {
        std::vector<std::byte> bytes(step.fill_size);
        fill_bytes(step.fill_seed, bytes);
        if (s.mem.write(step.fill_address, bytes)) s.dirty.emplace_back(step.fill_address, step.fill_size);
    }
}

// Timed replay: pumps the link (or sleeps) until `target`.
void Player::State::wait_until(Link& link, std::chrono::steady_clock::time_point target) {
    for (auto now = std::chrono::steady_clock::now(); now < target; now = std::chrono::steady_clock::now()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(target - now);
        if (link.outstanding() > 0) {
            if (link.pump(std::min(left, std::chrono::milliseconds(10))) != 0) break;
        } else {
            std::this_thread::sleep_until(target);
        }
    }
}

// After the run: expected IRQ changes and DMA chunks that never came.
void Player::State::report_unused() {
    State& s = *this;
    const Scenario& scenario = *sc;
    if (s.compare && !s.stop) {
        for (; s.irq_next < scenario.irqs.size() && !s.stop; ++s.irq_next) {
            const ExpectedIrq& e = scenario.irqs[s.irq_next];
            if (!s.opt.ignore.ignores_irq(e.rid, e.line))
                s.add_at_record(DivergenceKind::Missing, e.record, "irq", irq_text(e.rid, e.line, e.level), "no change");
        }
        for (std::size_t k = 0; k < scenario.dmas.size() && !s.stop; ++k) {
            if (s.dma_used[k]) continue;
            const ExpectedDma& e = scenario.dmas[k];
            char b[96];
            std::snprintf(b, sizeof b, "%s of %u bytes at 0x%llx", op_name(static_cast<std::uint8_t>(e.op)), e.size,
                          static_cast<unsigned long long>(e.address));
            s.add_at_record(DivergenceKind::Missing, e.record, "dma", b, "no such DMA");
        }
    }
}

ReplayReport Player::run(const Scenario& scenario, Link& link) {
    State& s = *s_;
    ReplayReport rep;
    s.begin(scenario, rep, link.claimed());
    const auto t_start = std::chrono::steady_clock::now();
    s.wait_for_claims(link);
    int rc = s.send_steps(link, t_start);
    if (rc == 0) rc = link.drain(s.opt.timeout);
    if (rc == 0) rc = s.wait_for_device(link, scenario.steps.size());
    if (rc != 0) s.link_error(link, rc);
    if (s.compare && !s.stop) s.report_unused();
    // Held events of a request that never completed (crash/hang) still belong in a recording.
    for (const trace::Event& ev : s.held) s.write_event(ev, (s.last_done == kNoSeq ? 0 : s.last_done + 2) * 1000);
    s.held.clear();
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    s.sc = nullptr;
    s.rep = nullptr;
    return rep;
}

void Player::State::begin(const Scenario& scenario, ReplayReport& report, std::uint8_t claimed_now) {
    sc = &scenario;
    rep = &report;
    stop = false;
    irq_next = dma_next = 0;
    dma_used.assign(scenario.dmas.size(), 0);
    held.clear();
    last_done = kNoSeq;
    claimed = claimed_now;
    const bool findings = opt.check == CheckMode::Findings || (opt.check == CheckMode::Auto && scenario.reproducer);
    compare = !findings;
    report.findings_mode = findings;
}

// Sends every step (timed replay: at its recorded time), filling memory and
// waiting for the device where the scenario says. Returns 0 or the link's error.
int Player::State::send_steps(Link& link, std::chrono::steady_clock::time_point t_start) {
    const Scenario& scenario = *sc;
    const bool timed = opt.timing != TimingMode::Fast;
    const double scale = opt.timing == TimingMode::Scaled ? opt.time_scale : 1.0;
    const std::uint64_t t0 = scenario.steps.empty() ? 0 : scenario.steps.front().time_ns;
    for (std::size_t i = 0; i < scenario.steps.size() && !stop; ++i) {
        const Step& step = scenario.steps[i];
        ++rep->counts.steps;
        if (step.kind == Step::Kind::Fill) {
            ++rep->counts.fills;
            if (const int rc = link.drain(opt.timeout); rc != 0) return rc;
            fill(step);
            continue;
        }
        if (timed && step.time_ns >= t0) {
            wait_until(link, t_start + std::chrono::nanoseconds(static_cast<std::int64_t>(
                                           static_cast<double>(step.time_ns - t0) * scale)));
        }
        if (step.wait_device) {
            if (const int rc = wait_for_device(link, i); rc != 0) return rc;
        }
        if (step.kind == Step::Kind::Access) ++rep->counts.accesses;
        if (const int rc = link.submit(i, step.frame); rc != 0) return rc;
        if (timed) link.pump(std::chrono::milliseconds(0));
    }
    return 0;
}

ReplayReport replay_link(const Scenario& scenario, Link& link, const ReplayOptions& options) {
    Player player(options, scenario.ranges, scenario.memory);
    return player.run(scenario, link);
}

ReplayReport replay_in_process(const Scenario& scenario, const DeviceFactory& factory, const ReplayOptions& options) {
    Player player(options, scenario.ranges, scenario.memory);
    InProcessLink link(factory, player);
    return player.run(scenario, link);
}

}  // namespace coreio::replayer
