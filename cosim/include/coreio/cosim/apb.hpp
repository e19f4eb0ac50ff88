// APB3/APB4 slave adapter: setup phase (PSEL), access phase (PENABLE) held
// until PREADY; PSLVERR becomes a bus error. Without PREADY every access has
// no wait states; without PSTRB (APB3) writes are whole-word.
#pragma once

#include "coreio/cosim/slave.hpp"

namespace coreio::cosim {

class ApbAdapter final : public SlaveAdapter {
public:
    ApbAdapter(Sim& sim, const ApbPins& pins, const SlaveOptions& options);
    unsigned bus_bytes() const override { return bytes_; }
    BusStatus write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned prot) override;
    BusStatus read(std::uint64_t addr, std::uint64_t& data, unsigned prot) override;
    void idle() override;

private:
    BusStatus transfer(bool write, std::uint64_t addr, std::uint64_t wdata, std::uint32_t strb, unsigned prot,
                       std::uint64_t* rdata);
    Sim& sim_;
    ApbPins p_;
    SlaveOptions opt_;
    unsigned bytes_;  // PWDATA width
};

}  // namespace coreio::cosim
