// The "stub" subcommand of coreio-replay.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace coreio::replayer {

struct StubArgs {
    std::string trace, target, rules;
    std::vector<std::string> ignore;
    unsigned idle_ms = 5000;
    bool keep_going = false;
    bool allow_empty = false;
    std::uint32_t client = 0;
};
/// Adds the stub options to `cmd`.
void add_stub_options(CLI::App& cmd, StubArgs& a);
/// Runs the stub; returns the exit code (0 pass, 1 divergence, 2 error).
int run_stub(const StubArgs& a);

}  // namespace coreio::replayer
