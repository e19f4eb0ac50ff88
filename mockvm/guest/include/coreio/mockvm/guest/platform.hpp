// The guest platform: where the guest CPU finds its built-in devices, how
// device IRQ lines map to GIC interrupt numbers, and the guest's notion of time.
// The layout follows QEMU's "virt" board where it has a counterpart, so
// bare-metal code written for that board finds the GIC and the UART.
#pragma once

#include <cstdint>

namespace coreio::mockvm::guest {

/// GICv2 distributor and CPU interface (4 KiB each).
inline constexpr std::uint64_t kGicDistributorBase = 0x08000000;
inline constexpr std::uint64_t kGicCpuInterfaceBase = 0x08010000;
/// PL011 UART subset: DR (0x00) writes go to the console, FR (0x18) says "ready".
inline constexpr std::uint64_t kUartBase = 0x09000000;
/// Power-off register: a write of a 32-bit value ends the run with that value
/// as the mock VM's exit status (coreio-mockvm exits 255 for values above 255).
inline constexpr std::uint64_t kExitBase = 0x09010000;
/// Every built-in device occupies one 4 KiB page.
inline constexpr std::uint64_t kDevicePageSize = 0x1000;

/// Device IRQ line `line` (0..7) of MMIO range `rid` (0..7) is GIC shared
/// peripheral interrupt INTID 32 + 8 * rid + line.
inline constexpr unsigned kFirstDeviceIntid = 32;
constexpr unsigned device_intid(unsigned rid, unsigned line) { return kFirstDeviceIntid + 8 * rid + line; }
/// Interrupt IDs the GIC implements: SGIs/PPIs 0..31 plus the 64 device SPIs.
inline constexpr unsigned kNumIntids = 96;

/// The virtual counter counts executed guest instructions (never host time):
/// CNTVCT_EL0 and CNTPCT_EL0 read the instruction count, CNTFRQ_EL0 reads this.
inline constexpr std::uint64_t kCounterFrequencyHz = 100'000'000;
inline constexpr std::uint64_t kNsPerCounterTick = 1'000'000'000 / kCounterFrequencyHz;

}  // namespace coreio::mockvm::guest
