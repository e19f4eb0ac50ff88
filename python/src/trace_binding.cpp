// coreio._core.TraceReader / TraceWriter: trace files as Python dicts, one per
// record, with names instead of enum numbers (coreio.trace wraps them in
// Record objects).
#include <cstring>
#include <memory>
#include <string>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "coreio/trace/reader.hpp"
#include "coreio/trace/writer.hpp"

namespace py = pybind11;

namespace coreio::python {
namespace {

using namespace coreio::trace;

py::bytes as_bytes(const std::byte* p, std::size_t n) { return py::bytes(reinterpret_cast<const char*>(p), n); }

template <class Enum>
Enum enum_from(const py::dict& d, const char* key, Enum fallback, Enum last, const char* (*name)(Enum)) {
    if (!d.contains(key)) return fallback;
    const std::string want = py::str(d[key]);
    for (unsigned i = 0; i <= static_cast<unsigned>(last); ++i)
        if (want == name(static_cast<Enum>(i))) return static_cast<Enum>(i);
    throw py::value_error(std::string("unknown ") + key + " '" + want + "'");
}

const char* channel_name(Channel c) { return c == Channel::Main ? "main" : "dma"; }
const char* towards_name(Towards t) { return t == Towards::Client ? "client" : "vm"; }

Op op_from(const py::object& v) {
    if (py::isinstance<py::int_>(v)) {
        const int code = v.cast<int>();
        if (code < 0 || code > 0xFF || !is_known_op(static_cast<std::uint8_t>(code)))
            throw py::value_error("unknown op " + std::to_string(code));
        return static_cast<Op>(code);
    }
    const std::string s = py::str(v);
    for (int code : {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x41, 0xF0, 0xFF})
        if (s == op_name(static_cast<std::uint8_t>(code))) return static_cast<Op>(code);
    throw py::value_error("unknown op '" + s + "' (READ, WRITE, READP, WRITEP, WRITEA, WRITEAP, ...)");
}

py::dict event_to_dict(const Event& e, std::uint64_t index) {
    py::dict d;
    d["index"] = index;
    d["kind"] = kind_name(e.kind);
    d["time_ns"] = e.time_ns;
    d["client"] = e.client;
    d["channel"] = channel_name(e.channel);
    d["towards"] = towards_name(e.towards);
    d["id"] = e.id;
    d["op"] = op_name(static_cast<std::uint8_t>(e.op));
    d["size"] = e.size;
    d["sid"] = e.sid;
    d["flags"] = e.flags;
    d["error"] = e.error;
    d["status"] = status_name(e.status);
    d["tag"] = e.tag;
    d["mask"] = e.mask;
    d["address"] = e.address;
    d["reply_after_ns"] = e.reply_after_ns;
    d["cause"] = e.cause == kNoCause ? py::object(py::none()) : py::object(py::int_(e.cause));
    const std::size_t n = std::min<std::size_t>(e.size, kMaxAccessSize);
    d["data"] = as_bytes(e.data.data(), n);
    d["data2"] = as_bytes(e.data2.data(), is_pair_op(e.op) ? std::min<std::size_t>(e.size, kMaxPairElement) : 0);
    d["line"] = e.line;
    d["level"] = e.level;
    d["up"] = e.up;
    d["code"] = e.code;
    d["message"] = std::string(e.message);
    d["raw"] = as_bytes(e.raw.data(), e.raw.size());
    d["raw_reply"] = as_bytes(e.raw_reply.data(), e.raw_reply.size());
    return d;
}

template <class T>
T get(const py::dict& d, const char* key, T fallback) {
    return d.contains(key) && !d[key].is_none() ? d[key].cast<T>() : fallback;
}

/// Fills `out` from a dict of the shape event_to_dict makes (missing keys: defaults).
void dict_to_event(const py::dict& d, Event& out) {
    out = Event{};
    out.kind = enum_from(d, "kind", EventKind::Unknown, EventKind::ProtocolError, kind_name);
    out.time_ns = get<std::uint64_t>(d, "time_ns", 0);
    out.client = get<std::uint32_t>(d, "client", 0);
    out.channel = get<std::string>(d, "channel", "main") == "dma" ? Channel::Dma : Channel::Main;
    out.towards = get<std::string>(d, "towards", "client") == "vm" ? Towards::Vm : Towards::Client;
    out.id = get<std::uint8_t>(d, "id", 0);
    if (d.contains("op")) out.op = op_from(d["op"]);
    out.sid = get<std::uint8_t>(d, "sid", 0);
    out.flags = get<std::uint8_t>(d, "flags", 0);
    out.error = get<bool>(d, "error", false);
    out.status = enum_from(d, "status", Status::Complete, Status::ReplyOnly, status_name);
    out.tag = get<std::uint32_t>(d, "tag", 0);
    out.address = get<std::uint64_t>(d, "address", 0);
    out.reply_after_ns = get<std::uint64_t>(d, "reply_after_ns", 0);
    out.cause = get<std::uint64_t>(d, "cause", kNoCause);
    for (auto [key, dst, cap] : {std::tuple{"data", out.data.data(), kMaxAccessSize},
                                 std::tuple{"data2", out.data2.data(), kMaxPairElement}}) {
        if (!d.contains(key)) continue;
        const std::string b = d[key].cast<std::string>();
        if (b.size() > cap) throw py::value_error(std::string(key) + " is longer than " + std::to_string(cap) + " bytes");
        std::memcpy(dst, b.data(), b.size());
    }
    const std::size_t data_len = d.contains("data") ? d["data"].cast<std::string>().size() : 0;
    out.size = get<std::uint8_t>(d, "size", static_cast<std::uint8_t>(data_len));
    out.mask = get<std::uint32_t>(d, "mask", default_mask(out.op, out.size));
    out.line = get<std::uint8_t>(d, "line", 0);
    out.level = get<std::uint8_t>(d, "level", 0);
    out.up = get<bool>(d, "up", false);
    out.code = get<std::uint8_t>(d, "code", 0);
}

py::dict header_to_dict(const TraceHeader& h) {
    py::dict d;
    d["schema_version"] = h.schema_version;
    d["tool"] = h.tool;
    d["tool_version"] = h.tool_version;
    d["created_unix_ns"] = h.created_unix_ns;
    d["target"] = h.target;
    py::list ranges, memory;
    for (const auto& r : h.ranges) ranges.append(py::dict(py::arg("rid") = r.rid, py::arg("base") = r.base,
                                                           py::arg("size") = r.size, py::arg("name") = r.name));
    for (const auto& m : h.memory)
        memory.append(py::dict(py::arg("mid") = m.mid, py::arg("sid") = m.sid, py::arg("base") = m.base,
                               py::arg("size") = m.size, py::arg("name") = m.name));
    d["ranges"] = ranges;
    d["memory"] = memory;
    d["labels"] = py::dict();
    for (const auto& [k, v] : h.labels) d["labels"][py::str(k)] = v;
    d["observer"] = observer_name(h.observer);
    d["raw_frames"] = h.raw_frames;
    return d;
}

TraceHeader dict_to_header(const py::dict& d) {
    TraceHeader h;
    h.tool = get<std::string>(d, "tool", "coreio-python");
    h.tool_version = get<std::string>(d, "tool_version", "0.1.0");
    h.target = get<std::string>(d, "target", "");
    h.observer = enum_from(d, "observer", Observer::Vm, Observer::Proxy, observer_name);
    if (d.contains("ranges"))
        for (py::handle r : d["ranges"]) {
            const py::dict x = py::reinterpret_borrow<py::dict>(r);
            h.ranges.push_back({get<std::uint32_t>(x, "rid", 0), get<std::uint64_t>(x, "base", 0),
                                get<std::uint64_t>(x, "size", 0), get<std::string>(x, "name", "")});
        }
    if (d.contains("memory"))
        for (py::handle r : d["memory"]) {
            const py::dict x = py::reinterpret_borrow<py::dict>(r);
            h.memory.push_back({get<std::uint32_t>(x, "mid", 0), get<std::uint32_t>(x, "sid", 0),
                                get<std::uint64_t>(x, "base", 0), get<std::uint64_t>(x, "size", 0),
                                get<std::string>(x, "name", "")});
        }
    if (d.contains("labels"))
        for (auto [k, v] : d["labels"].cast<py::dict>()) h.labels.emplace_back(py::str(k), py::str(v));
    return h;
}

class PyTraceReader {
public:
    explicit PyTraceReader(const std::string& path) {
        if (std::string e = reader_.open(path); !e.empty()) {
            PyErr_SetString(PyExc_OSError, e.c_str());
            throw py::error_already_set();
        }
    }
    py::dict header() const { return header_to_dict(reader_.header()); }
    /// The next record as a dict, or None at the end (a cut-off tail sets `warning`).
    py::object next() {
        Event ev;
        switch (reader_.next(ev)) {
        case ReadStatus::Record: return event_to_dict(ev, reader_.index());
        case ReadStatus::End: return py::none();
        case ReadStatus::Truncated: warning_ = reader_.message(); return py::none();
        case ReadStatus::Corrupt: throw py::value_error(reader_.message());
        }
        return py::none();
    }
    const std::string& warning() const { return warning_; }

private:
    TraceReader reader_;
    std::string warning_;
};

class PyTraceWriter {
public:
    PyTraceWriter(const std::string& path, const py::dict& header) {
        WriterOptions o;
        o.background_flush = false;  // a test's trace: written on close
        if (std::string e = writer_.open(path, dict_to_header(header), o); !e.empty()) {
            PyErr_SetString(PyExc_OSError, e.c_str());
            throw py::error_already_set();
        }
    }
    std::uint64_t append(const py::dict& d) {
        if (!writer_.is_open()) throw py::value_error("the trace writer is closed");
        Event ev;
        dict_to_event(d, ev);
        return writer_.append(ev);
    }
    void close() {
        if (!writer_.is_open()) return;
        if (std::string e = writer_.close(); !e.empty()) {
            PyErr_SetString(PyExc_OSError, e.c_str());
            throw py::error_already_set();
        }
    }
    std::uint64_t now_ns() const { return writer_.now_ns(); }
    std::uint64_t records() const { return writer_.records(); }

private:
    TraceWriter writer_;
};

}  // namespace

void bind_trace(py::module_& m) {
    py::class_<PyTraceReader>(m, "TraceReader")
        .def(py::init<const std::string&>(), py::arg("path"))
        .def("header", &PyTraceReader::header)
        .def("next", &PyTraceReader::next)
        .def_property_readonly("warning", &PyTraceReader::warning);
    py::class_<PyTraceWriter>(m, "TraceWriter")
        .def(py::init<const std::string&, const py::dict&>(), py::arg("path"), py::arg("header"))
        .def("append", &PyTraceWriter::append, py::arg("record"))
        .def("close", &PyTraceWriter::close)
        .def("now_ns", &PyTraceWriter::now_ns)
        .def_property_readonly("records", &PyTraceWriter::records);
}

}  // namespace coreio::python
