// coreio::cosim::Sim: the clock around a model. Every cycle it settles the
// inputs, lets agents (bus monitors, the AXI master responder) see the values
// the rising edge will sample, clocks the edge, samples the interrupt outputs
// and reports any change at once. It also applies reset and writes waveforms
// between optional start/stop triggers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "coreio/cosim/model.hpp"

namespace coreio::cosim {

/// Something that watches or drives pins every cycle.
class Agent {
public:
    virtual ~Agent() = default;
    /// Inputs are settled: the values now on the pins are those the rising
    /// edge samples (handshakes happen here).
    virtual void before_edge() = 0;
    /// After the edge: drive the next values of the pins this agent owns.
    virtual void after_edge() {}
    /// The model was reset: forget transfers in flight, drive idle values.
    virtual void on_reset() {}
};

/// Waveform capture settings.
struct TraceOptions {
    std::optional<TraceFormat> format;    // none: no waveform
    std::string path;                     // output file
    std::uint64_t start_cycle = 0;        // start at this cycle (0: at once)
    std::optional<std::uint64_t> stop_cycle;  // stop after this cycle
    std::optional<std::uint64_t> start_addr;  // or start at the first access to this address
    std::optional<std::uint64_t> stop_addr;   // stop at the first access to this address
};

class Sim {
public:
    /// Called with (changed lines, new levels) as soon as an IRQ output changes.
    using IrqListener = std::function<void(std::uint32_t changed, std::uint32_t levels)>;

    /// Drives `model` (not owned). The model starts with reset released.
    explicit Sim(Model& model);
    ~Sim();
    Sim(const Sim&) = delete;
    Sim& operator=(const Sim&) = delete;

    Model& model() { return model_; }
    /// Evaluates the current inputs with the clock low (read outputs after it).
    void settle();
    /// One clock cycle (see the file comment).
    void cycle();
    /// Runs `n` cycles; IRQ changes are reported as they happen.
    void run(std::uint64_t n);
    /// Holds reset asserted for `cycles` cycles, then releases it; agents are told.
    void reset(unsigned cycles);
    /// Cycles clocked since construction.
    std::uint64_t cycles() const { return cycles_; }
    /// IRQ levels sampled after the last edge.
    std::uint32_t irq_levels() const { return irq_levels_; }
    /// Where IRQ changes go.
    void set_irq_listener(IrqListener listener) { irq_listener_ = std::move(listener); }
    /// Adds a per-cycle agent (not owned; must outlive the Sim or be removed).
    void add_agent(Agent& agent);
    void remove_agent(Agent& agent);

    /// Configures waveform capture; false with `error` when the model cannot
    /// write the format or the file cannot be opened.
    bool set_trace(const TraceOptions& options, std::string& error);
    /// Address triggers: call on every access (cheap when no trigger is set).
    void note_access(std::uint64_t addr);
    /// True while a waveform is being written.
    bool tracing() const { return tracing_; }
    /// Closes the waveform (also done by the destructor).
    void stop_trace();

private:
    void sample_irqs();
    void maybe_start_trace();
    void start_trace();

    Model& model_;
    std::vector<Agent*> agents_;
    IrqListener irq_listener_;
    std::uint64_t cycles_ = 0;
    std::uint32_t irq_levels_ = 0;
    bool settled_ = false;       // inputs evaluated with the clock low this cycle
    TraceOptions trace_;         // configured capture
    bool trace_armed_ = false;   // a capture is configured but not started
    bool tracing_ = false;       // a capture is open
    bool trace_done_ = false;    // the capture was stopped (never restarts)
};

}  // namespace coreio::cosim
