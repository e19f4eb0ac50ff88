// The pieces of the compiled module coreio._core, one function per area.
#pragma once

#include <pybind11/pybind11.h>

namespace coreio::python {

/// coreio._core.Client: the original module's functions on one coreio::Client.
void bind_client(pybind11::module_& m);
/// coreio._core.Vm: the in-process mock VM.
void bind_mockvm(pybind11::module_& m);
/// coreio._core.TraceReader / TraceWriter.
void bind_trace(pybind11::module_& m);
/// coreio._core.replay_in_process / replay_command.
void bind_replay(pybind11::module_& m);

/// Raises the Python exception for a negative errno: BusError (-EIO),
/// TimeoutError, ConnectionResetError, ValueError (-EINVAL), else OSError.
[[noreturn]] void raise_errno(int rc, const std::string& what);

}  // namespace coreio::python
