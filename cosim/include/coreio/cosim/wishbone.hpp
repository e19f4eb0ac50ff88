// Wishbone B4 slave adapter. Classic: CYC+STB held until ACK or ERR.
// Pipelined: STB held only until the slave takes it (STALL low), then the
// adapter waits for ACK or ERR with CYC high.
#pragma once

#include "coreio/cosim/slave.hpp"

namespace coreio::cosim {

class WishboneAdapter final : public SlaveAdapter {
public:
    WishboneAdapter(Sim& sim, const WishbonePins& pins, const SlaveOptions& options);
    unsigned bus_bytes() const override { return bytes_; }
    BusStatus write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned prot) override;
    BusStatus read(std::uint64_t addr, std::uint64_t& data, unsigned prot) override;
    void idle() override;

private:
    BusStatus transfer(bool write, std::uint64_t addr, std::uint64_t wdata, std::uint32_t strb,
                       std::uint64_t* rdata);
    Sim& sim_;
    WishbonePins p_;
    SlaveOptions opt_;
    unsigned bytes_;  // data width
};

}  // namespace coreio::cosim
