// coreio._core.Client: one coreio::Client with the original Python module's
// calling conventions (ints as negative errno, handlers filling bytearrays).
// The package's module-level functions run on one default instance.
//
// Locking rule: the GIL is released before every call into the Client, since
// the loop thread holds the Client's lock while it takes the GIL for a handler;
// taking them in the other order from another thread would deadlock.
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <sys/select.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "handlers.hpp"

namespace py = pybind11;

namespace coreio::python {
namespace {

/// A non-blocking DMA's Python side: the completion, its argument and the
/// buffer, held until the library calls the completion (or drops it).
struct PendingDma {
    PyRef cpl, cplp;
    Py_buffer view{};
    bool has_view = false;
    PendingInterrupt* pending = nullptr;
    PendingDma() = default;
    PendingDma(const PendingDma&) = delete;
    PendingDma& operator=(const PendingDma&) = delete;
    ~PendingDma() {
        Gil gil;  // the library may drop the completion on its own thread
        if (has_view) PyBuffer_Release(&view);
        cpl = PyRef(), cplp = PyRef();
    }
    void complete(int result) {
        Gil gil;
        PyRef r = PyRef::steal(PyLong_FromLong(result));
        PyObject* args[] = {cplp.get(), r.get()};
        PyRef out = PyRef::steal(r ? PyObject_Vectorcall(cpl.get(), args, 2, nullptr) : nullptr);
        if (!out) report_handler_exception("DMA completion", 0, pending);
    }
};

/// Fills an fd_set from a list of ints or objects with fileno().
void fill_fd_set(py::handle list, fd_set& set, int& nfds, const char* name) {
    FD_ZERO(&set);
    if (list.is_none()) return;
    for (py::handle item : py::iter(list)) {
        const int fd = PyObject_AsFileDescriptor(item.ptr());
        if (fd < 0) throw py::error_already_set();
        if (fd >= FD_SETSIZE) throw py::value_error(std::string(name) + ": fd " + std::to_string(fd) + " is over FD_SETSIZE");
        FD_SET(fd, &set);
        nfds = std::max(nfds, fd + 1);
    }
}

class PyClient {
public:
    explicit PyClient(std::optional<double> dma_timeout) : client_(options(dma_timeout)) {}
    ~PyClient() {
        {
            py::gil_scoped_release nogil;
            client_.disconnect();  // pending DMA completes (takes the GIL itself)
        }
        for (auto& h : handlers_) h.reset();  // Python references, GIL held
    }
    PyClient(const PyClient&) = delete;
    PyClient& operator=(const PyClient&) = delete;

    int connect(const std::string& target) {
        py::gil_scoped_release nogil;
        return client_.connect(target);
    }
    void disconnect() {
        {
            py::gil_scoped_release nogil;
            client_.disconnect();
        }
        raise_pending();
    }
    bool connected() {
        py::gil_scoped_release nogil;
        return client_.connected();
    }

    int register_functions(long long rid, py::object read, py::object write, py::object readp, py::object writep,
                           py::object funcp) {
        for (auto [f, name] : {std::pair{&read, "read"}, {&write, "write"}})
            if (!PyCallable_Check(f->ptr())) throw py::type_error(std::string(name) + " must be callable");
        for (auto [f, name] : {std::pair{&readp, "readp"}, {&writep, "writep"}})
            if (!f->is_none() && !PyCallable_Check(f->ptr()))
                throw py::type_error(std::string(name) + " must be callable or None");
        auto h = std::make_unique<OriginalHandlers>(read.ptr(), write.ptr(), readp.ptr(), writep.ptr(), funcp.ptr(),
                                                    &pending_);
        return claim(rid, std::move(h));
    }
    int register_object(long long rid, py::object device) {
        return claim(rid, std::make_unique<ObjectHandlers>(device.ptr(), &pending_));
    }

    int mainloop(long long usec) {
        // In slices, so that Ctrl-C (and an interrupt raised in a handler) is
        // seen within 100 ms even when the loop runs forever.
        constexpr long long kSlice = 100000;
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            long long slice = kSlice;
            if (usec >= 0) {
                const long long spent =
                    std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
                slice = std::min(kSlice, std::max(0LL, usec - spent));
            }
            int rc;
            {
                py::gil_scoped_release nogil;
                rc = client_.run_for(slice);
            }
            raise_pending();
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            if (rc != 0) return rc;
            if (usec >= 0 && std::chrono::steady_clock::now() - start >= std::chrono::microseconds(usec)) return 0;
        }
    }

    int irq_update(long long rid, long long iid, long long state) {
        if (rid < 0 || rid >= kNumRanges || iid < 0 || iid >= kNumIrqLines || state < 0 || state > 1) return -EINVAL;
        py::gil_scoped_release nogil;
        return client_.irq_update(static_cast<unsigned>(rid), static_cast<unsigned>(iid), state != 0);
    }

    int dma(bool write, long long mid, long long sid, std::uint64_t addr, py::object buf, long long flags,
            py::object cpl, py::object cplp) {
        if (mid < 0 || mid >= kNumMids || sid < 0 || sid >= kNumSids || flags < 0 || flags > 0xF) return -EINVAL;
        if (!cpl.is_none() && !PyCallable_Check(cpl.ptr())) throw py::type_error("cpl must be callable or None");
        auto req = std::make_shared<PendingDma>();
        const int how = write ? PyBUF_SIMPLE : PyBUF_WRITABLE;
        if (PyObject_GetBuffer(buf.ptr(), &req->view, how) != 0)
            throw py::type_error(write ? "buf must be a bytes-like object" : "buf must be a writable bytes-like object (e.g. bytearray)");
        req->has_view = true;
        auto* p = static_cast<std::byte*>(req->view.buf);
        const auto len = static_cast<std::size_t>(req->view.len);
        const auto m = static_cast<unsigned>(mid), s = static_cast<unsigned>(sid), f = static_cast<unsigned>(flags);
        int rc;
        if (cpl.is_none()) {
            py::gil_scoped_release nogil;
            rc = write ? client_.dma_write(m, s, addr, std::span<const std::byte>(p, len), f)
                       : client_.dma_read(m, s, addr, std::span<std::byte>(p, len), f);
        } else {
            req->cpl = PyRef::borrow(cpl.ptr());
            req->cplp = PyRef::borrow(cplp.ptr());
            req->pending = &pending_;
            DmaCompletion done = [req](int r) { req->complete(r); };
            py::gil_scoped_release nogil;
            rc = write ? client_.dma_write(m, s, addr, std::span<const std::byte>(p, len), f, std::move(done))
                       : client_.dma_read(m, s, addr, std::span<std::byte>(p, len), f, std::move(done));
        }
        raise_pending();
        return rc;
    }

    py::tuple preparefds(py::object readfds, py::object writefds) {
        fd_set r, w;
        int nfds = 0;
        fill_fd_set(readfds, r, nfds, "readfds");
        fill_fd_set(writefds, w, nfds, "writefds");
        fd_set mine_r, mine_w;
        FD_ZERO(&mine_r);
        FD_ZERO(&mine_w);
        int lib_nfds;
        {
            py::gil_scoped_release nogil;
            lib_nfds = client_.prepare_fds(0, &mine_r, &mine_w);
        }
        py::list readable = readfds.is_none() ? py::list() : py::list(readfds);
        py::list writable = writefds.is_none() ? py::list() : py::list(writefds);
        if (lib_nfds < 0) return py::make_tuple(lib_nfds, readable, writable);
        for (int fd = 0; fd < lib_nfds; ++fd) {
            if (FD_ISSET(fd, &mine_r) && !FD_ISSET(fd, &r)) readable.append(fd);
            if (FD_ISSET(fd, &mine_w) && !FD_ISSET(fd, &w)) writable.append(fd);
        }
        return py::make_tuple(std::max(nfds, lib_nfds), readable, writable);
    }

    int processfds(py::object readable, py::object writable) {
        fd_set r, w;
        int nfds = 0;
        fill_fd_set(readable, r, nfds, "readable");
        fill_fd_set(writable, w, nfds, "writable");
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = client_.process_fds(&r, &w);
        }
        raise_pending();
        return rc;
    }

private:
    static ClientOptions options(std::optional<double> dma_timeout) {
        ClientOptions o;
        o.dma_timeout = dma_timeout ? std::chrono::milliseconds(static_cast<long long>(*dma_timeout * 1000.0))
                                    : dma_timeout_from_env();
        return o;
    }

    /// Claims rid for `h`; keeps `h` alive while the library may call it.
    int claim(long long rid, std::unique_ptr<MmioHandler> h) {
        if (rid < 0 || rid >= kNumRanges) return -EINVAL;
        int rc;
        {
            py::gil_scoped_release nogil;
            rc = client_.register_range(static_cast<unsigned>(rid), *h);
        }
        // On success the old handler (if any) belongs to a closed connection.
        if (rc == 0) handlers_[rid] = std::move(h);
        return rc;
    }

    /// Raises a KeyboardInterrupt/SystemExit that a handler raised.
    void raise_pending() {
        if (pending_.restore()) throw py::error_already_set();
    }

    Client client_;
    PendingInterrupt pending_;
    std::unique_ptr<MmioHandler> handlers_[kNumRanges];
};

}  // namespace

void bind_client(py::module_& m) {
    py::class_<PyClient>(m, "Client", R"doc(
One CoreIO client (a connection pair to one VM) with the original module's
calling conventions: functions return 0 or a negative errno. The package's
module-level functions (coreio.connect, ...) use one default instance; make
more for several devices in one process (or use coreio.Client).)doc")
        .def(py::init<std::optional<double>>(), py::arg("dma_timeout") = py::none(),
             "dma_timeout: seconds a blocking DMA may take (None: COREIO_DMA_TIMEOUT_MS, or forever).")
        .def("connect", &PyClient::connect, py::arg("target"),
             "Connects to a VM at 'host[:port]' (default port 4800). Returns 0 or a negative errno.")
        .def("disconnect", &PyClient::disconnect, "Closes both connections; pending DMA completes with -ECONNRESET.")
        .def_property_readonly("connected", &PyClient::connected)
        .def("register", &PyClient::register_functions, py::arg("rid"), py::arg("read"), py::arg("write"),
             py::arg("readp") = py::none(), py::arg("writep") = py::none(), py::arg("funcp") = py::none(),
             "Claims range rid with read/write(priv, addr, buf, flags) handlers. Returns 0 or a negative errno.")
        .def("register_object", &PyClient::register_object, py::arg("rid"), py::arg("device"),
             "Claims range rid for an object with read(addr, size, flags) and write(addr, size, value, flags).")
        .def("mainloop", &PyClient::mainloop, py::arg("usec"),
             "Runs the loop for usec microseconds (negative: until an error). GIL released while waiting.")
        .def("irq_update", &PyClient::irq_update, py::arg("rid"), py::arg("iid"), py::arg("state"),
             "Sets IRQ line iid of range rid to state (0/1). Any thread.")
        .def(
            "dma_read",
            [](PyClient& c, long long mid, long long sid, std::uint64_t addr, py::object buf, long long flags,
               py::object cpl, py::object cplp) { return c.dma(false, mid, sid, addr, buf, flags, cpl, cplp); },
            py::arg("mid"), py::arg("sid"), py::arg("addr"), py::arg("buf"), py::arg("flags") = 0,
            py::arg("cpl") = py::none(), py::arg("cplp") = py::none(),
            "DMA read into buf (its length is the size); blocking unless cpl is given.")
        .def(
            "dma_write",
            [](PyClient& c, long long mid, long long sid, std::uint64_t addr, py::object buf, long long flags,
               py::object cpl, py::object cplp) { return c.dma(true, mid, sid, addr, buf, flags, cpl, cplp); },
            py::arg("mid"), py::arg("sid"), py::arg("addr"), py::arg("buf"), py::arg("flags") = 0,
            py::arg("cpl") = py::none(), py::arg("cplp") = py::none(),
            "DMA write of buf; blocking unless cpl is given.")
        .def("preparefds", &PyClient::preparefds, py::arg("readfds") = py::none(), py::arg("writefds") = py::none(),
             "Returns (nfds, readable, writable): the lists plus this client's fds, for select.select.")
        .def("processfds", &PyClient::processfds, py::arg("readable"), py::arg("writable"),
             "Handles what select.select found. Returns 0 or a negative errno.");
}

}  // namespace coreio::python
