#include "coreio/cosim/slave.hpp"

#include <algorithm>
#include <cstring>

#include "coreio/cosim/apb.hpp"
#include "coreio/cosim/axi_lite.hpp"
#include "coreio/cosim/wishbone.hpp"

namespace coreio::cosim {

const char* bus_status_name(BusStatus s) {
    switch (s) {
    case BusStatus::Ok: return "ok";
    case BusStatus::SlaveError: return "slave error";
    case BusStatus::DecodeError: return "decode error";
    case BusStatus::Timeout: return "timeout";
    }
    return "?";
}

unsigned prot_from_flags(unsigned flags) {
    unsigned prot = 0;
    if (flags & 4u) prot |= 1u;        // COREIO_FLAGS_PRIV
    if (!(flags & 8u)) prot |= 2u;     // not COREIO_FLAGS_SECURE
    if (flags & 2u) prot |= 4u;        // COREIO_FLAGS_IFETCH
    return prot;
}

std::unique_ptr<SlaveAdapter> make_slave_adapter(Sim& sim, const Ports& ports, const SlaveOptions& options) {
    unsigned bytes = 0;
    switch (ports.bus) {
    case BusKind::Apb: bytes = ports.apb.pwdata.bytes(); break;
    case BusKind::AxiLite: bytes = ports.axil.wdata.bytes(); break;
    case BusKind::Wishbone: bytes = ports.wb.dat_w.bytes(); break;
    case BusKind::None: return nullptr;
    }
    if (bytes != 4 && bytes != 8) return nullptr;
    switch (ports.bus) {
    case BusKind::Apb: return std::make_unique<ApbAdapter>(sim, ports.apb, options);
    case BusKind::AxiLite: return std::make_unique<AxiLiteAdapter>(sim, ports.axil, options);
    case BusKind::Wishbone: return std::make_unique<WishboneAdapter>(sim, ports.wb, options);
    case BusKind::None: break;
    }
    return nullptr;
}

BusStatus bus_read(SlaveAdapter& bus, std::uint64_t addr, std::size_t len, std::uint8_t* out, unsigned prot) {
    const unsigned w = bus.bus_bytes();
    std::size_t done = 0;
    while (done < len) {
        const std::uint64_t a = addr + done;
        const std::uint64_t beat = a & ~std::uint64_t{w - 1};
        const unsigned lane = static_cast<unsigned>(a - beat);
        const std::size_t n = std::min<std::size_t>(w - lane, len - done);
        std::uint64_t data = 0;
        const BusStatus s = bus.read(beat, data, prot);
        if (s != BusStatus::Ok) return s;
        for (std::size_t i = 0; i < n; ++i) out[done + i] = static_cast<std::uint8_t>(data >> (8 * (lane + i)));
        done += n;
    }
    return BusStatus::Ok;
}

BusStatus bus_write(SlaveAdapter& bus, std::uint64_t addr, std::size_t len, const std::uint8_t* in,
                    std::uint64_t byte_mask, unsigned prot) {
    const unsigned w = bus.bus_bytes();
    std::size_t done = 0;
    while (done < len) {
        const std::uint64_t a = addr + done;
        const std::uint64_t beat = a & ~std::uint64_t{w - 1};
        const unsigned lane = static_cast<unsigned>(a - beat);
        const std::size_t n = std::min<std::size_t>(w - lane, len - done);
        std::uint64_t data = 0;
        std::uint32_t strb = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (done + i < 64 && !((byte_mask >> (done + i)) & 1)) continue;
            data |= std::uint64_t{in[done + i]} << (8 * (lane + i));
            strb |= 1u << (lane + i);
        }
        if (strb != 0) {
            const BusStatus s = bus.write(beat, data, strb, prot);
            if (s != BusStatus::Ok) return s;
        }
        done += n;
    }
    return BusStatus::Ok;
}

// ---- APB ----

ApbAdapter::ApbAdapter(Sim& sim, const ApbPins& pins, const SlaveOptions& options)
    : sim_(sim), p_(pins), opt_(options), bytes_(pins.pwdata.bytes()) {
    idle();
}

void ApbAdapter::idle() {
    p_.psel.set(0);
    p_.penable.set(0);
    p_.pwrite.set(0);
    p_.pstrb.set(0);
}

BusStatus ApbAdapter::transfer(bool write, std::uint64_t addr, std::uint64_t wdata, std::uint32_t strb,
                               unsigned prot, std::uint64_t* rdata) {
    p_.paddr.set(addr >> opt_.addr_shift);
    p_.pwrite.set(write);
    p_.pwdata.set(write ? wdata : 0);
    p_.pstrb.set(write ? strb : 0);
    p_.pprot.set(prot);
    p_.psel.set(1);
    p_.penable.set(0);
    sim_.cycle();  // setup phase
    p_.penable.set(1);
    for (std::uint64_t n = 0;; ++n) {
        sim_.settle();
        const bool ready = !p_.pready.bound() || p_.pready.get() != 0;
        if (ready) {
            const bool err = p_.pslverr.get() != 0;
            if (rdata) *rdata = p_.prdata.get();
            sim_.cycle();
            idle();
            return err ? BusStatus::SlaveError : BusStatus::Ok;
        }
        if (n >= opt_.timeout_cycles) {
            idle();
            return BusStatus::Timeout;
        }
        sim_.cycle();
    }
}

BusStatus ApbAdapter::write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned prot) {
    return transfer(true, addr, data, strb, prot, nullptr);
}

BusStatus ApbAdapter::read(std::uint64_t addr, std::uint64_t& data, unsigned prot) {
    return transfer(false, addr, 0, 0, prot, &data);
}

// ---- AXI4-Lite ----

BusStatus axi_resp_status(std::uint64_t resp) {
    switch (resp & 3) {
    case 2: return BusStatus::SlaveError;
    case 3: return BusStatus::DecodeError;
    default: return BusStatus::Ok;
    }
}

AxiLiteAdapter::AxiLiteAdapter(Sim& sim, const AxiLitePins& pins, const SlaveOptions& options)
    : sim_(sim), p_(pins), opt_(options), bytes_(pins.wdata.bytes()) {
    idle();
}

void AxiLiteAdapter::idle() {
    p_.awvalid.set(0);
    p_.wvalid.set(0);
    p_.bready.set(0);
    p_.arvalid.set(0);
    p_.rready.set(0);
}

BusStatus AxiLiteAdapter::write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned prot) {
    p_.awaddr.set(addr >> opt_.addr_shift);
    p_.awprot.set(prot);
    p_.awvalid.set(1);
    p_.wdata.set(data);
    p_.wstrb.set(strb);
    p_.wvalid.set(1);
    p_.bready.set(1);
    bool aw_done = false, w_done = false;
    for (std::uint64_t n = 0;; ++n) {
        sim_.settle();
        const bool aw_hs = !aw_done && p_.awready.get() != 0;
        const bool w_hs = !w_done && p_.wready.get() != 0;
        // The response counts from the edge that takes the last of AW and W
        // on: registered-output slaves raise BVALID with AWREADY/WREADY.
        const bool b_hs = (aw_done || aw_hs) && (w_done || w_hs) && p_.bvalid.get() != 0;
        const std::uint64_t resp = p_.bresp.get();
        sim_.cycle();
        if (aw_hs) {
            aw_done = true;
            p_.awvalid.set(0);
        }
        if (w_hs) {
            w_done = true;
            p_.wvalid.set(0);
        }
        if (b_hs) {
            p_.bready.set(0);
            return axi_resp_status(resp);
        }
        if (n >= opt_.timeout_cycles) {
            idle();
            return BusStatus::Timeout;
        }
    }
}

BusStatus AxiLiteAdapter::read(std::uint64_t addr, std::uint64_t& data, unsigned prot) {
    p_.araddr.set(addr >> opt_.addr_shift);
    p_.arprot.set(prot);
    p_.arvalid.set(1);
    p_.rready.set(1);
    bool ar_done = false;
    for (std::uint64_t n = 0;; ++n) {
        sim_.settle();
        const bool ar_hs = !ar_done && p_.arready.get() != 0;
        // As for writes: RVALID may come with ARREADY.
        const bool r_hs = (ar_done || ar_hs) && p_.rvalid.get() != 0;
        if (r_hs) data = p_.rdata.get();
        const std::uint64_t resp = p_.rresp.get();
        sim_.cycle();
        if (ar_hs) {
            ar_done = true;
            p_.arvalid.set(0);
        }
        if (r_hs) {
            p_.rready.set(0);
            return axi_resp_status(resp);
        }
        if (n >= opt_.timeout_cycles) {
            idle();
            return BusStatus::Timeout;
        }
    }
}

// ---- Wishbone ----

WishboneAdapter::WishboneAdapter(Sim& sim, const WishbonePins& pins, const SlaveOptions& options)
    : sim_(sim), p_(pins), opt_(options), bytes_(pins.dat_w.bytes()) {
    idle();
}

void WishboneAdapter::idle() {
    p_.cyc.set(0);
    p_.stb.set(0);
    p_.we.set(0);
}

BusStatus WishboneAdapter::transfer(bool write, std::uint64_t addr, std::uint64_t wdata, std::uint32_t strb,
                                    std::uint64_t* rdata) {
    p_.adr.set(addr >> opt_.addr_shift);
    p_.we.set(write);
    p_.dat_w.set(write ? wdata : 0);
    p_.sel.set(write ? strb : (1u << bytes_) - 1);
    p_.cyc.set(1);
    p_.stb.set(1);
    bool taken = false;  // pipelined: the slave accepted the request
    for (std::uint64_t n = 0;; ++n) {
        sim_.settle();
        const bool ack = p_.ack.get() != 0;
        const bool err = p_.err.get() != 0;
        const bool take = opt_.wishbone_pipelined && !taken && p_.stall.get() == 0;
        if ((ack || err) && rdata) *rdata = p_.dat_r.get();
        sim_.cycle();
        if (take) {
            taken = true;
            p_.stb.set(0);
        }
        if (ack || err) {
            idle();
            return err ? BusStatus::SlaveError : BusStatus::Ok;
        }
        if (n >= opt_.timeout_cycles) {
            idle();
            return BusStatus::Timeout;
        }
    }
}

BusStatus WishboneAdapter::write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned /*prot*/) {
    return transfer(true, addr, data, strb, nullptr);
}

BusStatus WishboneAdapter::read(std::uint64_t addr, std::uint64_t& data, unsigned /*prot*/) {
    return transfer(false, addr, 0, 0, &data);
}

}  // namespace coreio::cosim
