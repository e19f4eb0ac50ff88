// coreio._core.Vm: the mock VM in this process. Every blocking call releases
// the GIL, so a Python device in another thread of the same process can answer.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "coreio/mockvm/vm.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"

namespace py = pybind11;

namespace coreio::python {
namespace {

using mockvm::Vm;
using std::chrono::milliseconds;

milliseconds to_ms(std::optional<double> seconds, milliseconds fallback) {
    if (!seconds) return fallback;
    if (*seconds < 0) throw py::value_error("timeout must be >= 0 seconds");
    return milliseconds(static_cast<long long>(*seconds * 1000.0));
}

/// The Vm's FrameTap: forwards to the recording in progress, if any, so that
/// recording can start and stop while the Vm runs.
class SwitchableTap final : public FrameTap {
public:
    void on_frame(Channel channel, Direction direction, std::span<const std::byte> frame) override {
        std::lock_guard g(mu_);
        if (target_ != nullptr) target_->on_frame(channel, direction, frame);
    }
    void on_connection(Channel channel, bool up) override {
        std::lock_guard g(mu_);
        if (target_ != nullptr) target_->on_connection(channel, up);
    }
    void set(FrameTap* t) {
        std::lock_guard g(mu_);
        target_ = t;
    }

private:
    std::mutex mu_;
    FrameTap* target_ = nullptr;
};

/// A trace being written from the Vm's point of view.
struct Recording {
    trace::TraceWriter writer;
    std::unique_ptr<trace::TraceTap> tap;
};

class PyVm {
public:
    PyVm(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges,
         const std::vector<std::pair<std::uint64_t, std::uint64_t>>& memory, std::uint16_t port,
         const std::string& listen, double timeout, bool verbose) {
        mockvm::VmConfig c;
        c.listen = listen;
        c.port = port;
        for (auto [base, size] : ranges) c.ranges.push_back({base, size});
        for (auto [base, size] : memory) c.memory.push_back({base, size});
        c.timeout = to_ms(timeout, milliseconds(5000));
        c.verbose = verbose;
        c.tap = &tap_;
        try {
            vm_ = std::make_unique<Vm>(std::move(c));
        } catch (const std::invalid_argument& e) {
            throw py::value_error(e.what());
        } catch (const std::system_error& e) {
            PyErr_SetString(PyExc_OSError, e.what());
            throw py::error_already_set();
        }
    }
    ~PyVm() { close(); }

    void close() {
        py::gil_scoped_release nogil;
        vm_.reset();  // closes every connection before the recording ends
        finish_recording();
    }
    Vm& vm() {
        if (!vm_) throw py::value_error("the Vm is closed");
        return *vm_;
    }

    py::bytes read(std::uint64_t addr, unsigned size, unsigned flags) {
        if (size == 0 || size > kMaxAccessSize) throw py::value_error("size must be 1..32");
        std::byte out[kMaxAccessSize];
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().read(addr, size, out, flags);
        }
        check(rc, "read", addr);
        return py::bytes(reinterpret_cast<const char*>(out), size);
    }
    std::uint64_t read_value(std::uint64_t addr, unsigned size) {
        mockvm::ReadResult r;
        {
            py::gil_scoped_release nogil;
            r = vm().read_value(addr, size);
        }
        check(r.status, "read", addr);
        return r.value;
    }
    void write(std::uint64_t addr, const py::buffer& data, bool ack, unsigned flags) {
        const py::buffer_info b = data.request();
        const auto size = static_cast<unsigned>(b.size * b.itemsize);
        if (size == 0 || size > kMaxAccessSize) throw py::value_error("data must be 1..32 bytes");
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().write(addr, size, b.ptr, ack, flags);
        }
        check(rc, "write", addr);
    }
    void write_value(std::uint64_t addr, unsigned size, std::uint64_t value, bool ack) {
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().write_value(addr, size, value, ack);
        }
        check(rc, "write", addr);
    }
    py::tuple read_pair(std::uint64_t addr, unsigned size, unsigned flags) {
        if (size == 0 || size > kMaxPairElement) throw py::value_error("size must be 1..16");
        std::byte a[kMaxPairElement], b[kMaxPairElement];
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().read_pair(addr, size, a, b, flags);
        }
        check(rc, "pair read", addr);
        return py::make_tuple(py::bytes(reinterpret_cast<const char*>(a), size),
                              py::bytes(reinterpret_cast<const char*>(b), size));
    }
    void write_pair(std::uint64_t addr, const py::buffer& d1, const py::buffer& d2, bool ack, unsigned flags) {
        const py::buffer_info a = d1.request(), b = d2.request();
        const auto size = static_cast<unsigned>(a.size * a.itemsize);
        if (size == 0 || size > kMaxPairElement || b.size * b.itemsize != a.size * a.itemsize)
            throw py::value_error("data1 and data2 must be of one size, 1..16 bytes");
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().write_pair(addr, size, a.ptr, b.ptr, ack, flags);
        }
        check(rc, "pair write", addr);
    }
    std::vector<std::uint64_t> read_many(const std::vector<std::uint64_t>& addrs, unsigned size, unsigned window) {
        std::vector<std::uint64_t> out(addrs.size());
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().read_many(addrs, size, out, window);
        }
        check(rc, "read_many", addrs.empty() ? 0 : addrs.front());
        return out;
    }
    void write_many(const std::vector<std::uint64_t>& addrs, const std::vector<std::uint64_t>& values, unsigned size,
                    bool ack, unsigned window) {
        if (addrs.size() != values.size()) throw py::value_error("addrs and values differ in length");
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().write_many(addrs, size, values, ack, window);
        }
        check(rc, "write_many", addrs.empty() ? 0 : addrs.front());
    }

    bool wait_claim(unsigned rid, std::optional<double> timeout) {
        const auto t = to_ms(timeout, vm().config().timeout);
        py::gil_scoped_release nogil;
        return vm().wait_for_claim(rid, t);
    }
    bool wait_client(std::optional<double> timeout) {
        const auto t = to_ms(timeout, vm().config().timeout);
        py::gil_scoped_release nogil;
        return vm().wait_for_client(t);
    }
    bool wait_irq(unsigned rid, unsigned line, bool level, std::optional<double> timeout) {
        check_line(rid, line);
        const auto t = to_ms(timeout, vm().config().timeout);
        py::gil_scoped_release nogil;
        return vm().wait_irq(rid, line, level, t);
    }
    void check_line(unsigned rid, unsigned line) {
        if (rid >= kNumRanges || line >= kNumIrqLines) throw py::value_error("rid and line must be 0..7");
    }
    void ping() {
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = vm().ping();
        }
        check(rc, "ping", 0);
    }

    py::bytes mem_read(std::uint64_t addr, std::uint64_t size) {
        std::string out(size, '\0');
        if (!vm().memory().read(addr, std::as_writable_bytes(std::span(out.data(), out.size()))))
            throw py::index_error(fault("read", addr, size));
        return py::bytes(out);
    }
    void mem_write(std::uint64_t addr, const py::buffer& data) {
        const py::buffer_info b = data.request();
        const auto n = static_cast<std::size_t>(b.size * b.itemsize);
        if (!vm().memory().write(addr, std::span(static_cast<const std::byte*>(b.ptr), n)))
            throw py::index_error(fault("write", addr, n));
    }

    void record(const std::string& path, bool raw_frames) {
        if (recording_) throw py::value_error("already recording; call stop_recording() first");
        auto r = std::make_unique<Recording>();
        trace::TraceHeader h;
        h.tool = "coreio-python";
        h.tool_version = "0.1.0";
        h.target = vm().endpoint();
        h.observer = trace::Observer::Vm;
        h.raw_frames = raw_frames;
        const auto& cfg = vm().config();
        for (std::size_t i = 0; i < cfg.ranges.size(); ++i)
            h.ranges.push_back({static_cast<std::uint32_t>(i), cfg.ranges[i].base, cfg.ranges[i].size, {}});
        for (const auto& m : cfg.memory) h.memory.push_back({0, 0, m.base, m.size, {}});
        if (std::string e = r->writer.open(path, h); !e.empty()) {
            PyErr_SetString(PyExc_OSError, e.c_str());
            throw py::error_already_set();
        }
        r->tap = std::make_unique<trace::TraceTap>(
            r->writer, trace::TapOptions{.observer = trace::Observer::Vm, .raw_frames = raw_frames});
        recording_ = std::move(r);
        tap_.set(recording_->tap.get());
    }
    std::string stop_recording() {
        py::gil_scoped_release nogil;
        return finish_recording();
    }

    py::dict counters() {
        const auto c = vm().counters();
        py::dict d;
        d["clients_accepted"] = c.clients_accepted;
        d["frames_in"] = c.frames_in;
        d["frames_out"] = c.frames_out;
        d["dma_chunks"] = c.dma_chunks;
        d["dma_faults"] = c.dma_faults;
        d["protocol_errors"] = c.protocol_errors;
        d["unclaimed_accesses"] = c.unclaimed_accesses;
        return d;
    }

private:
    static void check(int rc, const char* what, std::uint64_t addr) {
        if (rc == 0) return;
        char where[64];
        std::snprintf(where, sizeof where, " at 0x%llx", static_cast<unsigned long long>(addr));
        raise_errno(rc, std::string("mock VM ") + what + where);
    }
    static std::string fault(const char* what, std::uint64_t addr, std::uint64_t size) {
        char s[160];
        std::snprintf(s, sizeof s, "guest memory %s of %llu bytes at 0x%llx is outside every memory region", what,
                      static_cast<unsigned long long>(size), static_cast<unsigned long long>(addr));
        return s;
    }
    /// Stops the tap and closes the file; returns its error, if any. GIL not needed.
    std::string finish_recording() {
        if (!recording_) return {};
        tap_.set(nullptr);
        recording_->tap->finish();
        std::string e = recording_->writer.close();
        recording_.reset();
        return e;
    }

    SwitchableTap tap_;                     // outlives vm_ (declared first)
    std::unique_ptr<Recording> recording_;  // the trace being written, if any
    std::unique_ptr<Vm> vm_;
};

}  // namespace

void bind_mockvm(py::module_& m) {
    using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    py::class_<PyVm>(m, "Vm", "The mock VM (see coreio.mockvm.Vm for the documented wrapper).")
        .def(py::init<const Ranges&, const Ranges&, std::uint16_t, const std::string&, double, bool>(),
             py::arg("ranges"), py::arg("memory"), py::arg("port") = 0, py::arg("listen") = "127.0.0.1",
             py::arg("timeout") = 5.0, py::arg("verbose") = false)
        .def("close", &PyVm::close)
        .def_property_readonly("port", [](PyVm& v) { return v.vm().port(); })
        .def_property_readonly("endpoint", [](PyVm& v) { return v.vm().endpoint(); })
        .def("range_of", [](PyVm& v, std::uint64_t a, std::uint64_t s) { return v.vm().range_of(a, s); },
             py::arg("addr"), py::arg("size") = 1)
        .def("read", &PyVm::read, py::arg("addr"), py::arg("size"), py::arg("flags") = 0)
        .def("read_value", &PyVm::read_value, py::arg("addr"), py::arg("size"))
        .def("write", &PyVm::write, py::arg("addr"), py::arg("data"), py::arg("ack") = false, py::arg("flags") = 0)
        .def("write_value", &PyVm::write_value, py::arg("addr"), py::arg("size"), py::arg("value"),
             py::arg("ack") = false)
        .def("read_pair", &PyVm::read_pair, py::arg("addr"), py::arg("size"), py::arg("flags") = 0)
        .def("write_pair", &PyVm::write_pair, py::arg("addr"), py::arg("data1"), py::arg("data2"),
             py::arg("ack") = false, py::arg("flags") = 0)
        .def("read_many", &PyVm::read_many, py::arg("addrs"), py::arg("size") = 4, py::arg("window") = 64)
        .def("write_many", &PyVm::write_many, py::arg("addrs"), py::arg("values"), py::arg("size") = 4,
             py::arg("ack") = false, py::arg("window") = 64)
        .def("wait_claim", &PyVm::wait_claim, py::arg("rid") = 0, py::arg("timeout") = py::none())
        .def("wait_client", &PyVm::wait_client, py::arg("timeout") = py::none())
        .def("claimed", [](PyVm& v, unsigned rid) { return v.vm().claimed(rid); }, py::arg("rid") = 0)
        .def_property_readonly("client_count", [](PyVm& v) { return v.vm().client_count(); })
        .def("irq_level", [](PyVm& v, unsigned rid, unsigned line) { v.check_line(rid, line); return v.vm().irq_level(rid, line); },
             py::arg("rid") = 0, py::arg("line") = 0)
        .def("irq_lines", [](PyVm& v, unsigned rid) { v.check_line(rid, 0); return v.vm().irq_lines(rid); },
             py::arg("rid") = 0)
        .def("irq_count", [](PyVm& v, unsigned rid, unsigned line) { v.check_line(rid, line); return v.vm().irq_edges(rid, line); },
             py::arg("rid") = 0, py::arg("line") = 0)
        .def("wait_irq", &PyVm::wait_irq, py::arg("rid") = 0, py::arg("line") = 0, py::arg("level") = true,
             py::arg("timeout") = py::none())
        .def("ping", &PyVm::ping)
        .def("reset", [](PyVm& v) { py::gil_scoped_release nogil; v.vm().reset(); })
        .def("drop_clients", [](PyVm& v) { py::gil_scoped_release nogil; v.vm().drop_clients(); })
        .def("counters", &PyVm::counters)
        .def("mem_read", &PyVm::mem_read, py::arg("addr"), py::arg("size"))
        .def("mem_write", &PyVm::mem_write, py::arg("addr"), py::arg("data"))
        .def("mem_regions", [](PyVm& v) {
            Ranges out;
            for (const auto& r : v.vm().memory().regions()) out.emplace_back(r.base, r.size);
            return out;
        })
        .def("record", &PyVm::record, py::arg("path"), py::arg("raw_frames") = false)
        .def("stop_recording", &PyVm::stop_recording);
}

}  // namespace coreio::python
