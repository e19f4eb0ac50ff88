#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "coreio/recorder/trace_tool.hpp"
#include "progress.hpp"

namespace coreio::recorder {
namespace {

using trace::Event;
using trace::EventKind;
using trace::ReadStatus;

// After a read loop: "" on a clean end or a truncated tail (reported as a
// warning), the reader's message on corruption.
std::string finish_status(ReadStatus st, trace::TraceReader& r) {
    if (st == ReadStatus::Truncated) std::fprintf(stderr, "coreio-trace: warning: %s\n", r.message().c_str());
    if (st == ReadStatus::Corrupt) return r.message();
    return {};
}

// ---- VCD ----------------------------------------------------------------

struct Signal {
    std::string scope;  // "c0.rid0"
    std::string name;   // "rd"
    unsigned width;
};

struct Change {
    std::uint64_t time;
    std::uint32_t signal;
    std::uint64_t value;
};

class Vcd {
public:
    // The id of a signal, creating it on first use.
    std::uint32_t signal(const std::string& scope, const char* name, unsigned width) {
        auto key = std::make_tuple(scope, std::string(name));
        auto it = ids_.find(key);
        if (it != ids_.end()) return it->second;
        const auto id = static_cast<std::uint32_t>(signals_.size());
        signals_.push_back({scope, name, width});
        ids_.emplace(std::move(key), id);
        return id;
    }
    void set(std::uint64_t t, std::uint32_t sig, std::uint64_t v) { changes_.push_back({t, sig, v}); }
    void strobe(std::uint64_t t, std::uint32_t sig) {
        set(t, sig, 1);
        set(t + 1, sig, 0);
    }

    void write(std::FILE* out, const trace::TraceHeader& h) {
        std::stable_sort(changes_.begin(), changes_.end(),
                         [](const Change& a, const Change& b) { return a.time < b.time; });
        std::fprintf(out, "$comment coreio trace from %s %s, target %s $end\n", h.tool.c_str(), h.tool_version.c_str(),
                     h.target.empty() ? "?" : h.target.c_str());
        std::fprintf(out, "$version coreio-trace %s $end\n$timescale 1ns $end\n", COREIO_VERSION);
        // Scopes in signal order, grouped by scope name.
        std::vector<std::uint32_t> order(signals_.size());
        for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(),
                         [&](std::uint32_t a, std::uint32_t b) { return signals_[a].scope < signals_[b].scope; });
        std::fprintf(out, "$scope module coreio $end\n");
        std::string open_client, open_sub;
        for (std::uint32_t i : order) {
            const Signal& s = signals_[i];
            const auto dot = s.scope.find('.');
            const std::string client = s.scope.substr(0, dot);
            const std::string sub = dot == std::string::npos ? "" : s.scope.substr(dot + 1);
            if (client != open_client) {
                if (!open_sub.empty()) std::fprintf(out, "$upscope $end\n");
                if (!open_client.empty()) std::fprintf(out, "$upscope $end\n");
                std::fprintf(out, "$scope module %s $end\n", client.c_str());
                open_client = client;
                open_sub.clear();
            }
            if (sub != open_sub) {
                if (!open_sub.empty()) std::fprintf(out, "$upscope $end\n");
                if (!sub.empty()) std::fprintf(out, "$scope module %s $end\n", sub.c_str());
                open_sub = sub;
            }
            std::fprintf(out, "$var wire %u %s %s $end\n", s.width, code(i).c_str(), s.name.c_str());
        }
        if (!open_sub.empty()) std::fprintf(out, "$upscope $end\n");
        if (!open_client.empty()) std::fprintf(out, "$upscope $end\n");
        std::fprintf(out, "$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n");
        for (std::uint32_t i = 0; i < signals_.size(); ++i) value(out, i, 0);
        std::fprintf(out, "$end\n");
        std::uint64_t now = 0;
        for (const Change& c : changes_) {
            if (c.time != now) {
                std::fprintf(out, "#%" PRIu64 "\n", c.time);
                now = c.time;
            }
            value(out, c.signal, c.value);
        }
    }

private:
    static std::string code(std::uint32_t i) {
        std::string s;
        do {
            s += static_cast<char>('!' + i % 94);
            i /= 94;
        } while (i > 0);
        return s;
    }
    void value(std::FILE* out, std::uint32_t i, std::uint64_t v) {
        if (signals_[i].width == 1) {
            std::fprintf(out, "%c%s\n", v ? '1' : '0', code(i).c_str());
            return;
        }
        char bits[65];
        int n = 0;
        for (int b = 63; b >= 0; --b)
            if (n > 0 || ((v >> b) & 1) || b == 0) bits[n++] = ((v >> b) & 1) ? '1' : '0';
        bits[n] = 0;
        std::fprintf(out, "b%s %s\n", bits, code(i).c_str());
    }

    std::vector<Signal> signals_;
    std::map<std::tuple<std::string, std::string>, std::uint32_t> ids_;
    std::vector<Change> changes_;
};

std::string hexs(std::uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%" PRIx64, v);
    return b;
}

}  // namespace

std::string export_vcd(trace::TraceReader& reader, std::FILE* out) {
    Vcd vcd;
    Event ev;
    Progress progress("export --vcd");
    ReadStatus st;
    std::uint64_t n = 0;
    while ((st = reader.next(ev)) == ReadStatus::Record) {
        progress.update(reader.position(), reader.size(), ++n);
        std::string client = "c";
        client += std::to_string(ev.client);
        switch (ev.kind) {
        case EventKind::Mmio:
        case EventKind::Dma: {
            const bool mmio = ev.kind == EventKind::Mmio;
            const std::string scope = client + (mmio ? ".rid" : ".dma_mid") + std::to_string(ev.id);
            const bool read = is_read_op(ev.op);
            vcd.strobe(ev.time_ns, vcd.signal(scope, read ? "rd" : "wr", 1));
            vcd.set(ev.time_ns, vcd.signal(scope, "addr", 64), ev.address);
            vcd.set(ev.time_ns, vcd.signal(scope, "data", 64),
                    trace::data_value({ev.data.data(), std::min<std::size_t>(ev.size, 8)}));
            if (ev.error) vcd.strobe(ev.time_ns + ev.reply_after_ns, vcd.signal(scope, "err", 1));
            break;
        }
        case EventKind::Irq: {
            const std::string name = "irq" + std::to_string(ev.line);
            vcd.set(ev.time_ns, vcd.signal(client + ".rid" + std::to_string(ev.id), name.c_str(), 1), ev.level);
            break;
        }
        case EventKind::Reset:
            vcd.strobe(ev.time_ns, vcd.signal(client, "reset", 1));
            break;
        case EventKind::ProtocolError:
            vcd.strobe(ev.time_ns, vcd.signal(client, "protocol_error", 1));
            break;
        case EventKind::Connection:
            vcd.set(ev.time_ns, vcd.signal(client, ev.channel == Channel::Main ? "main_up" : "dma_up", 1), ev.up);
            break;
        default:
            break;
        }
    }
    if (std::string e = finish_status(st, reader); !e.empty()) return e;
    vcd.write(out, reader.header());
    return {};
}

std::string export_perfetto(trace::TraceReader& reader, std::FILE* out) {
    Event ev;
    Progress progress("export --perfetto");
    std::map<std::pair<std::uint32_t, std::uint32_t>, bool> named;  // (pid, tid) seen
    std::map<std::uint32_t, bool> processes;
    bool first = true;
    auto emit = [&](const std::string& json) {
        std::fputs(first ? "\n" : ",\n", out);
        std::fputs(json.c_str(), out);
        first = false;
    };
    auto track = [&](std::uint32_t pid, std::uint32_t tid, const std::string& name) {
        if (!processes[pid]) {
            processes[pid] = true;
            emit("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) +
                 ",\"args\":{\"name\":\"client " + std::to_string(pid) + "\"}}");
        }
        if (named[{pid, tid}]) return;
        named[{pid, tid}] = true;
        emit("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) + ",\"tid\":" +
             std::to_string(tid) + ",\"args\":{\"name\":\"" + name + "\"}}");
    };
    auto us = [](std::uint64_t ns) {
        char b[32];
        std::snprintf(b, sizeof b, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
        return std::string(b);
    };
    std::fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", out);
    ReadStatus st;
    std::uint64_t n = 0;
    while ((st = reader.next(ev)) == ReadStatus::Record) {
        progress.update(reader.position(), reader.size(), ++n);
        const std::uint32_t pid = ev.client;
        switch (ev.kind) {
        case EventKind::Mmio:
        case EventKind::Dma: {
            const bool mmio = ev.kind == EventKind::Mmio;
            const std::uint32_t tid = mmio ? ev.id : 1000u + ev.id;
            track(pid, tid, (mmio ? "MMIO rid " : "DMA mid ") + std::to_string(ev.id));
            const unsigned n_data = std::min<unsigned>(ev.size, 8);
            emit(std::string("{\"name\":\"") + op_name(static_cast<std::uint8_t>(ev.op)) + " " + hexs(ev.address) +
                 "\",\"cat\":\"" + (mmio ? "mmio" : "dma") + "\",\"ph\":\"X\",\"ts\":" + us(ev.time_ns) +
                 ",\"dur\":" + us(std::max<std::uint64_t>(ev.reply_after_ns, 1)) + ",\"pid\":" + std::to_string(pid) +
                 ",\"tid\":" + std::to_string(tid) + ",\"args\":{\"addr\":\"" + hexs(ev.address) +
                 "\",\"size\":" + std::to_string(ev.size) + ",\"data\":\"" +
                 hexs(trace::data_value({ev.data.data(), n_data})) + "\",\"tag\":" + std::to_string(ev.tag) +
                 ",\"error\":" + (ev.error ? "true" : "false") + ",\"status\":\"" + trace::status_name(ev.status) +
                 "\"}}");
            break;
        }
        case EventKind::Irq:
            emit("{\"name\":\"IRQ rid " + std::to_string(ev.id) + "\",\"ph\":\"C\",\"ts\":" + us(ev.time_ns) +
                 ",\"pid\":" + std::to_string(pid) + ",\"args\":{\"line" + std::to_string(ev.line) +
                 "\":" + std::to_string(ev.level) + "}}");
            break;
        default: {
            track(pid, 2000, "events");
            std::string name = kind_name(ev.kind);
            if (ev.kind == EventKind::Claim) name += " rid " + std::to_string(ev.id);
            if (ev.kind == EventKind::Connection) name += std::string(ev.channel == Channel::Main ? " main" : " dma") +
                                                          (ev.up ? " up" : " down");
            if (ev.kind == EventKind::ProtocolError) name += ": " + std::string(error_name(static_cast<FrameError>(ev.code)));
            emit("{\"name\":\"" + name + "\",\"ph\":\"i\",\"s\":\"t\",\"ts\":" + us(ev.time_ns) +
                 ",\"pid\":" + std::to_string(pid) + ",\"tid\":2000}");
            break;
        }
        }
    }
    std::fputs("\n]}\n", out);
    return finish_status(st, reader);
}

}  // namespace coreio::recorder
