// Replay: the VM side of a Scenario played to a device model (in process or
// over TCP), checking what the device does against the recording (replies,
// IRQ changes and their place among the requests, DMA chunks, claims) and
// against built-in and user assertions (IRQ low after reset, no DMA into the
// device's own MMIO range, read expectations, a custom check). The fuzzer runs
// its generated steps through the same Player.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coreio/replayer/device.hpp"
#include "coreio/replayer/link.hpp"
#include "coreio/replayer/rules.hpp"
#include "coreio/replayer/scenario.hpp"

namespace coreio::trace {
class TraceWriter;
}
namespace coreio::mockvm {
class GuestMemory;
}

namespace coreio::replayer {

/// When requests are sent.
enum class TimingMode : std::uint8_t {
    Fast,      // as fast as the device answers (a window of requests in flight)
    Recorded,  // each request at its recorded time
    Scaled,    // at recorded time x ReplayOptions::time_scale
};

/// What is compared.
enum class CheckMode : std::uint8_t {
    Auto,      // Findings for fuzzer reproducers, Replies otherwise
    Replies,   // everything recorded (replies, IRQs, DMA, claims) plus assertions
    Findings,  // assertions only; DMA is served from guest memory (reproducers)
};

/// "Reading RID:OFFSET must give (value & MASK) == VALUE", checked on reads
/// that start at OFFSET and are wide enough to hold every bit of MASK.
struct ReadExpectation {
    unsigned rid = 0;
    std::uint64_t offset = 0, mask = 0, value = 0;
    std::string text;  // as written
    /// Parses "RID:OFFSET:MASK:VALUE". Returns "" or an error.
    static std::string parse(std::string_view spec, ReadExpectation& out);
};

/// Checks that hold for any device, whatever the recording says.
struct Assertions {
    bool irq_low_after_reset = true;  // every IRQ line is low once a RESET has been handled
    /// Resets before this step are not checked (the fuzzer's worker skips an
    /// exec's opening reset: it shows the previous exec's state, not this one's).
    std::size_t reset_check_from_step = 0;
    bool no_dma_into_mmio = true;     // DMA never targets one of the scenario's MMIO ranges
    unsigned irq_stuck_steps = 0;     // a line high for more than this many steps (0: off)
    std::vector<ReadExpectation> reads;  // user read expectations
    /// User check after each completed access: "" or what is wrong.
    std::function<std::string(const Frame& request, const Frame* reply)> custom;
};

/// What kind of divergence or finding.
enum class DivergenceKind : std::uint8_t {
    Mismatch,     // a reply/IRQ/DMA field differs from the recording
    Missing,      // the recording has an IRQ, DMA or claim the device did not do
    Unexpected,   // the device did an IRQ change or DMA the recording does not have
    Protocol,     // the device broke the wire protocol
    Crash,        // the device died (process gone, connection closed, handler threw)
    Hang,         // the device stopped answering (timeout)
    IrqStuck,     // an IRQ line stayed high after a reset (or too long)
    DmaIntoMmio,  // a DMA aimed at the device's own MMIO range
    Assertion,    // a user assertion failed
};
/// "mismatch", "missing", "unexpected", "protocol", "crash", "hang", "irq-stuck-high", "dma-into-mmio", "assertion".
const char* divergence_kind_name(DivergenceKind k);

struct Divergence {
    DivergenceKind kind = DivergenceKind::Mismatch;
    std::uint64_t record = 0;  // trace record index (generated steps: the step's record field)
    std::uint64_t step = 0;    // index in Scenario::steps (kNoSeq: none)
    std::string field;         // e.g. "mmio.data", "irq.level", "dma.address"
    std::string expected;
    std::string got;
    std::string context;       // the request or record involved, one line
    /// One line: "record 12: mmio.data: expected 0x5, got 0x7 (READ rid=0 ...)".
    std::string describe() const;
    /// What identifies the same bug across runs: kind and field.
    std::string signature() const { return std::string(divergence_kind_name(kind)) + ":" + field; }
};

struct ReplayCounts {
    std::uint64_t steps = 0;          // steps played
    std::uint64_t accesses = 0;       // MMIO requests sent
    std::uint64_t replies_checked = 0;
    std::uint64_t resets = 0;
    std::uint64_t irqs = 0;           // IRQ changes the device made
    std::uint64_t dmas = 0;           // DMA chunks the device requested
    std::uint64_t fills = 0;
};

struct ReplayReport {
    std::vector<Divergence> divergences;  // in the order found
    ReplayCounts counts;
    double seconds = 0;   // wall-clock time of the replay
    std::string error;    // could not run at all (no device, bad trace ...)
    bool findings_mode = false;  // replies were not compared
    /// True when nothing diverged and nothing failed.
    bool passed() const { return divergences.empty() && error.empty(); }
    /// "PASS ..." or "FAIL ..." plus the divergences, one per line, and the counts.
    std::string summary(std::size_t max_lines = 50) const;
};

struct ReplayOptions {
    IgnoreRules ignore;
    bool keep_going = false;            // report every divergence, not just the first
    std::size_t max_divergences = 1000; // ... up to this many
    TimingMode timing = TimingMode::Fast;
    double time_scale = 1.0;            // Scaled: 2.0 = half speed
    CheckMode check = CheckMode::Auto;
    Assertions assertions;
    std::chrono::milliseconds timeout{5000};  // a reply (or a claim) later than this is a hang
    /// Also record the run as a trace (synthetic, ordered time; see Player).
    trace::TraceWriter* record = nullptr;
};

/// Plays scenarios to a device through a Link. Reusable: the fuzzer plays
/// one short scenario per exec through one Player and one link.
class Player final : public LinkObserver {
public:
    /// Guest memory is built from `memory` (regions) and kept across runs.
    Player(const ReplayOptions& options, const std::vector<trace::RangeInfo>& ranges,
           const std::vector<trace::MemoryInfo>& memory);
    ~Player() override;

    /// Plays `scenario` through `link`. The link's device must be connected.
    ReplayReport run(const Scenario& scenario, Link& link);
    /// Zeroes the guest memory bytes written by earlier runs (fills, DMA writes).
    void clear_memory();
    /// Forgets IRQ levels and claims seen (the link now has a fresh device).
    void new_device();
    /// The guest memory DMA is served from.
    mockvm::GuestMemory& memory();

    // LinkObserver
    void on_complete(std::uint64_t seq, const Frame& request, const Frame* reply) override;
    void on_irq(std::uint64_t cause, unsigned rid, unsigned line, bool level) override;
    void on_claim(unsigned rid) override;
    void on_dma(std::uint64_t cause, DmaDirection direction, const Frame& request, Frame& reply) override;
    void on_violation(std::uint64_t cause, std::string_view what) override;
    void on_device_log(std::uint64_t cause, std::string_view line) override;

private:
    struct State;
    std::unique_ptr<State> s_;
};

/// Plays `scenario` to a fresh device built by `factory`, in this process.
ReplayReport replay_in_process(const Scenario& scenario, const DeviceFactory& factory,
                               const ReplayOptions& options);

/// Plays `scenario` to the device connected to `link` (already accepted).
ReplayReport replay_link(const Scenario& scenario, Link& link, const ReplayOptions& options);

}  // namespace coreio::replayer
