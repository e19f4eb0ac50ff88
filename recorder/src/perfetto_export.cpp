// Trace -> Chrome/Perfetto JSON (the "legacy JSON" format Perfetto's UI and
// trace processor import, and chrome://tracing opens). What a user sees:
//
//   - one process per client ("client N", pid N+1), in it one thread track per
//     MMIO range ("MMIO rid R"), per DMA IOMMU id ("DMA mid M") and one for
//     other events ("events": connect/disconnect, claims, pings, resets,
//     protocol errors as instants);
//   - each MMIO access and DMA chunk as a slice named "OP 0xADDR", as long as
//     its latency (request to reply; posted writes 1 ns), with addr, size,
//     data, tag, error and status as arguments;
//   - each IRQ line as a counter track "IRQ rid R lineL" stepping 0/1;
//   - an arrow (flow) from the MMIO access that was in flight to each DMA
//     chunk it caused (the recorder's `cause`).
//
// Perfetto keys threads by tid across the whole trace and treats pid/tid 0 as
// the idle task, so pids start at 1 and tids are unique per client.
#include <algorithm>
#include <array>
#include <cinttypes>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coreio/recorder/trace_tool.hpp"
#include "read_records.hpp"

namespace coreio::recorder {
namespace {

using trace::Event;
using trace::EventKind;

std::string hex(std::uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%" PRIx64, v);
    return b;
}

// Microseconds with nanosecond digits, as the format wants.
std::string us(std::uint64_t ns) {
    char b[32];
    std::snprintf(b, sizeof b, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
    return b;
}

std::uint32_t pid_of(const Event& ev) { return ev.client + 1; }
// Thread ids: unique per client, never 0.
std::uint32_t mmio_tid(std::uint32_t client, unsigned rid) { return (client + 1) * 10000 + rid; }
std::uint32_t dma_tid(std::uint32_t client, unsigned mid) { return (client + 1) * 10000 + 1000 + mid; }
std::uint32_t events_tid(std::uint32_t client) { return (client + 1) * 10000 + 2000; }

// Where an MMIO slice was drawn, for DMA flows that point back to it. Causes
// are recent (the access in flight), so a ring of the last ones is enough.
struct SliceRef {
    std::uint64_t index = ~std::uint64_t{0};  // record index
    std::uint64_t ts = 0, dur = 0;
    std::uint32_t pid = 0, tid = 0;
};
constexpr std::size_t kCauseRing = 1 << 16;

class PerfettoWriter {
public:
    explicit PerfettoWriter(std::FILE* out) : out_(out), causes_(kCauseRing) {
        std::fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", out_);
    }
    void finish() { std::fputs("\n]}\n", out_); }

    void event(std::uint64_t index, const Event& ev) {
        switch (ev.kind) {
        case EventKind::Mmio:
        case EventKind::Dma: transaction(index, ev); break;
        case EventKind::Irq: irq(ev); break;
        case EventKind::Unknown: break;
        default: instant(ev); break;
        }
    }

private:
    void emit(const std::string& json) {
        std::fputs(first_ ? "\n" : ",\n", out_);
        std::fputs(json.c_str(), out_);
        first_ = false;
    }
    void name_process(std::uint32_t pid) {
        if (!processes_.insert(pid).second) return;
        emit("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) +
             ",\"args\":{\"name\":\"client " + std::to_string(pid - 1) + "\"}}");
    }
    void name_thread(std::uint32_t pid, std::uint32_t tid, const std::string& name) {
        name_process(pid);
        if (!threads_.insert(tid).second) return;
        emit("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) + ",\"tid\":" +
             std::to_string(tid) + ",\"args\":{\"name\":\"" + name + "\"}}");
    }

    void transaction(std::uint64_t index, const Event& ev) {
        const bool mmio = ev.kind == EventKind::Mmio;
        const std::uint32_t pid = pid_of(ev);
        const std::uint32_t tid = mmio ? mmio_tid(ev.client, ev.id) : dma_tid(ev.client, ev.id);
        name_thread(pid, tid, (mmio ? "MMIO rid " : "DMA mid ") + std::to_string(ev.id));
        const std::uint64_t dur = std::max<std::uint64_t>(ev.reply_after_ns, 1);
        const unsigned n_data = std::min<unsigned>(ev.size, 8);
        emit(std::string("{\"name\":\"") + op_name(static_cast<std::uint8_t>(ev.op)) + " " + hex(ev.address) +
             "\",\"cat\":\"" + (mmio ? "mmio" : "dma") + "\",\"ph\":\"X\",\"ts\":" + us(ev.time_ns) +
             ",\"dur\":" + us(dur) + ",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) +
             ",\"args\":{\"addr\":\"" + hex(ev.address) + "\",\"size\":" + std::to_string(ev.size) +
             ",\"data\":\"" + hex(trace::data_value({ev.data.data(), n_data})) + "\",\"tag\":" +
             std::to_string(ev.tag) + ",\"error\":" + (ev.error ? "true" : "false") + ",\"status\":\"" +
             trace::status_name(ev.status) + "\"}}");
        if (mmio) {
            causes_[index % kCauseRing] = {index, ev.time_ns, dur, pid, tid};
        } else if (ev.cause != trace::kNoCause) {
            flow(ev, tid, dur);
        }
    }

    // A flow arrow from the causing MMIO slice to this DMA slice. Both ends sit
    // inside their slices and come after them in the file, so an importer that
    // binds flows to the slice open at that time finds the right ones.
    void flow(const Event& ev, std::uint32_t tid, std::uint64_t dur) {
        const SliceRef& c = causes_[ev.cause % kCauseRing];
        if (c.index != ev.cause) return;  // too far back, or not an MMIO record
        const std::uint64_t last = c.ts + (c.dur > 1 ? c.dur - 1 : 0);
        const std::uint64_t from = std::clamp(ev.time_ns, c.ts, last);
        const std::uint64_t to = ev.time_ns + (dur > 1 ? 1 : 0);
        const std::string id = std::to_string(++flows_);
        emit("{\"name\":\"DMA\",\"cat\":\"dma-cause\",\"ph\":\"s\",\"id\":" + id + ",\"ts\":" + us(from) +
             ",\"pid\":" + std::to_string(c.pid) + ",\"tid\":" + std::to_string(c.tid) + "}");
        emit("{\"name\":\"DMA\",\"cat\":\"dma-cause\",\"ph\":\"f\",\"bp\":\"e\",\"id\":" + id + ",\"ts\":" + us(to) +
             ",\"pid\":" + std::to_string(pid_of(ev)) + ",\"tid\":" + std::to_string(tid) + "}");
    }

    // A counter per line. Lines start low: a line first seen going high gets a
    // 0 sample at time 0, so the counter shows the edge.
    void irq(const Event& ev) {
        const std::uint32_t pid = pid_of(ev);
        name_process(pid);
        const std::string line = "line" + std::to_string(ev.line);
        const std::string head = "{\"name\":\"IRQ rid " + std::to_string(ev.id) + "\",\"ph\":\"C\",\"ts\":";
        const std::string tail = ",\"pid\":" + std::to_string(pid) + ",\"args\":{\"" + line + "\":";
        if (irq_lines_.insert({ev.client, ev.id, ev.line}).second && ev.level != 0 && ev.time_ns > 0)
            emit(head + "0.000" + tail + "0}}");
        emit(head + us(ev.time_ns) + tail + std::to_string(ev.level) + "}}");
    }

    void instant(const Event& ev) {
        const std::uint32_t pid = pid_of(ev), tid = events_tid(ev.client);
        name_thread(pid, tid, "events");
        std::string name = trace::kind_name(ev.kind);
        if (ev.kind == EventKind::Claim) name += " rid " + std::to_string(ev.id);
        if (ev.kind == EventKind::Ping && ev.towards == trace::Towards::Vm) name += " echo";
        if (ev.kind == EventKind::Connection)
            name += std::string(ev.channel == Channel::Main ? " main" : " dma") + (ev.up ? " up" : " down");
        if (ev.kind == EventKind::ProtocolError)
            name += ": " + std::string(error_name(static_cast<FrameError>(ev.code)));
        emit("{\"name\":\"" + name + "\",\"ph\":\"i\",\"s\":\"t\",\"ts\":" + us(ev.time_ns) +
             ",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) + "}");
    }

    std::FILE* out_;
    bool first_ = true;
    std::set<std::uint32_t> processes_, threads_;
    std::set<std::array<std::uint32_t, 3>> irq_lines_;  // (client, rid, line) seen
    std::vector<SliceRef> causes_;
    std::uint64_t flows_ = 0;
};

}  // namespace

std::string export_perfetto(trace::TraceReader& reader, std::FILE* out) {
    PerfettoWriter writer(out);
    std::string e = read_records(reader, "export --perfetto", [&](const Event& ev) { writer.event(reader.index(), ev); });
    writer.finish();
    return e;
}

}  // namespace coreio::recorder
