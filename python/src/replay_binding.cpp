// coreio._core.replay_in_process / replay_command: replay a trace against a
// Python device model in this process, or against a device started from a
// command, and return the report as a dict (coreio.replay wraps it).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "coreio/replayer/process.hpp"
#include "coreio/replayer/replay.hpp"
#include "coreio/replayer/scenario.hpp"
#include "handlers.hpp"

namespace py = pybind11;

namespace coreio::python {
namespace {

using namespace coreio::replayer;

/// What a Python device model gets to raise IRQs and do DMA during a replay.
/// Valid while its device lives; calls after that raise.
struct PyHost {
    DeviceHost* host = nullptr;
    DeviceHost& get() const {
        if (host == nullptr) throw py::value_error("the replay this host belonged to is over");
        return *host;
    }
};

/// A device made of Python objects, one per range.
class PyDevice final : public Device {
public:
    PyDevice(py::object host, py::object model) : host_(std::move(host)), model_(std::move(model)) {
        if (py::isinstance<py::dict>(model_)) {
            for (auto [rid, obj] : model_.cast<py::dict>()) add(rid.cast<unsigned>(), obj);
        } else {
            add(0, model_);
        }
    }
    ~PyDevice() override {
        Gil gil;
        host_.cast<PyHost&>().host = nullptr;
        handlers_.clear();
        host_ = py::object(), model_ = py::object();
    }
    std::vector<DeviceRange> ranges() override { return ranges_; }
    py::object model() const { return model_; }

private:
    void add(unsigned rid, py::handle obj) {
        if (rid >= kNumRanges) throw py::value_error("range ids are 0..7");
        handlers_.push_back(std::make_unique<ObjectHandlers>(obj.ptr(), nullptr));
        ranges_.push_back({rid, handlers_.back().get()});
    }
    py::object host_, model_;
    std::vector<std::unique_ptr<ObjectHandlers>> handlers_;
    std::vector<DeviceRange> ranges_;
};

ReplayOptions make_options(bool keep_going, double timeout) {
    ReplayOptions o;
    o.keep_going = keep_going;
    o.timeout = std::chrono::milliseconds(static_cast<long long>(timeout * 1000.0));
    return o;
}

Scenario load(const std::string& path, std::uint32_t client) {
    Scenario sc;
    if (std::string e = load_scenario(path, sc, client); !e.empty()) {
        PyErr_SetString(PyExc_OSError, e.c_str());
        throw py::error_already_set();
    }
    return sc;
}

py::dict report_to_dict(const ReplayReport& r, const Scenario& sc) {
    py::list divs;
    for (const auto& d : r.divergences)
        divs.append(py::dict(py::arg("kind") = divergence_kind_name(d.kind), py::arg("record") = d.record,
                             py::arg("step") = d.step == kNoSeq ? py::object(py::none()) : py::object(py::int_(d.step)),
                             py::arg("field") = d.field, py::arg("expected") = d.expected, py::arg("got") = d.got,
                             py::arg("context") = d.context, py::arg("description") = d.describe()));
    const auto& c = r.counts;
    py::dict counts(py::arg("steps") = c.steps, py::arg("accesses") = c.accesses,
                    py::arg("replies_checked") = c.replies_checked, py::arg("resets") = c.resets,
                    py::arg("irqs") = c.irqs, py::arg("dmas") = c.dmas, py::arg("fills") = c.fills);
    return py::dict(py::arg("passed") = r.passed(), py::arg("divergences") = divs, py::arg("counts") = counts,
                    py::arg("seconds") = r.seconds, py::arg("error") = r.error, py::arg("summary") = r.summary(),
                    py::arg("warning") = sc.warning);
}

py::dict replay_in_process_py(const std::string& path, py::object factory, bool keep_going, double timeout,
                              std::uint32_t client) {
    const Scenario sc = load(path, client);
    const DeviceFactory make = [factory](DeviceHost& host) -> std::unique_ptr<Device> {
        Gil gil;
        py::object h = py::cast(PyHost{&host});
        py::object model = factory(h);
        return std::make_unique<PyDevice>(h, model);
    };
    // The GIL stays held: the model runs on this thread, called synchronously.
    const ReplayReport r = replay_in_process(sc, make, make_options(keep_going, timeout));
    return report_to_dict(r, sc);
}

/// Starts `command` as the device (COREHDL_VM set) and plays `sc` to it over TCP.
ReplayReport replay_over_tcp(const Scenario& sc, const std::string& command, const ReplayOptions& o) {
    Player player(o, sc.ranges, sc.memory);
    TcpLinkOptions lo;
    lo.timeout = o.timeout;
    ReplayReport r;
    std::unique_ptr<TcpLink> link;
    try {
        link = std::make_unique<TcpLink>(player, lo);  // loopback, any free port
    } catch (const std::exception& e) {
        r.error = e.what();
        return r;
    }
    DeviceProcess proc;
    const std::string endpoint = lo.listen + ":" + std::to_string(link->port());
    if (proc.start(command, endpoint) != 0) {
        r.error = "cannot start '" + command + "'";
        return r;
    }
    if (link->accept(o.timeout) != 0) {
        r.error = "no device connected to " + endpoint + " within the timeout (" + proc.kill() + ")";
        return r;
    }
    r = player.run(sc, *link);
    link->disconnect();
    const std::string how = proc.wait(std::chrono::milliseconds(1000));
    for (auto& d : r.divergences)
        if ((d.kind == DivergenceKind::Crash || d.kind == DivergenceKind::Hang) && !how.empty())
            d.got += " (device " + how + ")";
    proc.kill();
    return r;
}

py::dict replay_command_py(const std::string& path, const std::string& command, bool keep_going, double timeout,
                           std::uint32_t client) {
    const Scenario sc = load(path, client);
    const ReplayOptions o = make_options(keep_going, timeout);
    ReplayReport r;
    {
        py::gil_scoped_release nogil;
        r = replay_over_tcp(sc, command, o);
    }
    return report_to_dict(r, sc);
}

}  // namespace

void bind_replay(py::module_& m) {
    py::class_<PyHost>(m, "ReplayHost", "IRQs and DMA for a device model during an in-process replay.")
        .def("irq_update", [](PyHost& h, unsigned rid, unsigned line, bool level) {
            return h.get().irq_update(rid, line, level);
        }, py::arg("rid"), py::arg("line"), py::arg("level"))
        .def("dma_read", [](PyHost& h, std::uint64_t addr, std::size_t size, unsigned mid, unsigned sid, unsigned flags) {
            std::string out(size, '\0');
            const int rc = h.get().dma_read(mid, sid, addr, std::as_writable_bytes(std::span(out.data(), size)), flags);
            if (rc != 0) raise_errno(rc, "DMA read");
            return py::bytes(out);
        }, py::arg("addr"), py::arg("size"), py::arg("mid") = 0, py::arg("sid") = 0, py::arg("flags") = 0)
        .def("dma_write", [](PyHost& h, std::uint64_t addr, const py::bytes& data, unsigned mid, unsigned sid, unsigned flags) {
            const std::string b = data;
            const int rc = h.get().dma_write(mid, sid, addr, std::as_bytes(std::span(b.data(), b.size())), flags);
            if (rc != 0) raise_errno(rc, "DMA write");
        }, py::arg("addr"), py::arg("data"), py::arg("mid") = 0, py::arg("sid") = 0, py::arg("flags") = 0);
    m.def("replay_in_process", &replay_in_process_py, py::arg("path"), py::arg("factory"),
          py::arg("keep_going") = false, py::arg("timeout") = 5.0, py::arg("client") = 0);
    m.def("replay_command", &replay_command_py, py::arg("path"), py::arg("command"), py::arg("keep_going") = false,
          py::arg("timeout") = 5.0, py::arg("client") = 0);
}

}  // namespace coreio::python
