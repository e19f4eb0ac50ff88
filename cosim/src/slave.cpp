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

/// A request channel the adapter offers: VALID is high until the edge that takes it.
struct AxiLiteAdapter::Request {
    const Signal& valid;
    const Signal& ready;
    bool done = false;
    bool taken = false;  // by the coming edge
};

BusStatus AxiLiteAdapter::write(std::uint64_t addr, std::uint64_t data, std::uint32_t strb, unsigned prot) {
    p_.awaddr.set(addr >> opt_.addr_shift);
    p_.awprot.set(prot);
    p_.awvalid.set(1);
    p_.wdata.set(data);
    p_.wstrb.set(strb);
    p_.wvalid.set(1);
    Request requests[] = {{p_.awvalid, p_.awready}, {p_.wvalid, p_.wready}};
    return exchange(requests, p_.bvalid, p_.bready, p_.bresp, nullptr, nullptr);
}

BusStatus AxiLiteAdapter::read(std::uint64_t addr, std::uint64_t& data, unsigned prot) {
    p_.araddr.set(addr >> opt_.addr_shift);
    p_.arprot.set(prot);
    p_.arvalid.set(1);
    Request requests[] = {{p_.arvalid, p_.arready}};
    return exchange(requests, p_.rvalid, p_.rready, p_.rresp, &p_.rdata, &data);
}

BusStatus AxiLiteAdapter::exchange(std::span<Request> requests, const Signal& valid, const Signal& ready,
                                   const Signal& resp, const Signal* payload, std::uint64_t* data) {
    ready.set(1);
    for (std::uint64_t n = 0;; ++n) {
        sim_.settle();
        // The response counts from the edge that takes the last request on:
        // registered-output slaves raise BVALID/RVALID with the READYs.
        bool all_taken = true;
        for (Request& r : requests) {
            r.taken = !r.done && r.ready.get() != 0;
            all_taken = all_taken && (r.done || r.taken);
        }
        const bool response = all_taken && valid.get() != 0;
        if (response && data) *data = payload->get();
        const std::uint64_t code = resp.get();
        sim_.cycle();
        for (Request& r : requests) {
            if (!r.taken) continue;
            r.done = true;
            r.valid.set(0);
        }
        if (response) {
            ready.set(0);
            return axi_resp_status(code);
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
