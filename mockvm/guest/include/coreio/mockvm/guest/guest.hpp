// coreio::mockvm::guest::Guest: an AArch64 CPU (unicorn-engine) running
// bare-metal firmware inside the mock VM. Guest loads and stores to the VM's
// MMIO ranges become CoreIO requests through the Vm's driver API; guest memory
// is the VM's GuestMemory, so the guest sees what devices DMA and the other way
// round. Built-in devices (GIC, UART, power-off) are at the addresses of platform.hpp.
//
// The CPU starts at the ELF entry point at EL1 (SP_EL1 selected, DAIF masked,
// MMU and caches off) with SP = GuestConfig::stack_pointer, by default the end
// of the memory region holding the entry point.
//
// MMIO: loads/stores of 1, 2, 4 and 8 bytes become one request each; ldp/stp
// (and 16-byte SIMD accesses) reach the VM as two accesses of half the size,
// which is how the emulator reports them. Every access waits for the device's
// reply before the instruction retires (a read's value is written back; writes
// are acknowledged, as non-posted nGnRnE writes): so whatever a write makes the
// device do (an IRQ update) reaches the VM before the guest's next access, and
// runs repeat exactly. An access the device answers with a bus error (or that
// times out, or whose device went away) stops the run with an error naming the
// address: no external abort is delivered to the guest. An access to a range no device claimed behaves as
// for any VM driver: reads 0xAA bytes, writes are dropped.
//
// Interrupts: each device IRQ line is a GIC SPI (platform.hpp). An IRQ the GIC
// signals is taken when PSTATE.I is clear, at a translation-block boundary
// (an instruction boundary), through VBAR_EL1 + 0x280 (current EL, SP_ELx):
// ELR_EL1 = the next instruction, SPSR_EL1 = PSTATE, then DAIF masked. wfi
// sleeps until the GIC signals an interrupt (at most GuestConfig::wfi_timeout).
// IRQs are sampled after every guest MMIO access, at wfi and at block starts:
// a firmware that waits with wfi (or polls by MMIO) sees them at the same
// instruction on every run with a deterministic device.
//
// Time: CNTVCT_EL0/CNTPCT_EL0 read the number of guest instructions executed
// (counted per translation block as it starts), CNTFRQ_EL0 reads
// kCounterFrequencyHz: guest time is independent of the host. GuestConfig::time_ns
// publishes it at each CoreIO access for a recording's clock.
//
// The guest reads memory that DMA writes without a lock: a device should
// signal completion (status register, IRQ) before the guest reads DMA data.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "coreio/mockvm/guest/elf_loader.hpp"
#include "coreio/mockvm/vm.hpp"

namespace coreio::mockvm::guest {

struct GuestConfig {
    /// The firmware: an AArch64 ELF64 executable.
    std::string firmware;
    /// Initial SP; 0: the end of the guest memory region holding the entry point.
    std::uint64_t stack_pointer = 0;
    /// Stop with an error after this many guest instructions (0: no limit).
    std::uint64_t max_instructions = 0;
    /// Longest wfi sleep before the run stops with an error (0: the Vm's request timeout).
    std::chrono::milliseconds wfi_timeout{0};
    /// Where UART output goes (not owned); nullptr: std::cout.
    std::ostream* console = nullptr;
    /// If set, the guest stores its time here before each CoreIO access: the
    /// instructions executed so far in ns of the counter (kCounterFrequencyHz).
    /// A recording that takes its clock from it repeats byte for byte.
    std::atomic<std::uint64_t>* time_ns = nullptr;
};

struct GuestResult {
    /// True when the guest wrote the power-off register; exit_value is what it wrote.
    bool exited = false;
    std::uint32_t exit_value = 0;
    /// Otherwise why the run stopped (a fault, a bus error, a wfi that never woke, ...).
    std::string error;
    std::uint64_t instructions = 0;   // guest instructions executed
    std::uint64_t mmio_accesses = 0;  // guest accesses that became CoreIO requests
    std::uint64_t interrupts = 0;     // IRQ exceptions delivered
};

class Guest {
public:
    /// Loads the firmware into vm.memory() and sets up the CPU. Throws GuestError
    /// for a bad file, guest memory not aligned to 4 KiB, or a VM range or memory
    /// region overlapping a built-in device.
    Guest(Vm& vm, GuestConfig config);
    ~Guest();
    Guest(const Guest&) = delete;
    Guest& operator=(const Guest&) = delete;

    /// Runs the guest until it powers off or stops on an error. Call once.
    GuestResult run();
    const ElfImage& image() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace coreio::mockvm::guest
