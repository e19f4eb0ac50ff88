// The port binding of a co-simulated model: which model ports play which bus
// role. Filled by the binding that coreio_add_cosim() generates (names mapped
// by configuration), or by hand in tests.
#pragma once

#include <array>
#include <cstdint>

#include "coreio/cosim/signal.hpp"

namespace coreio::cosim {

/// The kind of slave port MMIO is routed to.
enum class BusKind : std::uint8_t { None, Apb, AxiLite, Wishbone };

/// "apb", "axi-lite", "wishbone", "none".
const char* bus_name(BusKind kind);

/// APB3/APB4 slave port (PSTRB, PPROT, PREADY, PSLVERR optional).
struct ApbPins {
    Signal psel, penable, pwrite, paddr, pwdata, pstrb, pprot;  // driven by the bridge
    Signal prdata, pready, pslverr;                              // driven by the model
};

/// AXI4-Lite slave port (PROT and RESP optional).
struct AxiLitePins {
    Signal awvalid, awready, awaddr, awprot;
    Signal wvalid, wready, wdata, wstrb;
    Signal bvalid, bready, bresp;
    Signal arvalid, arready, araddr, arprot;
    Signal rvalid, rready, rdata, rresp;
};

/// Wishbone B4 slave port, classic or pipelined (SEL, ERR, STALL optional).
/// dat_w carries write data into the model, dat_r read data out of it.
struct WishbonePins {
    Signal cyc, stb, we, adr, dat_w, sel;  // driven by the bridge
    Signal dat_r, ack, err, stall;         // driven by the model
};

/// AXI4 master port of the model (IDs, BURST and RESP optional).
struct Axi4Pins {
    Signal awvalid, awready, awaddr, awlen, awsize, awburst, awid;
    Signal wvalid, wready, wdata, wstrb, wlast;
    Signal bvalid, bready, bresp, bid;
    Signal arvalid, arready, araddr, arlen, arsize, arburst, arid;
    Signal rvalid, rready, rdata, rresp, rlast, rid;
};

/// One interrupt output of the model: `width` lines starting at line `first`.
struct IrqPort {
    Signal signal;
    unsigned width = 1;
    unsigned first = 0;
};

/// Every port the bridge uses.
struct Ports {
    Signal clock;                  // rising-edge clock
    Signal reset;                  // model reset
    bool reset_active_low = true;  // polarity of `reset`
    const char* reset_name = "";   // its port name (for messages)
    BusKind bus = BusKind::None;   // which of the slave pin sets is used
    ApbPins apb;
    AxiLitePins axil;
    WishbonePins wb;
    bool has_master = false;  // whether `axi` is bound
    Axi4Pins axi;
    std::array<IrqPort, 8> irqs{};  // interrupt outputs (first `num_irqs`)
    unsigned num_irqs = 0;

    /// Current interrupt levels, bit i = line i.
    std::uint32_t irq_levels() const {
        std::uint32_t v = 0;
        for (unsigned i = 0; i < num_irqs; ++i) {
            const IrqPort& p = irqs[i];
            v |= static_cast<std::uint32_t>(p.signal.get() & ((1u << p.width) - 1)) << p.first;
        }
        return v & 0xff;
    }
};

}  // namespace coreio::cosim
