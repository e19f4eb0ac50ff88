// The guest's console and power-off register (see platform.hpp for addresses).
//
// UART: a PL011 subset. A write to DR (0x00) prints its low byte; FR (0x18)
// reads "transmit FIFO empty, receive FIFO empty" (TXFE | RXFE), so polling
// "wait while TXFF" loops never wait; the other registers (IBRD, FBRD, LCR_H,
// CR, IMSC, ICR, ...) accept writes and read 0, and the PrimeCell ID registers
// read as a PL011's. There is no input.
//
// Power-off: a write to offset 0 ends the run; the value becomes the exit status.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>

namespace coreio::mockvm::guest {

class Console {
public:
    /// Prints the guest's output to `out` (not owned; must outlive the console).
    explicit Console(std::ostream& out) : out_(out) {}

    std::uint32_t read_uart(std::uint64_t offset, unsigned size) const;
    void write_uart(std::uint64_t offset, unsigned size, std::uint32_t value);
    void write_power_off(std::uint64_t offset, std::uint32_t value);

    /// The value written to the power-off register, once it was.
    std::optional<std::uint32_t> exit_status() const { return exit_status_; }

    /// PL011 flag register bits.
    static constexpr std::uint32_t kFlagRxEmpty = 1u << 4, kFlagTxEmpty = 1u << 7;

private:
    std::ostream& out_;
    std::optional<std::uint32_t> exit_status_;
};

}  // namespace coreio::mockvm::guest
