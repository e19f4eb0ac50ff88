#include "coreio/cosim/checkers.hpp"

#include <algorithm>

namespace coreio::cosim {

ProtocolChecker::ProtocolChecker(Sim& sim) : sim_(sim) { sim_.add_agent(*this); }

ProtocolChecker::~ProtocolChecker() { sim_.remove_agent(*this); }

void ProtocolChecker::fail(const std::string& what) {
    if (violations_.size() < 100) violations_.push_back("cycle " + std::to_string(sim_.cycles()) + ": " + what);
}

ChannelRule::ChannelRule(const char* name, Signal valid, Signal ready, std::vector<Signal> payload)
    : name_(name), valid_(valid), ready_(ready), payload_(std::move(payload)), held_(payload_.size()) {}

bool ChannelRule::check(ProtocolChecker& /*owner*/, std::string& error) {
    if (!valid_.bound()) return false;
    const bool v = valid_.get() != 0;
    const bool r = ready_.get() != 0;
    if (pending_) {
        if (!v) {
            error = std::string(name_) + ": VALID dropped before READY";
        } else {
            for (std::size_t i = 0; i < payload_.size(); ++i)
                if (payload_[i].get() != held_[i]) {
                    error = std::string(name_) + ": payload changed while VALID waited for READY";
                    break;
                }
        }
    }
    const bool was_pending = pending_;
    pending_ = v && !r;
    if (pending_ && !was_pending)
        for (std::size_t i = 0; i < payload_.size(); ++i) held_[i] = payload_[i].get();
    return v && r;
}

// ---- APB ----

ApbChecker::ApbChecker(Sim& sim, const ApbPins& pins) : ProtocolChecker(sim), p_(pins) {}

void ApbChecker::hold() {
    held_[0] = p_.paddr.get();
    held_[1] = p_.pwrite.get();
    held_[2] = p_.pwdata.get();
    held_[3] = p_.pstrb.get();
    held_[4] = p_.pprot.get();
}

bool ApbChecker::held_changed() const {
    return held_[0] != p_.paddr.get() || held_[1] != p_.pwrite.get() || held_[2] != p_.pwdata.get() ||
           held_[3] != p_.pstrb.get() || held_[4] != p_.pprot.get();
}

void ApbChecker::before_edge() {
    ++checked_;
    const bool sel = p_.psel.get() != 0;
    const bool en = p_.penable.get() != 0;
    const bool ready = !p_.pready.bound() || p_.pready.get() != 0;
    if (en && !sel) fail("APB: PENABLE without PSEL");
    if (sel && en) {
        if (phase_ == Phase::Idle) fail("APB: access phase without a setup cycle");
        else if (held_changed()) fail("APB: PADDR/PWRITE/PWDATA/PSTRB/PPROT changed during the transfer");
    } else if (sel) {
        if (phase_ == Phase::Setup) fail("APB: setup phase longer than one cycle");
        if (phase_ == Phase::Wait) fail("APB: PENABLE dropped before PREADY");
    } else if (phase_ != Phase::Idle) {
        fail("APB: PSEL dropped before the transfer completed");
    }
    if (sel && !en) {
        phase_ = Phase::Setup;
        hold();
    } else if (sel && en && !ready) {
        phase_ = Phase::Wait;
    } else {
        phase_ = Phase::Idle;
    }
}

// ---- AXI4-Lite ----

AxiLiteChecker::AxiLiteChecker(Sim& sim, const AxiLitePins& p)
    : ProtocolChecker(sim),
      p_(p),
      aw_("AW", p.awvalid, p.awready, {p.awaddr, p.awprot}),
      w_("W", p.wvalid, p.wready, {p.wdata, p.wstrb}),
      b_("B", p.bvalid, p.bready, {p.bresp}),
      ar_("AR", p.arvalid, p.arready, {p.araddr, p.arprot}),
      r_("R", p.rvalid, p.rready, {p.rdata, p.rresp}) {}

void AxiLiteChecker::on_reset() {
    aw_.reset(), w_.reset(), b_.reset(), ar_.reset(), r_.reset();
    n_aw_ = n_w_ = n_b_ = n_ar_ = n_r_ = 0;
}

void AxiLiteChecker::before_edge() {
    ++checked_;
    std::string e;
    const bool aw = aw_.check(*this, e);
    if (!e.empty()) fail("AXI-Lite " + e), e.clear();
    const bool w = w_.check(*this, e);
    if (!e.empty()) fail("AXI-Lite " + e), e.clear();
    const bool b = b_.check(*this, e);
    if (!e.empty()) fail("AXI-Lite " + e), e.clear();
    const bool ar = ar_.check(*this, e);
    if (!e.empty()) fail("AXI-Lite " + e), e.clear();
    const bool r = r_.check(*this, e);
    if (!e.empty()) fail("AXI-Lite " + e), e.clear();
    // A response may come at the earliest with the handshake of its request
    // (registered-output slaves raise BVALID together with AWREADY/WREADY).
    n_aw_ += aw, n_w_ += w, n_ar_ += ar;
    if (p_.bvalid.get() && std::min(n_aw_, n_w_) <= n_b_) fail("AXI-Lite: BVALID before both AW and W were taken");
    if (p_.rvalid.get() && n_ar_ <= n_r_) fail("AXI-Lite: RVALID before AR was taken");
    n_b_ += b, n_r_ += r;
}

// ---- Wishbone ----

WishboneChecker::WishboneChecker(Sim& sim, const WishbonePins& pins, bool pipelined)
    : ProtocolChecker(sim), p_(pins), pipelined_(pipelined) {}

void WishboneChecker::on_reset() {
    pending_ = false;
    outstanding_ = 0;
}

void WishboneChecker::hold() {
    held_[0] = p_.adr.get();
    held_[1] = p_.we.get();
    held_[2] = p_.dat_w.get();
    held_[3] = p_.sel.get();
}

bool WishboneChecker::held_changed() const {
    return held_[0] != p_.adr.get() || held_[1] != p_.we.get() || held_[2] != p_.dat_w.get() ||
           held_[3] != p_.sel.get();
}

void WishboneChecker::before_edge() {
    ++checked_;
    const bool cyc = p_.cyc.get() != 0, stb = p_.stb.get() != 0;
    const bool ack = p_.ack.get() != 0, err = p_.err.get() != 0, stall = p_.stall.get() != 0;
    if (stb && !cyc) fail("Wishbone: STB without CYC");
    if ((ack || err) && !cyc) fail("Wishbone: ACK/ERR outside a bus cycle");
    if (ack && err) fail("Wishbone: ACK and ERR together");
    if (pending_) {
        if (!stb) fail(pipelined_ ? "Wishbone: STB dropped while STALL" : "Wishbone: STB dropped before ACK/ERR");
        else if (held_changed()) fail("Wishbone: request changed before it was taken");
    }
    if (pipelined_) {
        const bool taken = cyc && stb && !stall;
        if ((ack || err) && outstanding_ == 0 && !taken) fail("Wishbone: response without a request");
        if (taken) ++outstanding_;
        if ((ack || err) && outstanding_ > 0) --outstanding_;
        pending_ = cyc && stb && stall;
    } else {
        pending_ = cyc && stb && !ack && !err;
    }
    if (pending_) hold();
    if (!cyc) outstanding_ = 0;
}

// ---- AXI4 ----

Axi4Checker::Axi4Checker(Sim& sim, const Axi4Pins& p)
    : ProtocolChecker(sim),
      p_(p),
      aw_("AW", p.awvalid, p.awready, {p.awaddr, p.awlen, p.awsize, p.awburst, p.awid}),
      w_("W", p.wvalid, p.wready, {p.wdata, p.wstrb, p.wlast}),
      b_("B", p.bvalid, p.bready, {p.bresp, p.bid}),
      ar_("AR", p.arvalid, p.arready, {p.araddr, p.arlen, p.arsize, p.arburst, p.arid}),
      r_("R", p.rvalid, p.rready, {p.rdata, p.rresp, p.rlast, p.rid}) {}

void Axi4Checker::on_reset() {
    aw_.reset(), w_.reset(), b_.reset(), ar_.reset(), r_.reset();
    w_lens_.clear(), r_lens_.clear();
    w_beat_ = r_beat_ = 0;
    writes_done_ = b_seen_ = 0;
}

void Axi4Checker::check_burst(const char* ch, std::uint64_t addr, std::uint64_t len, std::uint64_t size) {
    const std::uint64_t bytes = 1ull << size;
    if (bytes > p_.wdata.bytes()) fail(std::string("AXI4 ") + ch + ": size wider than the data bus");
    const std::uint64_t last = (addr & ~(bytes - 1)) + (len + 1) * bytes - 1;
    if ((addr >> 12) != (last >> 12)) fail(std::string("AXI4 ") + ch + ": burst crosses a 4 KiB boundary");
}

void Axi4Checker::before_edge() {
    ++checked_;
    std::string e;
    auto rule = [&](ChannelRule& c) {
        const bool hs = c.check(*this, e);
        if (!e.empty()) fail("AXI4 " + e), e.clear();
        return hs;
    };
    if (rule(aw_)) {
        check_burst("AW", p_.awaddr.get(), p_.awlen.get(), p_.awsize.get());
        w_lens_.push_back(static_cast<unsigned>(p_.awlen.get()) + 1);
    }
    if (rule(w_)) {
        if (w_lens_.empty()) {
            // Data before its address is legal AXI; this adapter never accepts it.
            fail("AXI4 W: beat taken before its burst's address");
        } else {
            const bool last = ++w_beat_ == w_lens_.front();
            if (last != (p_.wlast.get() != 0)) fail("AXI4 W: WLAST not on the burst's last beat");
            if (last) {
                w_lens_.erase(w_lens_.begin());
                w_beat_ = 0;
                ++writes_done_;
            }
        }
    }
    if (rule(b_)) {
        if (b_seen_ >= writes_done_) fail("AXI4 B: response before the burst's last beat");
        ++b_seen_;
    }
    if (rule(ar_)) {
        check_burst("AR", p_.araddr.get(), p_.arlen.get(), p_.arsize.get());
        r_lens_.push_back(static_cast<unsigned>(p_.arlen.get()) + 1);
    }
    if (rule(r_)) {
        if (r_lens_.empty()) {
            fail("AXI4 R: beat without a read burst");
        } else {
            const bool last = ++r_beat_ == r_lens_.front();
            if (last != (p_.rlast.get() != 0)) fail("AXI4 R: RLAST not on the burst's last beat");
            if (last) {
                r_lens_.erase(r_lens_.begin());
                r_beat_ = 0;
            }
        }
    }
}

}  // namespace coreio::cosim
