#include "coreio/cosim/axi_master.hpp"

#include <algorithm>

namespace coreio::cosim {

namespace {
constexpr unsigned kRespOkay = 0;
constexpr unsigned kRespSlvErr = 2;
constexpr std::uint64_t kBurstIncr = 1;
}  // namespace

AxiMasterAdapter::AxiMasterAdapter(Sim& sim, const Axi4Pins& pins, DmaPort& dma)
    : sim_(sim), p_(pins), dma_(dma), bus_bytes_(pins.rdata.bytes() ? pins.rdata.bytes() : 8) {
    on_reset();
    sim_.add_agent(*this);
}

AxiMasterAdapter::~AxiMasterAdapter() { sim_.remove_agent(*this); }

void AxiMasterAdapter::on_reset() {
    ar_hs_ = r_hs_ = aw_hs_ = w_hs_ = b_hs_ = false;
    r_active_ = w_active_ = b_pending_ = false;
    p_.arready.set(1);
    p_.rvalid.set(0);
    p_.rlast.set(0);
    p_.awready.set(1);
    p_.wready.set(0);
    p_.bvalid.set(0);
}

std::uint64_t AxiMasterAdapter::beat_addr(std::uint64_t addr, unsigned size, unsigned beat) const {
    if (beat == 0) return addr;
    return (addr & ~std::uint64_t{size - 1}) + std::uint64_t{beat} * size;
}

void AxiMasterAdapter::before_edge() {
    ar_hs_ = !r_active_ && p_.arvalid.get() != 0;
    if (ar_hs_) {
        r_addr_ = p_.araddr.get();
        r_beats_ = static_cast<unsigned>(p_.arlen.get() & 0xff) + 1;
        r_size_ = 1u << (p_.arsize.get() & 7);
        r_id_ = p_.arid.get();
        // An unbound ARBURST means the model only issues INCR bursts.
        r_resp_ = (p_.arburst.bound() && p_.arburst.get() != kBurstIncr) || r_size_ > bus_bytes_ ? kRespSlvErr
                                                                                                   : kRespOkay;
    }
    r_hs_ = r_active_ && p_.rready.get() != 0;
    aw_hs_ = !w_active_ && !b_pending_ && p_.awvalid.get() != 0;
    if (aw_hs_) {
        w_addr_ = p_.awaddr.get();
        w_beats_ = static_cast<unsigned>(p_.awlen.get() & 0xff) + 1;
        w_size_ = 1u << (p_.awsize.get() & 7);
        w_id_ = p_.awid.get();
        w_resp_ = (p_.awburst.bound() && p_.awburst.get() != kBurstIncr) || w_size_ > bus_bytes_ ? kRespSlvErr
                                                                                                 : kRespOkay;
    }
    w_hs_ = w_active_ && p_.wvalid.get() != 0;
    if (w_hs_) {
        w_data_ = p_.wdata.get();
        w_strb_ = p_.wstrb.get();
    }
    b_hs_ = b_pending_ && p_.bready.get() != 0;
}

void AxiMasterAdapter::start_read() {
    ++read_bursts_;
    r_active_ = true;
    r_beat_ = 0;
    r_base_ = r_addr_;
    if (r_resp_ != kRespOkay) {
        std::fill(r_buf_.begin(), r_buf_.end(), std::byte{0});
        return;
    }
    const std::uint64_t end = (r_addr_ & ~std::uint64_t{r_size_ - 1}) + std::uint64_t{r_beats_} * r_size_;
    const std::size_t len = static_cast<std::size_t>(end - r_addr_);
    if (dma_.read(r_addr_, std::span<std::byte>(r_buf_.data(), len)) != 0) {
        ++faults_;
        r_resp_ = kRespSlvErr;
        std::fill(r_buf_.begin(), r_buf_.end(), std::byte{0});
    }
}

void AxiMasterAdapter::finish_write() {
    ++write_bursts_;
    w_active_ = false;
    b_pending_ = true;
    if (w_resp_ != kRespOkay) return;
    const std::uint64_t end = (w_addr_ & ~std::uint64_t{w_size_ - 1}) + std::uint64_t{w_beats_} * w_size_;
    const std::size_t len = static_cast<std::size_t>(end - w_addr_);
    // One DMA per run of contiguous strobed bytes (a full burst is one run).
    std::size_t i = 0;
    while (i < len) {
        if (!w_valid_[i]) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < len && w_valid_[j]) ++j;
        if (dma_.write(w_base_ + i, std::span<const std::byte>(w_buf_.data() + i, j - i)) != 0) {
            ++faults_;
            w_resp_ = kRespSlvErr;
            return;
        }
        i = j;
    }
}

void AxiMasterAdapter::after_edge() {
    // Read channel.
    if (ar_hs_) start_read();
    if (r_hs_ && ++r_beat_ == r_beats_) r_active_ = false;
    p_.arready.set(r_active_ ? 0 : 1);
    p_.rvalid.set(r_active_ ? 1 : 0);
    if (r_active_) {
        const std::uint64_t ba = beat_addr(r_addr_, r_size_, r_beat_);
        const std::uint64_t bus_base = ba & ~std::uint64_t{bus_bytes_ - 1};
        const unsigned lo = static_cast<unsigned>(ba - bus_base);
        const unsigned hi = static_cast<unsigned>((ba & ~std::uint64_t{r_size_ - 1}) - bus_base) + r_size_;
        std::uint64_t data = 0;
        for (unsigned lane = lo; lane < hi && lane < bus_bytes_; ++lane)
            data |= std::uint64_t{static_cast<std::uint8_t>(r_buf_[bus_base + lane - r_base_])} << (8 * lane);
        p_.rdata.set(data);
        p_.rresp.set(r_resp_);
        p_.rlast.set(r_beat_ + 1 == r_beats_ ? 1 : 0);
        p_.rid.set(r_id_);
    } else {
        p_.rlast.set(0);
    }

    // Write channel.
    if (b_hs_) b_pending_ = false;
    if (aw_hs_) {
        w_active_ = true;
        w_beat_ = 0;
        w_base_ = w_addr_;
        std::fill(w_valid_.begin(), w_valid_.end(), false);
    }
    if (w_hs_) {
        const std::uint64_t ba = beat_addr(w_addr_, w_size_, w_beat_);
        const std::uint64_t bus_base = ba & ~std::uint64_t{bus_bytes_ - 1};
        const unsigned lo = static_cast<unsigned>(ba - bus_base);
        const unsigned hi = static_cast<unsigned>((ba & ~std::uint64_t{w_size_ - 1}) - bus_base) + w_size_;
        for (unsigned lane = lo; lane < hi && lane < bus_bytes_; ++lane) {
            if (!((w_strb_ >> lane) & 1)) continue;
            const std::size_t off = static_cast<std::size_t>(bus_base + lane - w_base_);
            w_buf_[off] = static_cast<std::byte>(w_data_ >> (8 * lane));
            w_valid_[off] = true;
        }
        if (++w_beat_ == w_beats_) finish_write();
    }
    p_.awready.set(!w_active_ && !b_pending_ ? 1 : 0);
    p_.wready.set(w_active_ ? 1 : 0);
    p_.bvalid.set(b_pending_ ? 1 : 0);
    if (b_pending_) {
        p_.bresp.set(w_resp_);
        p_.bid.set(w_id_);
    }
}

}  // namespace coreio::cosim
