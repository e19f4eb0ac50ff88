#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "coreio/recorder/trace_tool.hpp"
#include "read_records.hpp"

namespace coreio::recorder {
namespace {

using trace::Event;
using trace::EventKind;

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

}  // namespace

std::string export_vcd(trace::TraceReader& reader, std::FILE* out) {
    Vcd vcd;
    const std::string e = read_records(reader, "export --vcd", [&vcd](const Event& ev) {
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
    });
    if (!e.empty()) return e;
    vcd.write(out, reader.header());
    return {};
}

}  // namespace coreio::recorder
