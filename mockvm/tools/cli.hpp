// The coreio-mockvm command line, as functions so tests can drive it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "coreio/cli/conventions.hpp"
#include "coreio/mockvm/vm.hpp"

namespace coreio::mockvm::cli {

/// What the command line asked for.
struct Options {
    enum class Mode { Demo, Script, Serve, Guest };
    Mode mode = Mode::Demo;           // --script FILE / --serve / --guest FILE / the default demo
    VmConfig config;                  // --listen, --port, --range, --memory, --timeout-ms, --verbose
    std::string script;               // --script FILE
    std::uint64_t wait_ms = 60000;    // --wait-ms: how long to wait for range 0 to be claimed (0: forever)
    std::string record;               // --record FILE: trace every frame of every client
    bool record_raw = false;          // --record-raw: keep whole wire frames in the trace
    std::string guest;                // --guest FILE: run this AArch64 firmware (needs the guest part)
    std::uint64_t guest_max_instructions = 0;  // --guest-max-instructions N (0: no limit)
};

/// Exit codes: the run succeeded / an expectation or the demo failed /
/// the command line or the script is bad, or the VM could not start.
using coreio::cli::kExitFailed;
using coreio::cli::kExitOk;
using coreio::cli::kExitUsage;

/// Parses argv. On --help prints help to `out` and sets exit_code 0; on an
/// error prints one clear line to `err` and sets exit_code 2; both return nullopt.
std::optional<Options> parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err, int& exit_code);

/// Runs the whole tool (parse, start the VM, demo / script / serve) and returns its exit code.
int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace coreio::mockvm::cli
