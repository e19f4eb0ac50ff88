// Helpers shared by the co-simulation tests: a rig around one example model
// (Sim, slave adapter, protocol checker) and a guest-memory DmaPort double.
#pragma once

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "coreio/cosim/axi_master.hpp"
#include "coreio/cosim/checkers.hpp"
#include "coreio/cosim/sim.hpp"
#include "coreio/cosim/slave.hpp"

namespace cosim_test {

using namespace coreio::cosim;

/// A model on a Sim, its slave adapter and the matching bus checker.
struct Rig {
    Rig(std::unique_ptr<Model> m, bool wb_pipelined = false, unsigned addr_shift = 0)
        : model(std::move(m)), sim(*model) {
        SlaveOptions o;
        o.wishbone_pipelined = wb_pipelined;
        o.addr_shift = addr_shift;
        o.timeout_cycles = 1000;
        const Ports& p = model->ports();
        switch (p.bus) {
        case BusKind::Apb: checker = std::make_unique<ApbChecker>(sim, p.apb); break;
        case BusKind::AxiLite: checker = std::make_unique<AxiLiteChecker>(sim, p.axil); break;
        case BusKind::Wishbone: checker = std::make_unique<WishboneChecker>(sim, p.wb, wb_pipelined); break;
        case BusKind::None: break;
        }
        bus = make_slave_adapter(sim, p, o);
        sim.set_irq_listener([this](std::uint32_t, std::uint32_t levels) { irq_changes.push_back(levels); });
        sim.reset(4);
    }
    std::uint32_t rd32(std::uint64_t addr, BusStatus want = BusStatus::Ok) {
        std::uint8_t b[4]{};
        EXPECT_EQ(bus_read(*bus, addr, 4, b, 0), want) << "read at 0x" << std::hex << addr;
        std::uint32_t v;
        std::memcpy(&v, b, 4);
        return v;
    }
    BusStatus wr(std::uint64_t addr, std::uint64_t v, std::size_t len = 4) {
        std::uint8_t b[8];
        std::memcpy(b, &v, 8);
        return bus_write(*bus, addr, len, b, ~0ull, 0);
    }
    void expect_clean() const {
        ASSERT_TRUE(checker);
        EXPECT_GT(checker->cycles_checked(), 0u);
        for (const auto& v : checker->violations()) ADD_FAILURE() << v;
    }
    std::unique_ptr<Model> model;
    Sim sim;
    std::unique_ptr<ProtocolChecker> checker;
    std::unique_ptr<SlaveAdapter> bus;
    std::vector<std::uint32_t> irq_changes;  // IRQ levels after each change
};

/// Guest memory [base, base + size) served to an AXI master; outside it: -EFAULT.
class FakeMemory final : public DmaPort {
public:
    FakeMemory(std::uint64_t base, std::size_t size) : base_(base), mem_(size) {}
    int read(std::uint64_t addr, std::span<std::byte> out) override {
        ++reads;
        if (!inside(addr, out.size())) return -EFAULT;
        std::memcpy(out.data(), mem_.data() + (addr - base_), out.size());
        return 0;
    }
    int write(std::uint64_t addr, std::span<const std::byte> in) override {
        ++writes;
        if (!inside(addr, in.size())) return -EFAULT;
        std::memcpy(mem_.data() + (addr - base_), in.data(), in.size());
        return 0;
    }
    std::uint8_t& at(std::uint64_t addr) { return mem_.at(addr - base_); }
    int reads = 0, writes = 0;

private:
    bool inside(std::uint64_t a, std::size_t n) const { return a >= base_ && a - base_ + n <= mem_.size(); }
    std::uint64_t base_;
    std::vector<std::uint8_t> mem_;
};

}  // namespace cosim_test
