// Deterministic fuzzing of device models.
//
// Seeded mode: exec number E of seed S is generated from Rng(S, E) alone (own
// PRNG, own distributions), so any exec can be regenerated on any machine
// without re-running the ones before it. An exec is a RESET followed by up to
// max_ops steps: MMIO reads and writes (single and pair, posted and
// acknowledged) aimed at known registers or anywhere in the ranges, resets,
// and guest-memory fills that DMA then sees. Given a trace to start from, half
// of the execs mutate a window of its steps instead.
//
// Each exec runs through the replayer's Player in findings mode, so findings
// are the Player's divergences: protocol violations, IRQ stuck high after a
// reset (or too long), DMA into the device's own MMIO range, user assertions,
// a handler that threw; plus crash (the worker process died) and hang (no
// progress within the timeout) when execs run in a forked worker (in process)
// or in a device process (TCP). Each distinct finding (kind and field) is
// reproduced on a fresh device, minimised, and written as a reproducer trace.
//
// Guided mode (coverage feedback): the device's coverage counters are read
// after every exec, and an exec that reached something new (a counter hit for
// the first time, or a hit count in a new power-of-two bucket) is kept; later
// execs mutate kept ones (3 of 4) or are fresh. The same seed against the same
// deterministic device gives the same run, but an exec no longer regenerates
// alone (it depends on what was kept before it): findings carry their steps.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coreio/replayer/device.hpp"
#include "coreio/replayer/replay.hpp"
#include "coreio/replayer/scenario.hpp"

namespace coreio::replayer {

/// A register the fuzzer should aim at (where known).
struct RegisterInfo {
    unsigned rid = 0;
    std::uint64_t offset = 0;  // in the range
    unsigned width = 4;        // bytes: 1, 2, 4 or 8
};

/// What the fuzzer knows about the device.
struct FuzzConfig {
    std::vector<trace::RangeInfo> ranges;   // MMIO ranges (at least one)
    std::vector<trace::MemoryInfo> memory;  // guest memory for DMA (may be empty)
    std::vector<RegisterInfo> registers;    // known registers (may be empty)
    unsigned max_ops = 32;                  // steps after the exec's RESET, at most
    std::shared_ptr<const Scenario> start;  // optional trace to mutate
};

/// Writes exec `exec` of `seed` into `out` (its ranges/memory set from `config`).
void generate_exec(const FuzzConfig& config, std::uint64_t seed, std::uint64_t exec, Scenario& out);

/// Totals of a running fuzz, for progress displays.
struct FuzzProgress {
    std::uint64_t execs = 0;     // execs finished
    std::size_t findings = 0;    // distinct findings so far
};

/// Fills `out` with the current device's coverage counters, cumulative since
/// that device was made (empty when there is no device).
using CoverageSource = std::function<void(std::vector<std::uint32_t>& out)>;

/// The environment variable through which fuzz_tcp() tells a device where to
/// share its coverage counters (the file format is cosim/coverage_map.hpp's).
inline constexpr const char* kCoverageMapEnv = "COREIO_COVERAGE_MAP";

struct FuzzOptions {
    std::uint64_t seed = 1;
    /// Keep and mutate execs that reach new coverage. In process it needs
    /// `coverage` and fork off; over TCP the device shares its counters through
    /// the file named by COREIO_COVERAGE_MAP (coreio-cosim-NAME built with COVERAGE does).
    bool guided = false;
    CoverageSource coverage;  // in process, guided: the counters of the current device
    std::uint64_t first_exec = 0;            // exec number to start at
    std::uint64_t execs = 100000;            // execs to run at most
    std::chrono::milliseconds time_limit{0}; // stop after this long (0: no limit)
    /// In process: run execs in a forked worker, so a crash or hang is a
    /// finding rather than the end of the fuzzer (and minimise in children).
    bool fork = true;
    std::chrono::milliseconds timeout{2000}; // an exec (or a reply over TCP) longer than this is a hang
    Assertions assertions;                   // the built-in checks and user ones
    std::string out_dir;                     // reproducers go here ("" = none written)
    bool minimise = true;                    // shrink each finding before writing it
    std::size_t max_findings = 8;            // distinct findings to collect, then stop
    std::size_t max_minimise_runs = 3000;    // oracle runs per finding
    std::function<void(const std::string&)> log;  // progress lines (may be empty)
    /// Called often (after each exec, or every few ms while a forked worker
    /// runs) with the totals so far; the caller decides what to show and when.
    std::function<void(const FuzzProgress&)> progress;
};

struct Finding {
    Divergence divergence;     // what went wrong (kind, field, step ...)
    std::string signature;     // kind:field, the identity used to tell findings apart
    std::uint64_t exec = 0;    // where it was found
    std::size_t original_steps = 0;  // steps of the exec
    Scenario scenario;         // the exec, minimised when asked
    bool reproduced = false;   // it showed again on a fresh device
    std::string reproducer;    // trace file written ("" when none)
};

struct FuzzStats {
    std::uint64_t execs = 0;    // execs run
    std::uint64_t steps = 0;    // steps run (in process: counted by the worker)
    std::uint64_t restarts = 0; // workers or device processes restarted after a crash or hang
    std::size_t kept = 0;       // guided: execs kept for reaching new coverage
    double seconds = 0;
};

struct FuzzResult {
    std::vector<Finding> findings;  // distinct, in the order found
    FuzzStats stats;
    std::string error;
};

/// Fuzzes a device model built in this process by `factory`.
FuzzResult fuzz_in_process(const FuzzConfig& config, const DeviceFactory& factory, const FuzzOptions& options);

/// Fuzzes an out-of-process device model: `command` is started (sh -c) with
/// COREHDL_VM pointing at a TCP link and restarted after each crash or hang.
FuzzResult fuzz_tcp(const FuzzConfig& config, const std::string& command, const FuzzOptions& options);

/// Says whether a scenario still shows the finding being minimised.
using Oracle = std::function<bool(const Scenario&)>;

/// Shrinks `scenario` while `still_fails` holds: drops steps (chunks, then one
/// by one), then narrows fields (data bits, sizes, flags, fill lengths).
/// `max_runs` bounds the oracle calls. Returns the smallest scenario found.
Scenario minimise(const Scenario& scenario, const Oracle& still_fails, std::size_t max_runs = 3000,
                  std::size_t* runs = nullptr);

/// Runs `scenario` once on a fresh in-process device (in a forked child when
/// `isolate`) in findings mode and returns the first divergence's signature
/// ("" when none; "crash:signal" / "hang:timeout" from the child).
std::string check_in_process(const Scenario& scenario, const DeviceFactory& factory, const Assertions& assertions,
                             bool isolate, std::chrono::milliseconds timeout);

/// Runs `scenario` once against a fresh device process started from
/// `command`; the first divergence's signature or "".
std::string check_tcp(const Scenario& scenario, const std::string& command, const Assertions& assertions,
                      std::chrono::milliseconds timeout);

/// Writes a finding's reproducer trace (labels: finding, seed, exec,
/// assertions). Returns "" or an error.
std::string write_reproducer(const std::string& path, const Finding& finding, std::uint64_t seed,
                             const Assertions& assertions);

/// The assertions a reproducer asks for (its labels), on top of `base`.
Assertions reproducer_assertions(const Scenario& reproducer, Assertions base = {});

}  // namespace coreio::replayer
