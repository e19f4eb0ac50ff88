#include "coreio/cosim/sim.hpp"

#include <algorithm>

namespace coreio::cosim {

const char* trace_format_name(TraceFormat f) { return f == TraceFormat::Fst ? "fst" : "vcd"; }

const char* bus_name(BusKind kind) {
    switch (kind) {
    case BusKind::Apb: return "apb";
    case BusKind::AxiLite: return "axi-lite";
    case BusKind::Wishbone: return "wishbone";
    case BusKind::None: break;
    }
    return "none";
}

Sim::Sim(Model& model) : model_(model) {
    model_.set_reset(false);
    model_.set_clock(false);
    model_.eval();
    irq_levels_ = model_.ports().irq_levels();
}

Sim::~Sim() { stop_trace(); }

void Sim::settle() {
    model_.set_clock(false);
    model_.eval();
    settled_ = true;
}

void Sim::cycle() {
    if (!settled_) settle();
    if (tracing_) model_.trace_dump(2 * cycles_);
    for (Agent* a : agents_) a->before_edge();
    model_.set_clock(true);
    model_.eval();
    ++cycles_;
    settled_ = false;
    if (tracing_) model_.trace_dump(2 * cycles_ - 1);
    sample_irqs();
    for (Agent* a : agents_) a->after_edge();
    if (trace_armed_ || tracing_) maybe_start_trace();
}

void Sim::run(std::uint64_t n) {
    while (n > 0) {
        // The fast path needs nobody else watching the pins: no agents, no waveform.
        if (agents_.empty() && !tracing_) {
            std::uint64_t chunk = n;
            if (trace_armed_ && !trace_.start_addr && trace_.start_cycle > cycles_)
                chunk = std::min(chunk, trace_.start_cycle - cycles_);
            else if (trace_armed_ && !trace_.start_addr)
                chunk = 1;
            const std::uint64_t done = model_.run_fast(chunk, irq_levels_);
            if (done == 0) {  // no fast path for this model
                cycle();
                --n;
                continue;
            }
            cycles_ += done;
            n -= done;
            settled_ = false;
            sample_irqs();
            if (trace_armed_) maybe_start_trace();
        } else {
            cycle();
            --n;
        }
    }
}

void Sim::reset(unsigned cycles) {
    model_.set_reset(true);
    for (Agent* a : agents_) a->on_reset();
    for (unsigned i = 0; i < std::max(cycles, 1u); ++i) cycle();
    model_.set_reset(false);
    for (Agent* a : agents_) a->on_reset();
    settle();
    sample_irqs();
}

void Sim::add_agent(Agent& agent) { agents_.push_back(&agent); }

void Sim::remove_agent(Agent& agent) { std::erase(agents_, &agent); }

void Sim::sample_irqs() {
    const std::uint32_t now = model_.ports().irq_levels();
    if (now == irq_levels_) return;
    const std::uint32_t changed = now ^ irq_levels_;
    irq_levels_ = now;
    if (irq_listener_) irq_listener_(changed, now);
}

bool Sim::set_trace(const TraceOptions& options, std::string& error) {
    stop_trace();
    trace_ = options;
    trace_done_ = false;
    trace_armed_ = false;
    if (!options.format) return true;
    if (!model_.can_trace(*options.format)) {
        error = std::string("model '") + model_.name() + "' was built without " +
                trace_format_name(*options.format) + " tracing (coreio_add_cosim TRACE option)";
        return false;
    }
    if (options.path.empty()) {
        error = "trace: no output file given";
        return false;
    }
    trace_armed_ = true;
    if (!options.start_addr && options.start_cycle <= cycles_) {
        // Open now so a bad path is reported at once.
        if (!model_.trace_open(*trace_.format, trace_.path, error)) {
            trace_armed_ = false;
            return false;
        }
        trace_armed_ = false;
        tracing_ = true;
    }
    return true;
}

void Sim::start_trace() {
    std::string error;
    trace_armed_ = false;
    if (!model_.trace_open(*trace_.format, trace_.path, error)) {
        trace_done_ = true;
        return;
    }
    tracing_ = true;
}

void Sim::maybe_start_trace() {
    if (trace_armed_ && !trace_.start_addr && cycles_ >= trace_.start_cycle) start_trace();
    if (tracing_ && trace_.stop_cycle && cycles_ >= *trace_.stop_cycle) stop_trace();
}

void Sim::note_access(std::uint64_t addr) {
    if (trace_armed_ && trace_.start_addr && *trace_.start_addr == addr) start_trace();
    else if (tracing_ && trace_.stop_addr && *trace_.stop_addr == addr) stop_trace();
}

void Sim::stop_trace() {
    if (tracing_) {
        model_.trace_close();
        tracing_ = false;
        trace_done_ = true;
    }
    trace_armed_ = false;
}

}  // namespace coreio::cosim
