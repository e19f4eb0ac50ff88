// Bus protocol checkers: agents that sample a port every cycle (the values the
// rising edge sees) and record each broken handshake rule with its cycle.
// Tests attach one to every adapter and expect no violation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coreio/cosim/ports.hpp"
#include "coreio/cosim/sim.hpp"

namespace coreio::cosim {

/// Common part: registration with the Sim and the violation list.
class ProtocolChecker : public Agent {
public:
    ~ProtocolChecker() override;
    ProtocolChecker(const ProtocolChecker&) = delete;
    ProtocolChecker& operator=(const ProtocolChecker&) = delete;
    /// Every rule broken so far ("cycle N: what"), at most 100.
    const std::vector<std::string>& violations() const { return violations_; }
    /// Cycles sampled.
    std::uint64_t cycles_checked() const { return checked_; }

protected:
    explicit ProtocolChecker(Sim& sim);
    void fail(const std::string& what);
    Sim& sim_;
    std::uint64_t checked_ = 0;

private:
    std::vector<std::string> violations_;
};

/// A VALID/READY channel: once VALID is up without READY, VALID must stay up
/// and the payload must not change until the handshake.
class ChannelRule {
public:
    ChannelRule(const char* name, Signal valid, Signal ready, std::vector<Signal> payload);
    /// Checks this cycle; returns true on a handshake.
    bool check(ProtocolChecker& owner, std::string& error);
    void reset() { pending_ = false; }

private:
    const char* name_;
    Signal valid_, ready_;
    std::vector<Signal> payload_;
    std::vector<std::uint64_t> held_;  // payload when VALID first waited
    bool pending_ = false;            // VALID was up without READY last cycle
};

/// APB: a one-cycle setup phase (PSEL without PENABLE) before every access
/// phase, PENABLE only with PSEL, stable address/control/data until PREADY.
class ApbChecker final : public ProtocolChecker {
public:
    ApbChecker(Sim& sim, const ApbPins& pins);
    void before_edge() override;
    void on_reset() override { phase_ = Phase::Idle; }

private:
    enum class Phase { Idle, Setup, Wait };
    void hold();
    bool held_changed() const;
    ApbPins p_;
    Phase phase_ = Phase::Idle;
    std::uint64_t held_[5]{};  // paddr, pwrite, pwdata, pstrb, pprot
};

/// AXI4-Lite: the VALID/READY rule on all five channels; a B response no
/// earlier than the edge that takes the last of AW and W, an R no earlier than
/// the edge that takes AR.
class AxiLiteChecker final : public ProtocolChecker {
public:
    AxiLiteChecker(Sim& sim, const AxiLitePins& pins);
    void before_edge() override;
    void on_reset() override;

private:
    AxiLitePins p_;
    ChannelRule aw_, w_, b_, ar_, r_;
    std::uint64_t n_aw_ = 0, n_w_ = 0, n_b_ = 0, n_ar_ = 0, n_r_ = 0;
};

/// Wishbone: STB only within CYC, ACK/ERR only within CYC and never both,
/// request held stable (classic: until ACK/ERR; pipelined: while STALL),
/// no more responses than requests.
class WishboneChecker final : public ProtocolChecker {
public:
    WishboneChecker(Sim& sim, const WishbonePins& pins, bool pipelined);
    void before_edge() override;
    void on_reset() override;

private:
    void hold();
    bool held_changed() const;
    WishbonePins p_;
    bool pipelined_;
    bool pending_ = false;  // a request waited last cycle
    std::uint64_t outstanding_ = 0;
    std::uint64_t held_[4]{};  // adr, we, dat_w, sel
};

/// AXI4 (the model's master port): the VALID/READY rule on all channels,
/// bursts that do not cross 4 KiB, sizes within the bus, WLAST/RLAST on the
/// last beat, responses only for bursts that were issued.
class Axi4Checker final : public ProtocolChecker {
public:
    Axi4Checker(Sim& sim, const Axi4Pins& pins);
    void before_edge() override;
    void on_reset() override;

private:
    void check_burst(const char* ch, std::uint64_t addr, std::uint64_t len, std::uint64_t size);
    Axi4Pins p_;
    ChannelRule aw_, w_, b_, ar_, r_;
    std::vector<unsigned> w_lens_;   // beats of accepted write bursts awaiting data
    std::vector<unsigned> r_lens_;   // beats of accepted read bursts awaiting data
    unsigned w_beat_ = 0, r_beat_ = 0;
    std::uint64_t writes_done_ = 0, b_seen_ = 0;
};

}  // namespace coreio::cosim
