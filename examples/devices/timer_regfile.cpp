#include "timer_regfile.hpp"

#include <cstring>

namespace coreio::examples {

namespace {
constexpr std::uint64_t kOffsetMask = 0xfff;  // ranges are 4 KiB aligned: the low bits are the offset
}

TimerRegfile::TimerRegfile(replayer::DeviceHost& host, Options options)
    : host_(host), options_(options), epoch_(std::chrono::steady_clock::now()) {}

std::uint32_t TimerRegfile::read_reg(unsigned index) {
    switch (index * 4) {
    case kId: return kIdValue;
    case kCtrl: return ctrl_;
    case kLoad: return load_;
    case kCount: return count_;
    case kStatus: return status_;
    case kCycles:
        return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::steady_clock::now() - epoch_)
                                              .count());
    case kTicks: return ticks_;
    default: break;
    }
    if (index * 4 >= kRegs) return regs_[index - kRegs / 4];
    return 0;
}

void TimerRegfile::write_reg(unsigned index, std::uint32_t value, std::uint32_t byte_mask) {
    auto merge = [&](std::uint32_t old) { return (old & ~byte_mask) | (value & byte_mask); };
    switch (index * 4) {
    case kCtrl: {
        const bool was_enabled = ctrl_ & kCtrlEnable;
        ctrl_ = merge(ctrl_) & 7;
        if (!was_enabled && (ctrl_ & kCtrlEnable)) count_ = load_;  // start counting from LOAD
        break;
    }
    case kLoad: load_ = merge(load_); break;
    case kStatus: status_ &= ~(value & byte_mask); break;  // write 1 to clear
    default:
        if (index * 4 >= kRegs) regs_[index - kRegs / 4] = merge(regs_[index - kRegs / 4]);
        break;  // read-only registers ignore writes
    }
}

void TimerRegfile::tick() {
    ++ticks_;
    if (!(ctrl_ & kCtrlEnable)) return;
    if (count_ > 0) --count_;
    if (count_ == 0) {
        status_ |= kStatusExpired;
        if (ctrl_ & kCtrlPeriodic)
            count_ = load_;
        else
            ctrl_ &= ~kCtrlEnable;
    }
}

void TimerRegfile::update_irq() {
    const bool level = (status_ & kStatusExpired) && (ctrl_ & kCtrlIrqEn);
    if (level == irq_) return;
    irq_ = level;
    host_.irq_update(options_.rid, 0, level);
}

int TimerRegfile::read(std::uint64_t addr, std::size_t len, void* buf, unsigned) {
    const std::uint64_t off = addr & kOffsetMask;
    if (off + len > kSize) return 1;  // outside the register map: bus error
    auto* out = static_cast<std::uint8_t*>(buf);
    for (std::size_t i = 0; i < len; ++i) {
        const std::uint64_t b = off + i;
        out[i] = static_cast<std::uint8_t>(read_reg(static_cast<unsigned>(b / 4)) >> (8 * (b % 4)));
    }
    tick();
    update_irq();
    return 0;
}

int TimerRegfile::write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) {
    const std::uint64_t off = addr & kOffsetMask;
    if (off + len > kSize) return 1;
    const auto* in = static_cast<const std::uint8_t*>(buf);
    // Gather the bytes per register first so each register sees one write.
    std::size_t i = 0;
    while (i < len) {
        const unsigned index = static_cast<unsigned>((off + i) / 4);
        std::uint32_t value = 0, mask = 0;
        for (; i < len && (off + i) / 4 == index; ++i) {
            const unsigned shift = static_cast<unsigned>(8 * ((off + i) % 4));
            value |= std::uint32_t{in[i]} << shift;
            mask |= 0xffu << shift;
        }
        write_reg(index, value, mask);
    }
    tick();
    update_irq();
    return 0;
}

void TimerRegfile::reset() {
    const bool keep_status = options_.seeded_bug && (ctrl_ & 7) == 7;  // the seeded bug
    ctrl_ = keep_status ? kCtrlIrqEn : 0;
    load_ = count_ = ticks_ = 0;
    if (!keep_status) status_ = 0;
    regs_.fill(0);
    update_irq();
}

replayer::DeviceFactory timer_regfile_factory(TimerRegfile::Options options) {
    return [options](replayer::DeviceHost& host) -> std::unique_ptr<replayer::Device> {
        return std::make_unique<replayer::SingleRangeDevice<TimerRegfile>>(
            options.rid, std::make_unique<TimerRegfile>(host, options));
    };
}

}  // namespace coreio::examples
