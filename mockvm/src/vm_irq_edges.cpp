// Vm's edge-counting driver calls (irq_count, irq_clear, irq_wait_edge): built
// on the VM's own edge counters and wait_until(), with the per-line marks
// that make the waits latched.
#include "coreio/mockvm/vm.hpp"

namespace coreio::mockvm {

namespace {
bool valid_line(unsigned rid, unsigned line) { return rid < kNumRanges && line < kNumIrqLines; }
}  // namespace

std::uint64_t Vm::irq_count(unsigned rid, unsigned line) const {
    if (!valid_line(rid, line)) return 0;
    return irq_edges(rid, line) - irq_marks_.cleared[rid][line].load(std::memory_order_acquire);
}

void Vm::irq_clear(unsigned rid, unsigned line) {
    if (!valid_line(rid, line)) return;
    const std::uint64_t rising = irq_edges(rid, line);
    irq_marks_.cleared[rid][line].store(rising, std::memory_order_release);
    irq_marks_.rising[rid][line].store(rising, std::memory_order_release);
    irq_marks_.falling[rid][line].store(irq_falling_edges(rid, line), std::memory_order_release);
}

bool Vm::irq_wait_edge(unsigned rid, unsigned line, IrqEdge edge, std::chrono::milliseconds timeout) {
    if (!valid_line(rid, line)) return false;
    const bool rising = edge == IrqEdge::Rising;
    std::atomic<std::uint64_t>& mark = rising ? irq_marks_.rising[rid][line] : irq_marks_.falling[rid][line];
    std::uint64_t seen = 0;
    const bool ok = wait_until(
        [&] {
            seen = rising ? irq_edges(rid, line) : irq_falling_edges(rid, line);
            return seen > mark.load(std::memory_order_acquire);
        },
        timeout);
    if (ok) mark.store(seen, std::memory_order_release);
    return ok;
}

}  // namespace coreio::mockvm
