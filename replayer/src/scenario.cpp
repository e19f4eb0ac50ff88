#include "coreio/replayer/scenario.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "coreio/replayer/prng.hpp"
#include "coreio/replayer/rules.hpp"
#include "coreio/trace/reader.hpp"
#include "coreio/trace/writer.hpp"
#include "coreio/trace/frame_event.hpp"
#include "scenario_internal.hpp"

namespace coreio::replayer {

namespace {

void put_le(std::byte* dst, std::uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n && i < 8; ++i) dst[i] = static_cast<std::byte>(v >> (8 * i));
}

}  // namespace

Step Step::access(Op op, unsigned rid, std::uint64_t address, unsigned size, std::uint64_t data,
                  std::uint64_t data2, unsigned flags) {
    Step s;
    s.kind = Kind::Access;
    s.frame = Frame::mmio_request(op, rid, address, size, flags, 0);
    if (!is_read_op(op)) {
        put_le(s.frame.payload(), data, size);
        if (is_pair_op(op)) put_le(s.frame.pair_second(), data2, size);
    }
    return s;
}

Step Step::reset() {
    Step s;
    s.kind = Kind::Reset;
    s.frame = Frame::reset();
    return s;
}

Step Step::fill(std::uint64_t address, std::uint64_t size, std::uint64_t seed) {
    Step s;
    s.kind = Kind::Fill;
    s.fill_address = address;
    s.fill_size = size;
    s.fill_seed = seed;
    return s;
}

void fill_bytes(std::uint64_t seed, std::span<std::byte> out) {
    Rng rng(seed);
    std::size_t i = 0;
    while (i < out.size()) {
        std::uint64_t v = rng.next();
        for (int k = 0; k < 8 && i < out.size(); ++k, ++i, v >>= 8) out[i] = static_cast<std::byte>(v);
    }
}

std::string Scenario::label(const std::string& key) const {
    for (const auto& [k, v] : labels)
        if (k == key) return v;
    return "";
}

std::int64_t Scenario::range_base(unsigned rid) const {
    for (const auto& r : ranges)
        if (r.rid == rid) return static_cast<std::int64_t>(r.base);
    return -1;
}

std::uint64_t Scenario::offset_in_range(unsigned rid, std::uint64_t address) const {
    const std::int64_t base = range_base(rid);
    return base < 0 ? (address & 0xfff) : address - static_cast<std::uint64_t>(base);
}

trace::Event event_from_access(const Frame& req, const Frame* reply) {
    trace::Event ev = trace::transaction_event(req);
    if (reply != nullptr) trace::apply_reply(ev, *reply);
    return ev;
}

namespace {

struct Fill {
    std::uint64_t before, address, size, seed;
};

std::string parse_fill(const std::string& v, Fill& f) {
    std::uint64_t x[4];
    std::size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
        const std::size_t end = i < 3 ? v.find(':', pos) : v.size();
        if (end == std::string::npos || !parse_u64("0x" + v.substr(pos, end - pos), x[i]))
            return "bad fill label '" + v + "' (expected STEP:ADDR:SIZE:SEED in hex)";
        pos = end + 1;
    }
    f = {x[0], x[1], x[2], x[3]};
    if (f.size > (64u << 20)) return "fill label '" + v + "' is larger than 64 MiB";
    return "";
}

/// The fill labels of a trace header, in the order of the requests they precede.
std::string parse_fills(const trace::TraceHeader& h, std::vector<Fill>& fills) {
    for (const auto& [k, v] : h.labels) {
        if (k.rfind(kLabelFill, 0) != 0) continue;
        Fill f{};
        if (std::string err = parse_fill(v, f); !err.empty()) return err;
        fills.push_back(f);
    }
    std::stable_sort(fills.begin(), fills.end(), [](const Fill& a, const Fill& b) { return a.before < b.before; });
    return "";
}

/// Builds a scenario's steps and expectations from one client's trace events, in order.
class ScenarioBuilder {
public:
    ScenarioBuilder(Scenario& out, std::vector<Fill> fills) : out_(out), fills_(std::move(fills)) {}

    /// Adds the step or expectation for one event of the replayed client (record `index`).
    void add(const trace::Event& ev, std::uint64_t index) {
        add_fills();
        switch (ev.kind) {
        case trace::EventKind::Mmio:
            if (ev.towards != trace::Towards::Client || ev.status == trace::Status::ReplyOnly) break;
            add_access(ev, index);
            break;
        case trace::EventKind::Reset: add_reset(ev, index); break;
        case trace::EventKind::Irq: add_irq(ev, index); break;
        case trace::EventKind::Dma:
            if (ev.towards != trace::Towards::Vm || ev.status == trace::Status::ReplyOnly) break;
            add_dma(ev, index);
            break;
        case trace::EventKind::Claim: out_.claims.push_back({index, ev.id}); break;
        default: break;  // pings, connections, protocol errors: nothing to replay
        }
    }

    /// Adds the fills after the last request.
    void finish() {
        while (next_fill_ < fills_.size()) {
            const Fill& f = fills_[next_fill_++];
            out_.steps.push_back(Step::fill(f.address, f.size, f.seed));
        }
    }

private:
    /// Adds the fills due before the next request.
    void add_fills() {
        while (next_fill_ < fills_.size() && fills_[next_fill_].before <= requests_) {
            const Fill& f = fills_[next_fill_++];
            Step s = Step::fill(f.address, f.size, f.seed);
            s.record = out_.records;
            out_.steps.push_back(s);
        }
    }

    /// Index of the newest request step (not a fill), or -1.
    std::int64_t last_request() const {
        std::int64_t last = static_cast<std::int64_t>(out_.steps.size()) - 1;
        while (last >= 0 && out_.steps[static_cast<std::size_t>(last)].kind == Step::Kind::Fill) --last;
        return last;
    }

    /// Whether a device record at `time_ns` came after the newest request had completed.
    bool after_completion(std::uint64_t time_ns) const {
        const std::int64_t last = last_request();
        if (last < 0) return false;
        if (!out_.steps[static_cast<std::size_t>(last)].expect_reply) return true;  // posted write, reset
        return !replies_.empty() && replies_.back().first == last && replies_.back().second < time_ns;
    }

    void add_access(const trace::Event& ev, std::uint64_t index) {
        Step s;
        s.kind = Step::Kind::Access;
        s.record = index;
        s.time_ns = ev.time_ns;
        s.frame = request_from_event(ev);
        s.wait_device = std::exchange(wait_pending_, false);
        if (access_wants_reply(ev.op) && ev.status == trace::Status::Complete) {
            s.expect_reply = true;
            s.expected = s.frame;
            if (is_read_op(ev.op)) {
                std::memcpy(s.expected.payload(), ev.data.data(), std::min<std::size_t>(ev.size, kMaxAccessSize));
                if (is_pair_op(ev.op))
                    std::memcpy(s.expected.pair_second(), ev.data2.data(), std::min<std::size_t>(ev.size, kMaxPairElement));
            }
            s.expected.set_error(ev.error);
            replies_.emplace_back(static_cast<std::int64_t>(out_.steps.size()), ev.time_ns + ev.reply_after_ns);
        }
        out_.steps.push_back(s);
        ++requests_;
    }

    void add_reset(const trace::Event& ev, std::uint64_t index) {
        Step s = Step::reset();
        s.record = index;
        s.wait_device = std::exchange(wait_pending_, false);
        s.time_ns = ev.time_ns;
        out_.steps.push_back(s);
        ++requests_;
    }

    void add_irq(const trace::Event& ev, std::uint64_t index) {
        ExpectedIrq e;
        e.record = index;
        e.rid = ev.id;
        e.line = ev.line;
        e.level = ev.level != 0;
        // Caused by a step already sent: at most the newest one before this record.
        e.hi = last_request();
        // ... and after every request whose reply arrived before it.
        e.lo = -1;
        std::size_t scanned = 0;
        for (auto it = replies_.rbegin(); it != replies_.rend() && scanned < 4096; ++it, ++scanned) {
            if (it->second < ev.time_ns) {
                e.lo = it->first + 1;
                break;
            }
        }
        if (e.lo > e.hi) e.lo = e.hi;  // clocks of different ends: never an empty window
        e.deferred = after_completion(ev.time_ns);
        wait_pending_ = wait_pending_ || e.deferred;
        out_.irqs.push_back(e);
    }

    void add_dma(const trace::Event& ev, std::uint64_t index) {
        ExpectedDma d;
        d.record = index;
        d.op = ev.op;
        d.mid = ev.id;
        d.sid = ev.sid;
        d.flags = ev.flags;
        d.size = ev.size;
        d.address = ev.address;
        d.mask = ev.mask;
        d.error = ev.error;
        d.has_reply = ev.status == trace::Status::Complete;
        d.data = ev.data;
        d.deferred = after_completion(ev.time_ns);
        wait_pending_ = wait_pending_ || d.deferred;
        out_.dmas.push_back(d);
    }

    Scenario& out_;
    std::vector<Fill> fills_;
    std::size_t next_fill_ = 0;
    std::uint64_t requests_ = 0;  // Access and Reset steps so far
    // Reply times of the requests, to bound when each IRQ may have been caused.
    std::vector<std::pair<std::int64_t, std::uint64_t>> replies_;  // (step index among requests, reply time)
    // Device records after the newest request had completed make the next request wait for them.
    bool wait_pending_ = false;
};

std::string load(trace::TraceReader& reader, Scenario& out, std::uint32_t client) {
    out = Scenario{};
    const trace::TraceHeader& h = reader.header();
    out.ranges = h.ranges;
    out.memory = h.memory;
    out.labels = h.labels;
    out.reproducer = out.label(kLabelReproducer) == "1";
    std::vector<Fill> fills;
    if (std::string err = parse_fills(h, fills); !err.empty()) return err;
    ScenarioBuilder builder(out, std::move(fills));
    trace::Event ev;
    for (;;) {
        const trace::ReadStatus st = reader.next(ev);
        if (st == trace::ReadStatus::End) break;
        if (st == trace::ReadStatus::Truncated) {
            out.warning = reader.message();
            break;
        }
        if (st == trace::ReadStatus::Corrupt) return reader.message();
        const std::uint64_t index = reader.index();
        out.records = index + 1;
        if (std::find(out.clients.begin(), out.clients.end(), ev.client) == out.clients.end())
            out.clients.push_back(ev.client);
        if (ev.client == client) builder.add(ev, index);
    }
    builder.finish();
    return "";
}

}  // namespace

std::string load_scenario(const std::string& path, Scenario& out, std::uint32_t client) {
    trace::TraceReader reader;
    if (std::string err = reader.open(path); !err.empty()) return err;
    std::string err = load(reader, out, client);
    return err.empty() ? "" : path + ": " + err;
}

std::string load_scenario_memory(std::span<const std::byte> bytes, Scenario& out, std::uint32_t client) {
    trace::TraceReader reader;
    if (std::string err = reader.open_memory(bytes); !err.empty()) return err;
    return load(reader, out, client);
}

std::string hex(std::uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(v));
    return b;
}

trace::TraceHeader reproducer_header(const Scenario& scenario, const std::string& tool) {
    trace::TraceHeader h;
    h.tool = tool;
    h.tool_version = "0.1.0";
    h.observer = trace::Observer::Vm;
    h.ranges = scenario.ranges;
    h.memory = scenario.memory;
    for (const auto& kv : scenario.labels)
        if (kv.first.rfind(kLabelFill, 0) != 0) h.labels.push_back(kv);
    std::uint64_t requests = 0, nfill = 0;
    for (const Step& s : scenario.steps) {
        if (s.kind == Step::Kind::Fill) {
            char key[40];
            std::snprintf(key, sizeof key, "%s%06llu", kLabelFill, static_cast<unsigned long long>(nfill++));
            h.labels.emplace_back(key, hex(requests) + ":" + hex(s.fill_address) + ":" + hex(s.fill_size) + ":" +
                                           hex(s.fill_seed));
        } else {
            ++requests;
        }
    }
    return h;
}

std::string write_requests(const std::string& path, const Scenario& scenario) {
    trace::TraceWriter w;
    trace::WriterOptions wo;
    wo.background_flush = false;
    if (std::string err = w.open(path, reproducer_header(scenario, "coreio-fuzz"), wo); !err.empty()) return err;
    std::uint64_t t = 0;
    for (const auto& r : scenario.ranges) {
        trace::Event ev;
        ev.kind = trace::EventKind::Claim;
        ev.towards = trace::Towards::Vm;
        ev.id = static_cast<std::uint8_t>(r.rid);
        w.append(ev);
    }
    for (const Step& s : scenario.steps) {
        t += 1000;
        if (s.kind == Step::Kind::Access) {
            trace::Event ev = event_from_access(s.frame, nullptr);
            ev.time_ns = t;
            w.append(ev);
        } else if (s.kind == Step::Kind::Reset) {
            trace::Event ev;
            ev.kind = trace::EventKind::Reset;
            ev.time_ns = t;
            w.append(ev);
        }
    }
    return w.close();
}

}  // namespace coreio::replayer
