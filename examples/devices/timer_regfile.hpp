// Example device model: a register file with a countdown timer that raises an
// IRQ, written as a coreio::MmioHandler. Deterministic by design: the timer
// ticks once per MMIO access, not by wall-clock time, so a replayed trace sees
// its IRQ at the same access. One register (CYCLES) is a free-running
// wall-clock counter on purpose: the field a replay must be told to ignore.
//
// Register map (offsets within the range; 32-bit registers; any access of
// 1..8 bytes inside 0x00..0x3f works byte-wise, anything else is a bus error):
//   0x00 ID      RO  0x434f5431 ("COT1")
//   0x04 CTRL    RW  bit0 ENABLE, bit1 IRQ_EN, bit2 PERIODIC
//   0x08 LOAD    RW  countdown start value, in ticks (MMIO accesses)
//   0x0c COUNT   RO  ticks left; reaching 0 sets STATUS.EXPIRED
//   0x10 STATUS  W1C bit0 EXPIRED
//   0x14 CYCLES  RO  free-running counter (microseconds of wall-clock time)
//   0x18 TICKS   RO  accesses seen since reset
//   0x1c -       RO  0
//   0x20..0x3c REG[0..7]  RW scratch registers
// IRQ line 0 = STATUS.EXPIRED && CTRL.IRQ_EN. RESET clears every register and
// lowers the line.
//
// Seeded bug (Options::seeded_bug): RESET forgets STATUS while the timer runs
// periodic with its IRQ enabled, so the line stays high across a reset. The
// fuzzer's built-in "IRQ stuck high after reset" check finds it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "coreio/client.hpp"
#include "coreio/replayer/device.hpp"

namespace coreio::examples {

class TimerRegfile final : public MmioHandler {
public:
    struct Options {
        unsigned rid = 0;          // range this model serves (its IRQ goes to this rid)
        bool seeded_bug = false;   // enable the seeded bug (tests and fuzzing demos)
    };
    /// Register offsets.
    enum : std::uint32_t {
        kId = 0x00, kCtrl = 0x04, kLoad = 0x08, kCount = 0x0c, kStatus = 0x10, kCycles = 0x14, kTicks = 0x18,
        kRegs = 0x20, kSize = 0x40,
    };
    static constexpr std::uint32_t kIdValue = 0x434f5431;
    static constexpr std::uint32_t kCtrlEnable = 1, kCtrlIrqEn = 2, kCtrlPeriodic = 4;
    static constexpr std::uint32_t kStatusExpired = 1;

    /// Raises its IRQ through `host` (not owned, must outlive the model).
    TimerRegfile(replayer::DeviceHost& host, Options options);

    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override;
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override;
    void reset() override;

private:
    static constexpr unsigned kNumRegs = kSize / 4;
    std::uint32_t read_reg(unsigned index);
    void write_reg(unsigned index, std::uint32_t value, std::uint32_t byte_mask);
    void tick();
    void update_irq();

    replayer::DeviceHost& host_;
    Options options_;
    std::uint32_t ctrl_ = 0, load_ = 0, count_ = 0, status_ = 0, ticks_ = 0;
    std::array<std::uint32_t, 8> regs_{};          // scratch registers
    bool irq_ = false;                              // level last sent
    std::chrono::steady_clock::time_point epoch_;   // CYCLES counts from here
};

/// A replayer::DeviceFactory building a TimerRegfile on `options.rid`.
replayer::DeviceFactory timer_regfile_factory(TimerRegfile::Options options = {});

}  // namespace coreio::examples
