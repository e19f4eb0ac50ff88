// coreio::cosim::Bridge: attaches a Model to a VM. It is the MmioHandler of one
// range: each MMIO access becomes bus beats on the model's slave port (the
// clock runs while they are in flight), interrupt outputs become IRQ updates
// the cycle they change, the model's AXI4 master port becomes DMA, and the
// VM's RESET resets the model. Idle cycles between accesses are the caller's
// (run_idle()), or a fixed count per access.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "coreio/client.hpp"
#include "coreio/cosim/axi_master.hpp"
#include "coreio/cosim/model.hpp"
#include "coreio/cosim/sim.hpp"
#include "coreio/cosim/slave.hpp"

namespace coreio::cosim {

struct BridgeOptions {
    unsigned rid = 0;                   // the range this bridge answers (IRQs are sent for it)
    unsigned mid = 0, sid = 0;          // IOMMU ids of the master's DMA (0/0 = guest-physical)
    std::uint64_t base = 0;             // the range's guest-physical base, subtracted from MMIO addresses
    std::uint64_t range_size = 0;       // the range's size; 0 = unknown (see addr_bits)
    unsigned addr_bits = 12;            // the design's address width. With range_size known, an access
                                        // outside the range or beyond this width is a bus error; without,
                                        // the bus address is the offset's low addr_bits bits
    unsigned reset_cycles = 4;          // cycles reset is held on RESET (and at start)
    std::uint64_t idle_per_access = 0;  // extra cycles clocked after every access
    SlaveOptions slave;                 // adapter settings
    TraceOptions trace;                 // waveform, opened before the initial reset
    LogFunction log;                    // one line per bus error/timeout; default: none
    std::function<void()> after_access; // called after each access and reset (e.g. to publish coverage)
};

/// The model's DMA through a coreio::Client (blocking transfers).
class ClientDma final : public DmaPort {
public:
    ClientDma(Client& client, unsigned mid, unsigned sid) : client_(client), mid_(mid), sid_(sid) {}
    int read(std::uint64_t addr, std::span<std::byte> out) override {
        return client_.dma_read(mid_, sid_, addr, out, 0);
    }
    int write(std::uint64_t addr, std::span<const std::byte> in) override {
        return client_.dma_write(mid_, sid_, addr, in, 0);
    }

private:
    Client& client_;
    unsigned mid_, sid_;
};

class Bridge final : public MmioHandler {
public:
    /// Receives each IRQ line change (line 0..7, level).
    using IrqSink = std::function<void(unsigned line, bool level)>;

    /// Wraps `model` (not owned). `dma` (not owned) serves the master port and
    /// may be null for models without one. Opens the waveform, if any (throws
    /// std::runtime_error when it cannot), then applies reset once.
    Bridge(Model& model, BridgeOptions options, IrqSink irq, DmaPort* dma);
    ~Bridge() override;
    Bridge(const Bridge&) = delete;
    Bridge& operator=(const Bridge&) = delete;

    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override;
    /// A write with every byte enabled.
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override;
    /// A write whose bus strobes follow the wire's byte mask. A mask of 0 (a VM
    /// that does not fill it in) enables every byte of the access.
    int write_masked(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags,
                     std::uint32_t byte_mask) override;
    /// RESET from the VM: model reset held for reset_cycles.
    void reset() override;

    /// Clocks `cycles` idle cycles (IRQ changes go out as they happen).
    void run_idle(std::uint64_t cycles) { sim_.run(cycles); }
    Sim& sim() { return sim_; }
    /// The range this bridge answers.
    unsigned rid() const { return opt_.rid; }
    /// The slave adapter (null when the model has no slave port).
    SlaveAdapter* slave() { return slave_.get(); }
    AxiMasterAdapter* master() { return master_.get(); }
    /// MMIO accesses answered, and how many ended in a bus error.
    std::uint64_t accesses() const { return accesses_; }
    std::uint64_t bus_errors() const { return bus_errors_; }

private:
    /// The bus address of [addr, addr + len), or nullopt when it lies outside
    /// the range or beyond the design's address width (range_size known).
    std::optional<std::uint64_t> bus_addr(std::uint64_t addr, std::size_t len) const;
    int finish(BusStatus s, std::uint64_t addr, const char* what);

    Model& model_;
    BridgeOptions opt_;
    IrqSink irq_;
    Sim sim_;
    std::unique_ptr<SlaveAdapter> slave_;
    std::unique_ptr<AxiMasterAdapter> master_;
    std::uint64_t accesses_ = 0, bus_errors_ = 0;
};

/// How serve() clocks the model between accesses.
struct ServeOptions {
    std::uint64_t idle_rate = 1000000;  // idle cycles per wall-clock second (0 = frozen)
};

/// Runs `client`'s loop for `bridge` until the connection ends or `stop` is
/// set: idle cycles are paced to idle_rate in 1 ms slices (a backlog over
/// 100 ms is dropped), MMIO is served between slices. Sends the IRQ levels
/// present at start. Returns 0 when stopped, else the client's error.
int serve(Client& client, Bridge& bridge, const ServeOptions& options, const std::atomic<bool>& stop);

}  // namespace coreio::cosim
