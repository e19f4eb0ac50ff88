// A GICv2 subset for one CPU: enough of the distributor and CPU interface for
// ordinary bare-metal interrupt code (enable, prioritise, acknowledge, end).
//
// Distributor (offsets from kGicDistributorBase): CTLR, TYPER, IIDR,
// ISENABLER/ICENABLER, ISPENDR/ICPENDR, ISACTIVER/ICACTIVER, IPRIORITYR and
// ITARGETSR (byte or word access), IGROUPR and ICFGR (accepted, no effect).
// CPU interface (offsets from kGicCpuInterfaceBase): CTLR, PMR, BPR (accepted),
// IAR, EOIR, RPR, HPPIR. Other offsets read as zero and ignore writes.
//
// Interrupt IDs 0..95; device lines are SPIs (see platform.hpp). A device line
// is pending while it is high, and also from a rising edge until the interrupt
// is acknowledged, so a pulse shorter than the VM's sampling is not lost.
// No preemption levels beyond "a pending interrupt must have a higher priority
// (lower value) than the running one and than PMR"; no SGIs, no groups.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>

#include "coreio/mockvm/guest/platform.hpp"

namespace coreio::mockvm::guest {

class Gic {
public:
    /// The interrupt ID IAR returns when nothing can be acknowledged.
    static constexpr std::uint32_t kSpurious = 1023;

    /// Register accesses; `offset` is within the 4 KiB frame, size 1, 2 or 4.
    std::uint32_t read_distributor(std::uint64_t offset, unsigned size) const;
    void write_distributor(std::uint64_t offset, unsigned size, std::uint32_t value);
    /// Not const: reading IAR acknowledges an interrupt.
    std::uint32_t read_cpu_interface(std::uint64_t offset, unsigned size);
    void write_cpu_interface(std::uint64_t offset, unsigned size, std::uint32_t value);

    /// The level of a device line (an SPI) as the VM sees it.
    void set_level(unsigned intid, bool high);
    /// A rising edge on a device line: pending until acknowledged.
    void latch_edge(unsigned intid);
    /// True when the CPU interface signals IRQ to the CPU (what IAR would return is not spurious).
    bool irq_signalled() const { return highest_pending() >= 0; }

private:
    using Bits = std::bitset<kNumIntids>;
    /// The interrupt IAR would acknowledge, or -1.
    int highest_pending() const;
    unsigned running_priority() const;
    bool pending(unsigned id) const { return latched_[id] || level_[id]; }
    std::uint32_t read_bits(const Bits& bits, std::uint64_t word) const;
    static void set_bits(Bits& bits, std::uint64_t word, std::uint32_t value, bool to);
    std::uint32_t read_bytes(const std::array<std::uint8_t, kNumIntids>& bytes, std::uint64_t first, unsigned size,
                             bool targets) const;

    Bits enabled_, latched_, level_, active_;
    std::array<std::uint8_t, kNumIntids> priority_{};
    std::array<std::uint8_t, kNumIntids> targets_{};
    std::array<std::uint32_t, kNumIntids / 16> config_{};  // ICFGR: stored, no effect
    std::uint32_t distributor_ctlr_ = 0, cpu_ctlr_ = 0, priority_mask_ = 0, binary_point_ = 0;
};

}  // namespace coreio::mockvm::guest
