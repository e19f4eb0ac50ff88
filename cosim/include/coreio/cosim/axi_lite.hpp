// AXI4-Lite slave adapter: AW and W are offered together and each drops on
// its own handshake; B (writes) and R (reads) are awaited with READY high
// and taken from the edge of the address handshake on (a registered-output
// slave answers in the same cycle as it accepts).
// SLVERR and DECERR become bus errors.
#pragma once

#include <span>

#include "coreio/cosim/slave.hpp"

namespace coreio::cosim {

class AxiLiteAdapter final : public SlaveAdapter {
public:
    AxiLiteAdapter(Sim& sim, const AxiLitePins& pins, const SlaveOptions& options);
    unsigned bus_bytes() const override { return bytes_; }
    BusStatus write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned prot) override;
    BusStatus read(std::uint64_t addr, std::uint64_t& data, unsigned prot) override;
    void idle() override;

private:
    struct Request;
    /// Offers `requests` (VALID already high; each drops on the edge that
    /// takes it) and awaits the response `valid` with `ready` high; samples
    /// `payload` into `data` with it. Returns its RESP as a status.
    BusStatus exchange(std::span<Request> requests, const Signal& valid, const Signal& ready, const Signal& resp,
                       const Signal* payload, std::uint64_t* data);

    Sim& sim_;
    AxiLitePins p_;
    SlaveOptions opt_;
    unsigned bytes_;  // WDATA width
};

/// BusStatus of an AXI RESP code (OKAY/EXOKAY ok, SLVERR, DECERR).
BusStatus axi_resp_status(std::uint64_t resp);

}  // namespace coreio::cosim
