// coreio._core: the compiled half of the `coreio` package. The package's
// Python modules (coreio/__init__.py, mockvm.py, trace.py, replay.py) add the
// documented API on top of these bindings.
#include <cerrno>
#include <cstring>
#include <string>

#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "coreio/frame.hpp"
#include "handlers.hpp"

namespace py = pybind11;

namespace coreio::python {

void raise_errno(int rc, const std::string& what) {
    const int e = rc < 0 ? -rc : rc;
    PyObject* type = PyExc_OSError;
    if (e == EIO)
        type = g_bus_error;
    else if (e == ETIMEDOUT)
        type = PyExc_TimeoutError;
    else if (e == ECONNRESET)
        type = PyExc_ConnectionResetError;
    else if (e == EINVAL)
        type = PyExc_ValueError;
    const std::string msg = what + ": " + std::strerror(e);
    if (type == PyExc_ValueError) {
        PyErr_SetString(type, msg.c_str());
    } else {
        PyObject* args = Py_BuildValue("(is)", e, msg.c_str());
        PyErr_SetObject(type, args);
        Py_XDECREF(args);
    }
    throw py::error_already_set();
}

}  // namespace coreio::python

PYBIND11_MODULE(_core, m) {
    using namespace coreio::python;
    m.doc() = "The compiled core of the coreio package (use the package, not this module).";
    g_bus_error = PyErr_NewExceptionWithDoc(
        "coreio.BusError",
        "A bus error: raised by the mock VM when a device answers with the error bit, and raised by a "
        "device's handler to answer an access with one (no traceback printed).",
        PyExc_OSError, nullptr);
    if (g_bus_error == nullptr) throw py::error_already_set();
    m.add_object("BusError", py::handle(g_bus_error));
    m.attr("FLAGS_IFETCH") = coreio::kFlagIfetch;
    m.attr("FLAGS_PRIV") = coreio::kFlagPriv;
    m.attr("FLAGS_SECURE") = coreio::kFlagSecure;
    bind_client(m);
    bind_mockvm(m);
    bind_trace(m);
    bind_replay(m);
}
