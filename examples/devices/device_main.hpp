// The shared main() of the example device executables: connect to a VM, claim
// the range, serve until the VM closes the connection.
#pragma once

#include "coreio/replayer/device.hpp"

namespace coreio::examples {

/// Parses "[HOST:PORT] [--rid N] [--seeded-bug]" (HOST:PORT defaults to
/// $COREHDL_VM, then 127.0.0.1 on the default port 4800), builds the device with `make(rid, bug)`
/// and serves it over TCP. Returns the process exit code.
int device_main(int argc, char** argv, const char* name,
                replayer::DeviceFactory (*make)(unsigned rid, bool seeded_bug));

}  // namespace coreio::examples
