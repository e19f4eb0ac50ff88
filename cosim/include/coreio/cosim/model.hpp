// coreio::cosim::Model: a Verilated model seen through its port binding, with
// clocking, reset and waveform tracing. The generated binding implements it
// (see verilated_model.hpp); the bridge and the adapters only use this.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "coreio/cosim/ports.hpp"

namespace coreio::cosim {

/// Waveform file formats.
enum class TraceFormat : std::uint8_t { Fst, Vcd };

/// "fst" / "vcd".
const char* trace_format_name(TraceFormat f);

/// A model's Verilator coverage counters (one per coverage point, counting
/// since the model was made); empty unless built with COVERAGE.
using CoverageCounters = std::span<const std::atomic<std::uint32_t>>;

class Model {
public:
    virtual ~Model() = default;
    /// Name given in coreio_add_cosim().
    virtual const char* name() const = 0;
    /// The port binding.
    virtual const Ports& ports() const = 0;
    /// Evaluates the model with its current inputs.
    virtual void eval() = 0;
    /// Runs up to `cycles` whole clock cycles (low, eval, high, eval) and stops
    /// after the first cycle whose IRQ levels differ from `irq_levels`.
    /// Returns the cycles run. The fast path when nothing else watches the pins.
    virtual std::uint64_t run_fast(std::uint64_t cycles, std::uint32_t irq_levels) = 0;
    /// Whether this build of the model can write `f`.
    virtual bool can_trace(TraceFormat f) const = 0;
    /// Starts a waveform at `path`; false with `error` set when it cannot.
    virtual bool trace_open(TraceFormat f, const std::string& path, std::string& error) = 0;
    /// Records every signal at `time` (half cycles) when a trace is open.
    virtual void trace_dump(std::uint64_t time) = 0;
    /// Flushes and closes the waveform, if any.
    virtual void trace_close() = 0;
    /// The coverage counters (empty when built without COVERAGE).
    virtual CoverageCounters coverage() const { return {}; }
    /// Writes the coverage data in Verilator's format (for verilator_coverage)
    /// to `path`; false with `error` set when it cannot.
    virtual bool coverage_write(const std::string& path, std::string& error) {
        error = std::string("model '") + name() + "' has no coverage points (coreio_add_cosim COVERAGE)";
        (void)path;
        return false;
    }

    /// Drives the clock port.
    void set_clock(bool high) { ports().clock.set(high ? 1 : 0); }
    /// Drives the reset port, applying its polarity.
    void set_reset(bool asserted) {
        const bool active_low = ports().reset_active_low != reset_inverted_;
        ports().reset.set(asserted != active_low ? 1 : 0);
    }
    /// Drives reset with the opposite of the configured polarity from now on
    /// (the start-up check that tells a user their polarity is wrong).
    void invert_reset_polarity() { reset_inverted_ = !reset_inverted_; }

private:
    bool reset_inverted_ = false;
};

/// Per-model defaults chosen in coreio_add_cosim().
struct ModelDefaults {
    unsigned addr_bits = 12;          // slave byte-address width (default: the address port's)
    bool wishbone_pipelined = false;  // Wishbone mode
    unsigned addr_shift = 0;          // low address bits the port lacks (ADR[31:2]: 2)
};

/// Makes a model able to write `format` (nullopt: any build).
using ModelFactory = std::function<std::unique_ptr<Model>(std::optional<TraceFormat> format)>;

}  // namespace coreio::cosim
