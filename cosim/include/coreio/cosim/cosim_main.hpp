// cosim_main(): the whole command-line device behind coreio-cosim-<name>:
// parses the options, connects to the VM, claims the range, runs the model's
// clock and serves MMIO/IRQ/DMA until the VM goes away or a signal arrives.
//
//   coreio-cosim-<name> HOST[:PORT] [--trace-fst FILE | --trace-vcd FILE]
//       [--trace-start-cycle N] [--trace-stop-cycle N] [--trace-start-addr A] [--trace-stop-addr A]
//       [--idle-rate CYCLES_PER_S] [--idle-per-access N] [--deterministic]
//       [--rid N] [--mid N] [--sid N] [--base A] [--addr-bits N] [--reset-cycles N]
//       [--timeout-cycles N] [--wb-mode classic|pipelined] [--check-protocol] [--verbose]
//       [--coverage FILE]   (models built with COVERAGE; COREIO_COVERAGE_MAP: see coverage_map.hpp)
#pragma once

#include "coreio/cosim/model.hpp"

namespace coreio::cosim {

/// Runs the device; returns the process exit code (0 when the VM closed the connection).
int cosim_main(int argc, char** argv, const char* program, ModelFactory factory, ModelDefaults defaults);

}  // namespace coreio::cosim
