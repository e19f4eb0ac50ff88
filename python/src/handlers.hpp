// MMIO handlers that call into Python. Two shapes:
//  - OriginalHandlers: the original module's read(priv, addr, buf, flags)
//    callables that fill a bytearray in place (programs written for it run
//    unchanged);
//  - ObjectHandlers: an object's read(addr, size, flags) -> int | bytes and
//    write(addr, size, value, flags) methods (coreio.Client.add_device).
// Both run on the thread that drives the loop, with the GIL taken per call.
// An exception in a handler never escapes: it is printed and the access gets a
// bus error (coreio.BusError is the silent way to ask for one).
#pragma once

#define PY_SSIZE_T_CLEAN  // "#" formats take Py_ssize_t
#include <Python.h>

#include <cstddef>
#include <cstdint>

#include "coreio/client.hpp"

namespace coreio::python {

/// An owned reference that may only be released with the GIL held.
class PyRef {
public:
    PyRef() = default;
    /// Takes a new reference (nullptr allowed).
    static PyRef steal(PyObject* o) {
        PyRef r;
        r.p_ = o;
        return r;
    }
    /// Adds a reference to a borrowed one.
    static PyRef borrow(PyObject* o) {
        Py_XINCREF(o);
        return steal(o);
    }
    PyRef(PyRef&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    PyRef& operator=(PyRef&& o) noexcept {
        if (this != &o) {
            Py_XDECREF(p_);
            p_ = o.p_;
            o.p_ = nullptr;
        }
        return *this;
    }
    PyRef(const PyRef&) = delete;
    PyRef& operator=(const PyRef&) = delete;
    ~PyRef() { Py_XDECREF(p_); }
    PyObject* get() const { return p_; }
    explicit operator bool() const { return p_ != nullptr; }

private:
    PyObject* p_ = nullptr;
};

/// Holds the GIL for one call into Python from a thread that runs the
/// library's loop with it released (re-entrant: fine when already held).
class Gil {
public:
    Gil() : state_(PyGILState_Ensure()) {}
    ~Gil() { PyGILState_Release(state_); }
    Gil(const Gil&) = delete;
    Gil& operator=(const Gil&) = delete;

private:
    PyGILState_STATE state_;
};

/// Stores a KeyboardInterrupt/SystemExit raised inside a handler so that the
/// loop call that ran the handler can raise it once it returns.
class PendingInterrupt {
public:
    /// With the GIL held and an exception set: keeps it if it is an interrupt
    /// (returns true), else leaves it set (returns false).
    bool take_if_interrupt();
    /// With the GIL held: raises the stored interrupt (returns true) or does nothing.
    bool restore();
    /// With the GIL held: forgets a stored interrupt.
    void clear();

private:
    PyRef type_, value_, traceback_;
};

/// With the GIL held and an exception set: prints it (unless it is
/// coreio.BusError) as the reason for a bus error, stashing interrupts in `pending`.
void report_handler_exception(const char* what, std::uint64_t addr, PendingInterrupt* pending);

/// coreio.BusError, created by the module at import.
extern PyObject* g_bus_error;

/// The original module's handlers: read/write(priv, addr, buf: bytearray, flags)
/// and optional readp/writep(priv, addr, buf1, buf2, flags). A non-zero return
/// is a bus error; None counts as 0.
class OriginalHandlers final : public MmioHandler {
public:
    /// All references borrowed and kept (GIL held). readp/writep may be None.
    OriginalHandlers(PyObject* read, PyObject* write, PyObject* readp, PyObject* writep, PyObject* priv,
                     PendingInterrupt* pending);
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override;
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override;
    int read_pair(std::uint64_t addr, std::size_t len, void* buf1, void* buf2, unsigned flags) override;
    int write_pair(std::uint64_t addr, std::size_t len, const void* buf1, const void* buf2, unsigned flags) override;

private:
    PyRef read_, write_, readp_, writep_, priv_;
    PendingInterrupt* pending_;  // owned by the client
};

/// A Python object's methods: read(addr, size, flags) -> int | bytes,
/// write(addr, size, value: int, flags), optional reset().
class ObjectHandlers final : public MmioHandler {
public:
    /// Looks the methods up once (GIL held); throws pybind11::error_already_set
    /// when read or write is missing.
    ObjectHandlers(PyObject* device, PendingInterrupt* pending);
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override;
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override;
    void reset() override;

private:
    PyRef device_, read_, write_, reset_;
    PendingInterrupt* pending_;  // owned by the client, or null
};

/// Status of a handler's return value: 0 for None/0/False, 1 (bus error) for
/// anything else; `r` null means the call raised. Consumes `r`. GIL held.
int handler_status(PyObject* r, const char* what, std::uint64_t addr, PendingInterrupt* pending);

}  // namespace coreio::python
