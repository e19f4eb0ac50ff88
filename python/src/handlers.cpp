#include "handlers.hpp"

#include <cstring>

#include <pybind11/pybind11.h>

namespace coreio::python {

PyObject* g_bus_error = nullptr;

namespace {

/// A bytearray of `len` bytes copied from `src` (zeros when null).
PyRef new_buffer(const void* src, std::size_t len) {
    PyRef b = PyRef::steal(PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(len)));
    if (b) {
        if (src != nullptr)
            std::memcpy(PyByteArray_AS_STRING(b.get()), src, len);
        else
            std::memset(PyByteArray_AS_STRING(b.get()), 0, len);
    }
    return b;
}

/// Copies a handler-filled bytearray back; a resized buffer is a bus error.
int copy_out(PyObject* buf, void* dst, std::size_t len, const char* what, std::uint64_t addr) {
    if (static_cast<std::size_t>(PyByteArray_GET_SIZE(buf)) != len) {
        PySys_WriteStderr("coreio: %s handler at 0x%llx resized its buffer from %zu to %zd bytes (bus error)\n",
                          what, static_cast<unsigned long long>(addr), len, PyByteArray_GET_SIZE(buf));
        return 1;
    }
    std::memcpy(dst, PyByteArray_AS_STRING(buf), len);
    return 0;
}

/// Writes value (int or bytes-like) into dst as `len` little-endian bytes.
/// Returns 0, or 1 with an exception set.
int value_to_bytes(PyObject* value, void* dst, std::size_t len) {
    if (PyLong_Check(value)) {
        if (len <= 8) {
            const unsigned long long v = PyLong_AsUnsignedLongLongMask(value);
            if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return 1;
            for (std::size_t i = 0; i < len; ++i) static_cast<unsigned char*>(dst)[i] = static_cast<unsigned char>(v >> (8 * i));
            return 0;
        }
        // Wider accesses (up to 32 bytes): (value & mask).to_bytes(len, "little").
        PyRef one = PyRef::steal(PyLong_FromLong(1));
        PyRef bits = PyRef::steal(PyLong_FromSize_t(8 * len));
        PyRef top = PyRef::steal(one && bits ? PyNumber_Lshift(one.get(), bits.get()) : nullptr);
        PyRef mask = PyRef::steal(top ? PyNumber_Subtract(top.get(), one.get()) : nullptr);
        PyRef masked = PyRef::steal(mask ? PyNumber_And(value, mask.get()) : nullptr);
        PyRef bytes = PyRef::steal(masked ? PyObject_CallMethod(masked.get(), "to_bytes", "ns",
                                                                static_cast<Py_ssize_t>(len), "little")
                                          : nullptr);
        if (!bytes) return 1;
        std::memcpy(dst, PyBytes_AS_STRING(bytes.get()), len);
        return 0;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) != 0) {
        PyErr_Format(PyExc_TypeError, "read() must return an int or bytes, not %.80s", Py_TYPE(value)->tp_name);
        return 1;
    }
    const bool ok = static_cast<std::size_t>(view.len) == len;
    if (ok) std::memcpy(dst, view.buf, len);
    PyBuffer_Release(&view);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "read() returned %zd bytes for a %zu-byte access", view.len, len);
        return 1;
    }
    return 0;
}

/// The little-endian integer of `len` bytes (new reference, or null with an exception).
PyObject* bytes_to_value(const void* src, std::size_t len) {
    if (len <= 8) {
        unsigned long long v = 0;
        for (std::size_t i = 0; i < len; ++i) v |= static_cast<unsigned long long>(static_cast<const unsigned char*>(src)[i]) << (8 * i);
        return PyLong_FromUnsignedLongLong(v);
    }
    return PyObject_CallMethod(reinterpret_cast<PyObject*>(&PyLong_Type), "from_bytes", "y#s",
                               static_cast<const char*>(src), static_cast<Py_ssize_t>(len), "little");
}

}  // namespace

bool PendingInterrupt::take_if_interrupt() {
    if (!PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) && !PyErr_ExceptionMatches(PyExc_SystemExit)) return false;
    PyObject *t = nullptr, *v = nullptr, *tb = nullptr;
    PyErr_Fetch(&t, &v, &tb);
    if (!type_) {  // keep the first one
        type_ = PyRef::steal(t), value_ = PyRef::steal(v), traceback_ = PyRef::steal(tb);
    } else {
        Py_XDECREF(t), Py_XDECREF(v), Py_XDECREF(tb);
    }
    return true;
}

bool PendingInterrupt::restore() {
    if (!type_) return false;
    PyObject* t = type_.get();
    PyObject* v = value_.get();
    PyObject* tb = traceback_.get();
    Py_XINCREF(t), Py_XINCREF(v), Py_XINCREF(tb);
    clear();
    PyErr_Restore(t, v, tb);
    return true;
}

void PendingInterrupt::clear() {
    type_ = PyRef(), value_ = PyRef(), traceback_ = PyRef();
}

void report_handler_exception(const char* what, std::uint64_t addr, PendingInterrupt* pending) {
    if (pending != nullptr && pending->take_if_interrupt()) return;
    if (g_bus_error != nullptr && PyErr_ExceptionMatches(g_bus_error)) {
        PyErr_Clear();  // the handler asked for a bus error
        return;
    }
    PyObject *t = nullptr, *v = nullptr, *tb = nullptr;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    PySys_WriteStderr("coreio: the %s handler raised an exception at address 0x%llx; the access gets a bus error:\n",
                      what, static_cast<unsigned long long>(addr));
    if (tb != nullptr && v != nullptr) PyException_SetTraceback(v, tb);
    PyErr_Display(t, v, tb);
    Py_XDECREF(t), Py_XDECREF(v), Py_XDECREF(tb);
}

int handler_status(PyObject* r, const char* what, std::uint64_t addr, PendingInterrupt* pending) {
    if (r == nullptr) {
        report_handler_exception(what, addr, pending);
        return 1;
    }
    int status = 1;
    if (r == Py_None) {
        status = 0;
    } else if (PyLong_Check(r)) {
        int overflow = 0;
        const long long v = PyLong_AsLongLongAndOverflow(r, &overflow);
        status = (v != 0 || overflow != 0) ? 1 : 0;
    } else {
        PySys_WriteStderr("coreio: the %s handler returned a %.80s, not an int (bus error)\n", what,
                          Py_TYPE(r)->tp_name);
    }
    Py_DECREF(r);
    return status;
}

// ---- OriginalHandlers -----------------------------------------------------------

OriginalHandlers::OriginalHandlers(PyObject* read, PyObject* write, PyObject* readp, PyObject* writep,
                                   PyObject* priv, PendingInterrupt* pending)
    : read_(PyRef::borrow(read)),
      write_(PyRef::borrow(write)),
      readp_(PyRef::borrow(readp == Py_None ? nullptr : readp)),
      writep_(PyRef::borrow(writep == Py_None ? nullptr : writep)),
      priv_(PyRef::borrow(priv)),
      pending_(pending) {}

int OriginalHandlers::read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) {
    Gil gil;
    PyRef b = new_buffer(nullptr, len);
    PyRef a = PyRef::steal(PyLong_FromUnsignedLongLong(addr));
    PyRef f = PyRef::steal(PyLong_FromUnsignedLong(flags));
    if (!b || !a || !f) return handler_status(nullptr, "read", addr, pending_);
    PyObject* args[] = {priv_.get(), a.get(), b.get(), f.get()};
    int rc = handler_status(PyObject_Vectorcall(read_.get(), args, 4, nullptr), "read", addr, pending_);
    if (rc == 0) rc = copy_out(b.get(), buf, len, "read", addr);
    return rc;
}

int OriginalHandlers::write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) {
    Gil gil;
    PyRef b = new_buffer(buf, len);
    PyRef a = PyRef::steal(PyLong_FromUnsignedLongLong(addr));
    PyRef f = PyRef::steal(PyLong_FromUnsignedLong(flags));
    if (!b || !a || !f) return handler_status(nullptr, "write", addr, pending_);
    PyObject* args[] = {priv_.get(), a.get(), b.get(), f.get()};
    return handler_status(PyObject_Vectorcall(write_.get(), args, 4, nullptr), "write", addr, pending_);
}

int OriginalHandlers::read_pair(std::uint64_t addr, std::size_t len, void* buf1, void* buf2, unsigned flags) {
    if (!readp_) return MmioHandler::read_pair(addr, len, buf1, buf2, flags);
    Gil gil;
    PyRef b1 = new_buffer(nullptr, len), b2 = new_buffer(nullptr, len);
    PyRef a = PyRef::steal(PyLong_FromUnsignedLongLong(addr));
    PyRef f = PyRef::steal(PyLong_FromUnsignedLong(flags));
    if (!b1 || !b2 || !a || !f) return handler_status(nullptr, "readp", addr, pending_);
    PyObject* args[] = {priv_.get(), a.get(), b1.get(), b2.get(), f.get()};
    int rc = handler_status(PyObject_Vectorcall(readp_.get(), args, 5, nullptr), "readp", addr, pending_);
    if (rc == 0) rc = copy_out(b1.get(), buf1, len, "readp", addr);
    if (rc == 0) rc = copy_out(b2.get(), buf2, len, "readp", addr);
    return rc;
}

int OriginalHandlers::write_pair(std::uint64_t addr, std::size_t len, const void* buf1, const void* buf2,
                                 unsigned flags) {
    if (!writep_) return MmioHandler::write_pair(addr, len, buf1, buf2, flags);
    Gil gil;
    PyRef b1 = new_buffer(buf1, len), b2 = new_buffer(buf2, len);
    PyRef a = PyRef::steal(PyLong_FromUnsignedLongLong(addr));
    PyRef f = PyRef::steal(PyLong_FromUnsignedLong(flags));
    if (!b1 || !b2 || !a || !f) return handler_status(nullptr, "writep", addr, pending_);
    PyObject* args[] = {priv_.get(), a.get(), b1.get(), b2.get(), f.get()};
    return handler_status(PyObject_Vectorcall(writep_.get(), args, 5, nullptr), "writep", addr, pending_);
}

// ---- ObjectHandlers -------------------------------------------------------------

ObjectHandlers::ObjectHandlers(PyObject* device, PendingInterrupt* pending)
    : device_(PyRef::borrow(device)), pending_(pending) {
    read_ = PyRef::steal(PyObject_GetAttrString(device, "read"));
    if (!read_) throw pybind11::error_already_set();
    write_ = PyRef::steal(PyObject_GetAttrString(device, "write"));
    if (!write_) throw pybind11::error_already_set();
    reset_ = PyRef::steal(PyObject_GetAttrString(device, "reset"));
    if (!reset_) PyErr_Clear();  // optional
}

int ObjectHandlers::read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) {
    Gil gil;
    PyRef a = PyRef::steal(PyLong_FromUnsignedLongLong(addr));
    PyRef s = PyRef::steal(PyLong_FromSize_t(len));
    PyRef f = PyRef::steal(PyLong_FromUnsignedLong(flags));
    if (!a || !s || !f) return handler_status(nullptr, "read", addr, pending_);
    PyObject* args[] = {a.get(), s.get(), f.get()};
    PyRef r = PyRef::steal(PyObject_Vectorcall(read_.get(), args, 3, nullptr));
    if (!r || value_to_bytes(r.get(), buf, len) != 0) {
        report_handler_exception("read", addr, pending_);
        return 1;
    }
    return 0;
}

int ObjectHandlers::write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) {
    Gil gil;
    PyRef a = PyRef::steal(PyLong_FromUnsignedLongLong(addr));
    PyRef s = PyRef::steal(PyLong_FromSize_t(len));
    PyRef v = PyRef::steal(bytes_to_value(buf, len));
    PyRef f = PyRef::steal(PyLong_FromUnsignedLong(flags));
    if (!a || !s || !v || !f) return handler_status(nullptr, "write", addr, pending_);
    PyObject* args[] = {a.get(), s.get(), v.get(), f.get()};
    PyRef r = PyRef::steal(PyObject_Vectorcall(write_.get(), args, 4, nullptr));
    if (!r) {
        report_handler_exception("write", addr, pending_);
        return 1;
    }
    return 0;  // the return value of a method-style write is ignored: raise BusError instead
}

void ObjectHandlers::reset() {
    if (!reset_) return;
    Gil gil;
    PyRef r = PyRef::steal(PyObject_CallNoArgs(reset_.get()));
    if (!r) report_handler_exception("reset", 0, pending_);
}

}  // namespace coreio::python
