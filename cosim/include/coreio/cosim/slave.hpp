// Slave bus adapters: turn one bus-width beat into a transaction on the
// model's slave port (APB, AXI4-Lite, Wishbone), clocking the Sim until the
// model answers. bus_read()/bus_write() split a CoreIO access of any size
// into beats with byte strobes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "coreio/cosim/ports.hpp"
#include "coreio/cosim/sim.hpp"

namespace coreio::cosim {

/// How a beat ended.
enum class BusStatus : std::uint8_t {
    Ok,
    SlaveError,   // PSLVERR, SLVERR, Wishbone ERR
    DecodeError,  // AXI DECERR
    Timeout,      // the model did not answer within the configured cycles
};

/// "ok", "slave error", "decode error", "timeout".
const char* bus_status_name(BusStatus s);

/// Settings shared by the slave adapters.
struct SlaveOptions {
    std::uint64_t timeout_cycles = 100000;  // a beat unanswered this long fails
    unsigned addr_shift = 0;                // bus address = byte address >> shift (word-addressed buses)
    bool wishbone_pipelined = false;        // Wishbone: pipelined (STALL) instead of classic
};

class SlaveAdapter {
public:
    virtual ~SlaveAdapter() = default;
    /// Data bus width in bytes (4 or 8).
    virtual unsigned bus_bytes() const = 0;
    /// One write beat at bus-aligned byte address `addr`; `strb` bit i = lane i.
    /// `prot` is the AXI/APB protection encoding.
    virtual BusStatus write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned prot) = 0;
    /// One read beat (all lanes).
    virtual BusStatus read(std::uint64_t addr, std::uint64_t& data, unsigned prot) = 0;
    /// Drives every bridge-owned pin inactive (before and after reset).
    virtual void idle() = 0;
};

/// Makes the adapter for `ports.bus`; nullptr when the bus is None or its data
/// width is not 32 or 64 bits.
std::unique_ptr<SlaveAdapter> make_slave_adapter(Sim& sim, const Ports& ports, const SlaveOptions& options);

/// PROT bits from CoreIO access flags: [0] privileged, [1] non-secure, [2] instruction.
unsigned prot_from_flags(unsigned flags);

/// Reads `len` bytes at byte address `addr` as as many beats as it spans.
/// Returns the first failing beat's status (later beats are not issued).
BusStatus bus_read(SlaveAdapter& bus, std::uint64_t addr, std::size_t len, std::uint8_t* out, unsigned prot);
/// Writes `len` bytes; byte i is written only when bit i of `byte_mask` is set.
BusStatus bus_write(SlaveAdapter& bus, std::uint64_t addr, std::size_t len, const std::uint8_t* in,
                    std::uint64_t byte_mask, unsigned prot);

}  // namespace coreio::cosim
