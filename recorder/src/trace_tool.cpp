#include "coreio/recorder/trace_tool.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <map>
#include <unistd.h>

#include "coreio/recorder/pcap_export.hpp"
#include "coreio/trace/output_file.hpp"
#include "coreio/cli/conventions.hpp"
#include "coreio/trace/writer.hpp"
#include "progress.hpp"

namespace coreio::recorder {
namespace {

using trace::Event;
using trace::EventKind;
using trace::ReadStatus;
using trace::TraceReader;

void error_line(const std::string& s) { std::fprintf(stderr, "coreio-trace: %s\n", s.c_str()); }

int stdout_errno = 0;  // errno of the first failed write to stdout (0: none seen)

// One line to stdout; a failure is remembered for stdout_checked().
void put_line(const std::string& line) {
    if ((std::fputs(line.c_str(), stdout) == EOF || std::fputc('\n', stdout) == EOF) && stdout_errno == 0)
        stdout_errno = errno;
}

bool open_trace(TraceReader& r, const std::string& path) {
    if (std::string e = r.open(path); !e.empty()) {
        error_line(e);
        return false;
    }
    return true;
}

// Maps a read loop's end to an exit code, reporting it: a truncated tail is a
// warning (the records before it are good), corruption is an error.
int end_status(ReadStatus st, const TraceReader& r) {
    if (st == ReadStatus::Truncated) {
        error_line("warning: " + r.message());
        return kExitOk;
    }
    if (st == ReadStatus::Corrupt) {
        error_line(r.message());
        return kExitError;
    }
    return kExitOk;
}

std::string utc(std::uint64_t unix_ns) {
    if (unix_ns == 0) return "unknown";
    const std::time_t t = static_cast<std::time_t>(unix_ns / 1'000'000'000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string seconds(std::uint64_t ns) {
    char b[40];
    std::snprintf(b, sizeof b, "%" PRIu64 ".%09" PRIu64 " s", ns / 1'000'000'000, ns % 1'000'000'000);
    return b;
}

std::string header_line(const trace::TraceHeader& h) {
    std::string s = "# coreio trace (schema " + std::to_string(h.schema_version) + ") by " + h.tool + " " +
                    h.tool_version + " (" + trace::observer_name(h.observer) + "), target " +
                    (h.target.empty() ? "?" : h.target) + ", created " + utc(h.created_unix_ns);
    for (const auto& r : h.ranges) {
        char b[96];
        std::snprintf(b, sizeof b, "; rid %u at 0x%" PRIx64 " size 0x%" PRIx64, r.rid, r.base, r.size);
        s += b;
        if (!r.name.empty()) s += " \"" + r.name + "\"";
    }
    for (const auto& [k, v] : h.labels) s += "; " + k + "=" + v;
    return s;
}

std::string json_escape(std::string_view v) {
    std::string s = "\"";
    for (char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            s += '\\';
            s += c;
        } else if (u < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", u);
            s += b;
        } else {
            s += c;
        }
    }
    return s + "\"";
}

std::string header_json(const trace::TraceHeader& h) {
    std::string s = "{\"header\":{\"schema_version\":" + std::to_string(h.schema_version) +
                    ",\"tool\":" + json_escape(h.tool) + ",\"tool_version\":" + json_escape(h.tool_version) +
                    ",\"created_unix_ns\":" + std::to_string(h.created_unix_ns) + ",\"target\":" +
                    json_escape(h.target) + ",\"observer\":\"" + trace::observer_name(h.observer) +
                    "\",\"raw_frames\":" + (h.raw_frames ? "true" : "false") + ",\"ranges\":[";
    for (std::size_t i = 0; i < h.ranges.size(); ++i) {
        const auto& r = h.ranges[i];
        s += (i ? "," : "") + std::string("{\"rid\":") + std::to_string(r.rid) + ",\"base\":" + std::to_string(r.base) +
             ",\"size\":" + std::to_string(r.size) + ",\"name\":" + json_escape(r.name) + "}";
    }
    s += "],\"memory\":[";
    for (std::size_t i = 0; i < h.memory.size(); ++i) {
        const auto& r = h.memory[i];
        s += (i ? "," : "") + std::string("{\"mid\":") + std::to_string(r.mid) + ",\"sid\":" + std::to_string(r.sid) +
             ",\"base\":" + std::to_string(r.base) + ",\"size\":" + std::to_string(r.size) +
             ",\"name\":" + json_escape(r.name) + "}";
    }
    s += "],\"labels\":{";
    for (std::size_t i = 0; i < h.labels.size(); ++i)
        s += (i ? "," : "") + json_escape(h.labels[i].first) + ":" + json_escape(h.labels[i].second);
    return s + "}}}";
}

// ---- dump ----------------------------------------------------------------

int cmd_dump(const std::string& path, bool json) {
    TraceReader r;
    if (!open_trace(r, path)) return kExitError;
    static char buf[1 << 16];
    std::setvbuf(stdout, buf, _IOFBF, sizeof buf);
    std::string line = json ? header_json(r.header()) : header_line(r.header());
    put_line(line);
    Progress progress("dump", ::isatty(1) != 1);
    Event ev;
    ReadStatus st;
    std::uint64_t n = 0;
    while ((st = r.next(ev)) == ReadStatus::Record && !std::ferror(stdout)) {  // stop at a write error
        progress.update(r.position(), r.size(), ++n);
        if (json) {
            line = trace::event_json(ev);
            line.insert(1, "\"i\":" + std::to_string(r.index()) + ",");
        } else {
            char idx[24];
            std::snprintf(idx, sizeof idx, "%8" PRIu64 " ", r.index());
            line = idx + trace::format_event(ev);
        }
        put_line(line);
    }
    progress.done();
    if (std::fflush(stdout) != 0 && stdout_errno == 0) stdout_errno = errno;  // before a warning on stderr
    return end_status(st, r);
}

// ---- stats ---------------------------------------------------------------

struct Count {
    std::uint64_t n = 0;
    std::uint64_t bytes = 0;
};

/// What `stats` counts over a trace's records.
struct TraceStats {
    std::map<EventKind, std::uint64_t> kinds;
    std::map<std::uint8_t, Count> mmio_ops;                    // by opcode
    std::map<std::uint8_t, std::pair<Count, Count>> by_range;  // rid -> reads, writes
    Count dma_reads, dma_writes;
    std::uint64_t mmio_errors = 0, dma_faults = 0, no_reply = 0, reply_only = 0, mmio = 0;
    std::uint64_t lat_n = 0, lat_sum = 0, lat_min = UINT64_MAX, lat_max = 0;
    std::map<std::tuple<std::uint32_t, std::uint8_t, std::uint8_t>, std::uint64_t> irqs;
    std::map<std::uint32_t, bool> clients;
    std::uint64_t first = UINT64_MAX, last = 0, records = 0;

    void add(const Event& ev) {
        ++records;
        first = std::min(first, ev.time_ns);
        last = std::max(last, ev.time_ns + ev.reply_after_ns);
        clients[ev.client] = true;
        ++kinds[ev.kind];
        const unsigned bytes = is_pair_op(ev.op) ? 2u * ev.size : ev.size;
        if (ev.kind == EventKind::Mmio) add_mmio(ev, bytes);
        if (ev.kind == EventKind::Dma) {
            Count& c = is_read_op(ev.op) ? dma_reads : dma_writes;
            ++c.n;
            c.bytes += bytes;
            dma_faults += ev.error;
        }
        if (ev.kind == EventKind::Mmio || ev.kind == EventKind::Dma) {
            no_reply += ev.status == trace::Status::NoReply;
            reply_only += ev.status == trace::Status::ReplyOnly;
        }
        if (ev.kind == EventKind::Irq) ++irqs[{ev.client, ev.id, ev.line}];
    }

    void add_mmio(const Event& ev, unsigned bytes) {
        ++mmio;
        Count& c = mmio_ops[static_cast<std::uint8_t>(ev.op)];
        ++c.n;
        c.bytes += bytes;
        Count& rc = is_read_op(ev.op) ? by_range[ev.id].first : by_range[ev.id].second;
        ++rc.n;
        rc.bytes += bytes;
        mmio_errors += ev.error;
        if (ev.status == trace::Status::Complete && ev.reply_after_ns > 0) {
            ++lat_n;
            lat_sum += ev.reply_after_ns;
            lat_min = std::min(lat_min, ev.reply_after_ns);
            lat_max = std::max(lat_max, ev.reply_after_ns);
        }
    }

    std::uint64_t duration() const { return records ? last - first : 0; }
    /// Per second of the trace's duration (0 for an instant trace).
    double rate(std::uint64_t n) const {
        const double secs = static_cast<double>(duration()) / 1e9;
        return secs > 0 ? static_cast<double>(n) / secs : 0.0;
    }
};

/// The file, recorder, duration and event-kind lines.
void print_stats_overview(const std::string& path, const TraceReader& r, const TraceStats& t) {
    const auto& h = r.header();
    std::printf("file       %s: %" PRIu64 " bytes, %" PRIu64 " records (%.1f bytes/record)\n", path.c_str(), r.size(),
                t.records, t.records ? static_cast<double>(r.size()) / static_cast<double>(t.records) : 0.0);
    std::printf("recorded   by %s %s (%s), target %s, created %s%s\n", h.tool.c_str(), h.tool_version.c_str(),
                trace::observer_name(h.observer), h.target.empty() ? "?" : h.target.c_str(),
                utc(h.created_unix_ns).c_str(), h.raw_frames ? ", raw frames" : "");
    std::printf("duration   %s, %zu client(s)\n", seconds(t.duration()).c_str(), t.clients.size());
    std::printf("events    ");
    for (const auto& [k, n] : t.kinds) std::printf(" %s %" PRIu64, trace::kind_name(k), n);
    std::printf("\n");
}

/// The MMIO lines: totals, by op, by range, latency.
void print_stats_mmio(const trace::TraceHeader& h, const TraceStats& t) {
    std::printf("mmio       %" PRIu64 " transactions (%.0f/s), %" PRIu64 " bus errors, %" PRIu64
                " without reply, %" PRIu64 " reply only\n",
                t.mmio, t.rate(t.mmio), t.mmio_errors, t.no_reply, t.reply_only);
    std::printf("  by op   ");
    for (const auto& [op, c] : t.mmio_ops) std::printf(" %s %" PRIu64 " (%" PRIu64 " B)", op_name(op), c.n, c.bytes);
    std::printf("\n");
    for (const auto& [rid, rw] : t.by_range) {
        std::printf("  rid %-3u  reads %" PRIu64 " (%" PRIu64 " B), writes %" PRIu64 " (%" PRIu64 " B)", rid,
                    rw.first.n, rw.first.bytes, rw.second.n, rw.second.bytes);
        for (const auto& ri : h.ranges)
            if (ri.rid == rid) std::printf(", range 0x%" PRIx64 "+0x%" PRIx64 " %s", ri.base, ri.size, ri.name.c_str());
        std::printf("\n");
    }
    if (t.lat_n)
        std::printf("  latency  min %.3f us, avg %.3f us, max %.3f us (%" PRIu64 " replies)\n",
                    static_cast<double>(t.lat_min) / 1e3,
                    static_cast<double>(t.lat_sum) / static_cast<double>(t.lat_n) / 1e3,
                    static_cast<double>(t.lat_max) / 1e3, t.lat_n);
}

int cmd_stats(const std::string& path) {
    TraceReader r;
    if (!open_trace(r, path)) return kExitError;
    TraceStats t;
    Progress progress("stats");
    Event ev;
    ReadStatus st;
    while ((st = r.next(ev)) == ReadStatus::Record) {
        t.add(ev);
        progress.update(r.position(), r.size(), t.records);
    }
    progress.done();
    const int code = end_status(st, r);
    if (code != kExitOk) return code;
    print_stats_overview(path, r, t);
    if (t.mmio) print_stats_mmio(r.header(), t);
    if (t.dma_reads.n + t.dma_writes.n) {
        std::printf("dma        reads %" PRIu64 " chunks (%" PRIu64 " B), writes %" PRIu64 " chunks (%" PRIu64
                    " B), %" PRIu64 " faults, %.3f MB/s\n",
                    t.dma_reads.n, t.dma_reads.bytes, t.dma_writes.n, t.dma_writes.bytes, t.dma_faults,
                    t.rate(t.dma_reads.bytes + t.dma_writes.bytes) / 1e6);
    }
    for (const auto& [key, n] : t.irqs)
        std::printf("irq        client %u rid %u line %u: %" PRIu64 " changes\n", std::get<0>(key), std::get<1>(key),
                    std::get<2>(key), n);
    return kExitOk;
}

// ---- diff ----------------------------------------------------------------

int cmd_diff(const std::string& a_path, const std::string& b_path, const trace::CompareOptions& options) {
    TraceReader a, b;
    if (!open_trace(a, a_path) || !open_trace(b, b_path)) return kExitError;
    Progress progress("diff");
    Event ea, eb;
    std::uint64_t index = 0;
    for (;; ++index) {
        progress.update(a.position(), a.size(), index);
        const ReadStatus sa = a.next(ea);
        const ReadStatus sb = b.next(eb);
        if (sa == ReadStatus::Corrupt || sb == ReadStatus::Corrupt) {
            progress.done();
            error_line(sa == ReadStatus::Corrupt ? a.message() : b.message());
            return kExitError;
        }
        const bool end_a = sa != ReadStatus::Record, end_b = sb != ReadStatus::Record;
        if (end_a || end_b) {
            progress.done();
            if (sa == ReadStatus::Truncated) error_line("warning: " + a.message());
            if (sb == ReadStatus::Truncated) error_line("warning: " + b.message());
            if (end_a && end_b) {
                std::printf("same: %" PRIu64 " records\n", index);
                return kExitOk;
            }
            const bool a_ended = end_a;
            std::printf("differ at record #%" PRIu64 ": %s ends after %" PRIu64 " records, %s goes on with\n  %s\n",
                        index, a_ended ? "A" : "B", index, a_ended ? "B" : "A",
                        trace::format_event(a_ended ? eb : ea).c_str());
            return kExitDiffer;
        }
        const trace::Difference d = trace::compare_events(ea, eb, options);
        if (!d.field.empty()) {
            progress.done();
            std::printf("differ at record #%" PRIu64 ": %s: A=%s B=%s\n  A: %s\n  B: %s\n", index, d.field.c_str(),
                        d.a.c_str(), d.b.c_str(), trace::format_event(ea).c_str(), trace::format_event(eb).c_str());
            return kExitDiffer;
        }
    }
}

// ---- export ----------------------------------------------------------------

// Exactly one of the three outputs is non-empty (the command line makes sure).
int cmd_export(const std::string& path, const std::string& vcd, const std::string& perfetto, const std::string& pcap,
               const PcapOptions& pcap_options) {
    if (vcd.empty() + perfetto.empty() + pcap.empty() != 2) {
        error_line("export needs exactly one of --vcd FILE, --perfetto FILE or --pcap FILE");
        return kExitError;
    }
    TraceReader r;
    if (!open_trace(r, path)) return kExitError;
    trace::OutputFile out;  // replaces its path only when complete; refuses the input as output
    if (std::string e = out.open(!vcd.empty() ? vcd : !perfetto.empty() ? perfetto : pcap, {path}); !e.empty()) {
        error_line(e);
        return kExitError;
    }
    std::string e = !vcd.empty()        ? export_vcd(r, out.stream())
                    : !perfetto.empty() ? export_perfetto(r, out.stream())
                                        : export_pcap(r, out.stream(), pcap_options);
    if (e.empty()) e = out.commit();
    if (!e.empty()) {
        error_line(e);
        return kExitError;
    }
    return kExitOk;
}

// ---- cat / slice ---------------------------------------------------------

// Opens the output of cat/slice (a temporary file until close_output()).
int open_output(trace::OutputFile& file, trace::TraceWriter& w, const std::string& out, const trace::TraceHeader& h,
                const std::vector<std::string>& inputs) {
    if (std::string e = file.open(out, inputs); !e.empty()) {
        error_line(e);
        return kExitError;
    }
    trace::WriterOptions o;
    o.background_flush = false;
    o.batch_bytes = 1 << 20;
    if (std::string e = w.open(file.fd(), out, h, o); !e.empty()) {
        error_line(e);
        return kExitError;
    }
    return kExitOk;
}

// Closes the writer and, when the input was read and every record got into
// the file, puts the file in place (else an existing output stays as it was).
int close_output(trace::OutputFile& file, trace::TraceWriter& w, int code) {
    std::string e = w.close();
    if (code != kExitOk) {
        file.abort();
        return code;
    }
    if (e.empty()) e = file.commit();
    if (!e.empty()) {
        error_line(e);
        return kExitError;
    }
    return code;
}

int cmd_cat(const std::vector<std::string>& inputs, const std::string& out) {
    std::vector<std::unique_ptr<TraceReader>> readers;
    for (const auto& in : inputs) {
        readers.push_back(std::make_unique<TraceReader>());
        if (!open_trace(*readers.back(), in)) return kExitError;
    }
    trace::TraceHeader h = readers.front()->header();
    std::string sources;
    for (std::size_t i = 0; i < readers.size(); ++i) {
        h.raw_frames = h.raw_frames || readers[i]->header().raw_frames;
        sources += (i ? "," : "") + inputs[i];
    }
    h.labels.emplace_back("cat.sources", sources);
    trace::OutputFile file;
    trace::TraceWriter w;
    if (int c = open_output(file, w, out, h, inputs); c != kExitOk) return c;
    Progress progress("cat");
    std::uint64_t base_index = 0, offset = 0, end_time = 0;
    const std::uint64_t first_created = readers.front()->header().created_unix_ns;
    int code = kExitOk;
    Event ev;
    for (std::size_t i = 0; i < readers.size(); ++i) {
        TraceReader& r = *readers[i];
        // Later traces keep their place in wall-clock time when both were dated...
        const std::uint64_t created = r.header().created_unix_ns;
        // Never earlier than the end of the previous one, so times keep increasing.
        if (i > 0) {
            const std::uint64_t wall = created && first_created && created >= first_created ? created - first_created : 0;
            offset = std::max(wall, end_time + 1);
        }
        std::uint64_t n = 0;
        ReadStatus st;
        while ((st = r.next(ev)) == ReadStatus::Record) {
            progress.update(r.position(), r.size(), ++n);
            ev.time_ns += offset;
            if (ev.cause != trace::kNoCause) ev.cause += base_index;
            end_time = std::max(end_time, ev.time_ns);
            w.append(ev);
        }
        base_index = w.records();
        if (int c = end_status(st, r); c != kExitOk) code = c;
    }
    return close_output(file, w, code);
}

int cmd_slice(const std::string& in, const std::string& out, std::uint64_t from, std::uint64_t to,
              std::uint64_t first, std::uint64_t last) {
    if (from > to) {
        error_line("--from is after --to");
        return kExitError;
    }
    if (first > last) {
        error_line("--first is after --last");
        return kExitError;
    }
    TraceReader r;
    if (!open_trace(r, in)) return kExitError;
    trace::OutputFile file;
    trace::TraceWriter w;
    if (int c = open_output(file, w, out, r.header(), {in}); c != kExitOk) return c;
    Progress progress("slice");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> kept;  // input index -> output index, for DMA causes
    std::map<std::uint64_t, std::uint64_t> out_index;
    Event ev;
    ReadStatus st;
    while ((st = r.next(ev)) == ReadStatus::Record) {
        const std::uint64_t i = r.index();
        progress.update(r.position(), r.size(), i + 1);
        if (i > last) break;
        if (i < first || ev.time_ns < from || ev.time_ns > to) continue;
        if (ev.cause != trace::kNoCause) {
            const auto it = out_index.find(ev.cause);
            ev.cause = it == out_index.end() ? trace::kNoCause : it->second;
        }
        const std::uint64_t o = w.append(ev);
        if (ev.kind == EventKind::Mmio) out_index[i] = o;
    }
    return close_output(file, w, st == ReadStatus::Record ? kExitOk : end_status(st, r));
}

// Runs a command, then makes sure what it printed reached stdout: a write
// error there (a full disk, /dev/full, a closed pipe) is an error too.
template <class Command>
int stdout_checked(Command&& command) {
    const int code = command();
    errno = 0;
    const bool failed = std::fflush(stdout) != 0 || std::ferror(stdout);
    if (!failed) return code;
    const int e = stdout_errno != 0 ? stdout_errno : errno;
    error_line(std::string("writing to standard output failed") + (e ? std::string(": ") + std::strerror(e) : ""));
    return kExitError;
}

}  // namespace

bool parse_time_ns(std::string_view text, std::uint64_t& ns) {
    std::size_t unit_at = 0;
    while (unit_at < text.size() && (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.'))
        ++unit_at;
    const std::string number(text.substr(0, unit_at));
    const std::string_view unit = text.substr(unit_at);
    if (number.empty() || std::count(number.begin(), number.end(), '.') > 1 || number == ".") return false;
    double scale = 1;
    if (unit.empty() || unit == "ns") scale = 1;
    else if (unit == "us") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else return false;
    if (number.find('.') == std::string::npos && scale == 1) {
        const auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), ns);
        return ec == std::errc() && p == number.data() + number.size();
    }
    const double v = std::strtod(number.c_str(), nullptr) * scale;
    if (!std::isfinite(v) || v < 0 || v > 1.8e19) return false;
    ns = static_cast<std::uint64_t>(std::llround(v));
    return true;
}

namespace {

/// Every subcommand and its settings, as parsed.
struct ToolArgs {
    std::string file, file_b, out, vcd, perfetto, pcap, from_text, to_text;
    std::vector<std::string> inputs;
    bool json = false, timing = false, ignore_tags = false, raw = false;
    std::uint64_t first = 0, last = UINT64_MAX;
    PcapOptions pcap_options;
    CLI::App *dump = nullptr, *stats = nullptr, *diff = nullptr, *exp = nullptr, *cat = nullptr, *slice = nullptr;
};

void declare_subcommands(CLI::App& app, ToolArgs& a) {
    a.dump = app.add_subcommand("dump", "one readable line per record (header line first)");
    a.dump->add_option("file", a.file, "trace file")->required();
    a.dump->add_flag("--json", a.json, "one JSON object per line instead (header object first)");

    a.stats = app.add_subcommand("stats", "counts per event, op and range; bytes, duration, rates, latency");
    a.stats->add_option("file", a.file, "trace file")->required();

    a.diff = app.add_subcommand("diff", "first record where two traces differ (times and tags as options)");
    a.diff->add_option("a", a.file, "first trace")->required();
    a.diff->add_option("b", a.file_b, "second trace")->required();
    a.diff->add_flag("--timing", a.timing, "also compare times and latencies");
    a.diff->add_flag("--ignore-tags", a.ignore_tags, "do not compare VM tags and DMA packet ids");
    a.diff->add_flag("--raw", a.raw, "also compare raw frames");

    a.exp = app.add_subcommand("export", "convert to a waveform (VCD) or a Perfetto/Chrome JSON timeline");
    a.exp->add_option("file", a.file, "trace file")->required();
    auto* vcd_opt = a.exp->add_option("--vcd", a.vcd, "write a VCD file (GTKWave)");
    auto* perfetto_opt = a.exp->add_option("--perfetto", a.perfetto, "write Chrome/Perfetto trace JSON");
    vcd_opt->excludes(perfetto_opt);
    a.exp->add_option("--pcap", a.pcap, "write a pcap file of synthetic TCP traffic (Wireshark, wireshark/coreio.lua)")
        ->excludes(vcd_opt)
        ->excludes(perfetto_opt);
    a.exp->add_option("--pcap-segment", a.pcap_options.segment_bytes,
                      "with --pcap: cut each side's bytes into TCP segments of N bytes (tests reassembly)");

    a.cat = app.add_subcommand("cat", "concatenate traces into one");
    a.cat->add_option("inputs", a.inputs, "trace files, in order")->required();
    a.cat->add_option("-o,--output", a.out, "output trace")->required();

    a.slice = app.add_subcommand("slice", "cut a trace by time and/or record index (bounds inclusive)");
    a.slice->add_option("file", a.file, "trace file")->required();
    a.slice->add_option("-o,--output", a.out, "output trace")->required();
    a.slice->add_option("--from", a.from_text, "first time kept: ns, or with a unit (250us, 1.5ms, 2s)");
    a.slice->add_option("--to", a.to_text, "last time kept");
    a.slice->add_option("--first", a.first, "first record index kept");
    a.slice->add_option("--last", a.last, "last record index kept");
}

/// `slice` with its --from/--to times checked.
int run_slice(const ToolArgs& a) {
    std::uint64_t from = 0, to = UINT64_MAX;
    if (!a.from_text.empty() && !parse_time_ns(a.from_text, from)) {
        error_line("--from: bad time \"" + a.from_text + "\" (use ns, or a number with ns/us/ms/s)");
        return kExitError;
    }
    if (!a.to_text.empty() && !parse_time_ns(a.to_text, to)) {
        error_line("--to: bad time \"" + a.to_text + "\" (use ns, or a number with ns/us/ms/s)");
        return kExitError;
    }
    return cmd_slice(a.file, a.out, from, to, a.first, a.last);
}

/// Runs the subcommand given.
int run_subcommand(const ToolArgs& a) {
    if (a.dump->parsed()) return cmd_dump(a.file, a.json);
    if (a.stats->parsed()) return cmd_stats(a.file);
    if (a.diff->parsed()) {
        trace::CompareOptions o;
        o.timing = a.timing;
        o.tags = !a.ignore_tags;
        o.raw = a.raw;
        return cmd_diff(a.file, a.file_b, o);
    }
    if (a.exp->parsed()) return cmd_export(a.file, a.vcd, a.perfetto, a.pcap, a.pcap_options);
    if (a.cat->parsed()) return cmd_cat(a.inputs, a.out);
    if (a.slice->parsed()) return run_slice(a);
    return kExitError;
}

}  // namespace

int trace_tool_main(int argc, char** argv) {
    CLI::App app{"coreio-trace: look at, compare, convert and cut CoreIO trace files.\n"
                 "Exit status: 0 success (diff: same), 1 diff found a difference, 2 error."};
    app.require_subcommand(1, 1);
    coreio::cli::add_version(app, "coreio-trace");
    ToolArgs a;
    declare_subcommands(app, a);
    if (const auto code = coreio::cli::parse(app, argc, argv)) return *code;
    // Past a file size limit (ulimit -f) a write fails with EFBIG and is
    // reported, and OutputFile removes its temporary, instead of SIGXFSZ
    // ending the process mid-file.
    std::signal(SIGXFSZ, SIG_IGN);
    return stdout_checked([&] {
        try {
            return run_subcommand(a);
        } catch (const std::exception& e) {
            error_line(e.what());
            return kExitError;
        }
    });
}

}  // namespace coreio::recorder
