// What the fuzzer's files share: the exec loops (fuzz_worker.cpp) and the
// findings they report (fuzz.cpp).
#pragma once

#include <chrono>
#include <set>
#include <string>

#include "coreio/replayer/fuzz.hpp"

namespace coreio::replayer {

using Clock = std::chrono::steady_clock;

/// Replay options of a findings run (replies not compared; assertions on).
ReplayOptions findings_options(const Assertions& a, std::chrono::milliseconds timeout);
/// Adds the finding of divergence `d` at `exec` unless its signature was seen.
void add_finding(FuzzResult& r, std::set<std::string>& seen, std::uint64_t exec, const Divergence& d,
                 const FuzzOptions& o);
/// Runs the execs of `o` in this process (a crash ends the run).
void run_execs_here(FuzzResult& result, std::set<std::string>& seen, const FuzzConfig& config,
                    const DeviceFactory& factory, const FuzzOptions& o, Clock::time_point deadline);
/// Runs the execs of `o` in forked workers: a worker that crashes or stops
/// making progress is a finding, and a new one goes on after that exec.
void run_execs_forked(FuzzResult& result, std::set<std::string>& seen, const FuzzConfig& config,
                      const DeviceFactory& factory, const FuzzOptions& o, Clock::time_point deadline);

}  // namespace coreio::replayer
