// AxiMasterAdapter: answers the model's AXI4 master port from guest memory.
// Read bursts become one DMA read of the bytes they span; write bursts are
// collected beat by beat and their strobed bytes written as contiguous DMA
// runs. INCR bursts of up to 256 beats, narrow and unaligned transfers;
// a DMA fault answers SLVERR, a FIXED or WRAP burst answers SLVERR unserved.
// The DMA is blocking: the model's clock does not advance while the VM
// answers, so cycle counts do not depend on the VM's latency.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "coreio/cosim/ports.hpp"
#include "coreio/cosim/sim.hpp"

namespace coreio::cosim {

/// Where the master's bursts go (guest memory through CoreIO DMA, or a test double).
class DmaPort {
public:
    virtual ~DmaPort() = default;
    /// Returns 0 or a negative errno (-EFAULT on a DMA fault).
    virtual int read(std::uint64_t addr, std::span<std::byte> out) = 0;
    virtual int write(std::uint64_t addr, std::span<const std::byte> in) = 0;
};

class AxiMasterAdapter final : public Agent {
public:
    /// Serves `pins` (the model's master port) from `dma`; registers with `sim`.
    AxiMasterAdapter(Sim& sim, const Axi4Pins& pins, DmaPort& dma);
    ~AxiMasterAdapter() override;
    AxiMasterAdapter(const AxiMasterAdapter&) = delete;
    AxiMasterAdapter& operator=(const AxiMasterAdapter&) = delete;

    void before_edge() override;
    void after_edge() override;
    void on_reset() override;

    /// Bursts served so far (reads, writes), and DMA faults seen.
    std::uint64_t read_bursts() const { return read_bursts_; }
    std::uint64_t write_bursts() const { return write_bursts_; }
    std::uint64_t faults() const { return faults_; }

private:
    static constexpr std::size_t kMaxBurstBytes = 256 * 8;  // 256 beats of 64 bits

    void start_read();
    void finish_write();
    std::uint64_t beat_addr(std::uint64_t addr, unsigned size, unsigned beat) const;

    Sim& sim_;
    Axi4Pins p_;
    DmaPort& dma_;
    unsigned bus_bytes_;  // RDATA width

    // Read channel: one burst at a time.
    bool ar_hs_ = false;  // AR handshake at this edge
    bool r_hs_ = false;   // R beat taken at this edge
    bool r_active_ = false;
    std::uint64_t r_addr_ = 0, r_id_ = 0;
    unsigned r_size_ = 0, r_beats_ = 0, r_beat_ = 0, r_resp_ = 0;
    std::uint64_t r_base_ = 0;  // guest address of r_buf_[0]
    std::array<std::byte, kMaxBurstBytes + 8> r_buf_{};

    // Write channel: address first, then the beats, then B.
    bool aw_hs_ = false, w_hs_ = false, b_hs_ = false;
    bool w_active_ = false;  // address taken, collecting beats
    bool b_pending_ = false;
    std::uint64_t w_addr_ = 0, w_id_ = 0;
    unsigned w_size_ = 0, w_beats_ = 0, w_beat_ = 0, w_resp_ = 0;
    std::uint64_t w_data_ = 0, w_strb_ = 0;  // beat sampled at this edge
    std::uint64_t w_base_ = 0;
    std::array<std::byte, kMaxBurstBytes + 8> w_buf_{};
    std::array<bool, kMaxBurstBytes + 8> w_valid_{};

    std::uint64_t read_bursts_ = 0, write_bursts_ = 0, faults_ = 0;
};

}  // namespace coreio::cosim
