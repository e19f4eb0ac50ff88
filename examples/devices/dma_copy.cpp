#include "dma_copy.hpp"

#include <cstdio>
#include <cstdlib>

namespace coreio::examples {

namespace {
constexpr std::uint64_t kOffsetMask = 0xfff;  // ranges are 4 KiB aligned: the low bits are the offset
}

DmaCopy::DmaCopy(replayer::DeviceHost& host, Options options) : host_(host), options_(options) {}

std::uint32_t DmaCopy::read_reg(unsigned index) const {
    switch (index * 4) {
    case kId: return kIdValue;
    case kSrc: return static_cast<std::uint32_t>(src_);
    case kSrc + 4: return static_cast<std::uint32_t>(src_ >> 32);
    case kDst: return static_cast<std::uint32_t>(dst_);
    case kDst + 4: return static_cast<std::uint32_t>(dst_ >> 32);
    case kLen: return len_;
    case kCtrl: return ctrl_ & ~kCtrlStart;
    case kStatus: return status_;
    case kCopied: return copied_;
    case kCount: return count_;
    default: return 0;
    }
}

void DmaCopy::write_reg(unsigned index, std::uint32_t value, std::uint32_t byte_mask) {
    auto merge32 = [&](std::uint32_t old) { return (old & ~byte_mask) | (value & byte_mask); };
    auto merge_half = [&](std::uint64_t old, unsigned shift) {
        const std::uint64_t m = std::uint64_t{byte_mask} << shift;
        return (old & ~m) | ((std::uint64_t{value} << shift) & m);
    };
    switch (index * 4) {
    case kSrc: src_ = merge_half(src_, 0); break;
    case kSrc + 4: src_ = merge_half(src_, 32); break;
    case kDst: dst_ = merge_half(dst_, 0); break;
    case kDst + 4: dst_ = merge_half(dst_, 32); break;
    case kLen: len_ = merge32(len_); break;
    case kCtrl:
        ctrl_ = merge32(ctrl_) & (kCtrlStart | kCtrlIrqEn);
        if (ctrl_ & kCtrlStart) {
            ctrl_ &= ~kCtrlStart;
            start();
        }
        break;
    case kStatus: status_ &= ~(value & byte_mask); break;  // write 1 to clear
    default: break;                                        // read-only
    }
}

void DmaCopy::start() {
    ++count_;
    status_ &= ~(kStatusDone | kStatusError);
    if (len_ > kMaxLen && !options_.seeded_bug) {  // the seeded bug skips this check
        status_ |= kStatusError;
        copied_ = 0;
        return;
    }
    copied_ = copy(len_);
    status_ |= copied_ == len_ ? kStatusDone : kStatusError;
}

std::uint32_t DmaCopy::copy(std::uint32_t len) {
    if (len > kMaxLen) {  // the engine's invariant: never past the bounce buffer
        std::fprintf(stderr, "dma_copy: internal check failed: len %u > %u\n", static_cast<unsigned>(len),
                     static_cast<unsigned>(kMaxLen));
        std::abort();
    }
    if (len == 0) return 0;
    const std::span<std::byte> buf(bounce_.data(), len);
    if (host_.dma_read(0, 0, src_, buf, 0) != 0) return 0;
    if (host_.dma_write(0, 0, dst_, buf, 0) != 0) return 0;
    return len;
}

void DmaCopy::update_irq() {
    const bool level = (status_ & (kStatusDone | kStatusError)) && (ctrl_ & kCtrlIrqEn);
    if (level == irq_) return;
    irq_ = level;
    host_.irq_update(options_.rid, 0, level);
}

int DmaCopy::read(std::uint64_t addr, std::size_t len, void* buf, unsigned) {
    const std::uint64_t off = addr & kOffsetMask;
    if (off + len > kSize) return 1;  // outside the register map: bus error
    auto* out = static_cast<std::uint8_t*>(buf);
    for (std::size_t i = 0; i < len; ++i) {
        const std::uint64_t b = off + i;
        out[i] = static_cast<std::uint8_t>(read_reg(static_cast<unsigned>(b / 4)) >> (8 * (b % 4)));
    }
    return 0;
}

int DmaCopy::write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) {
    const std::uint64_t off = addr & kOffsetMask;
    if (off + len > kSize) return 1;
    const auto* in = static_cast<const std::uint8_t*>(buf);
    std::size_t i = 0;
    while (i < len) {  // one write_reg per register touched, low register first
        const unsigned index = static_cast<unsigned>((off + i) / 4);
        std::uint32_t value = 0, mask = 0;
        for (; i < len && (off + i) / 4 == index; ++i) {
            const unsigned shift = static_cast<unsigned>(8 * ((off + i) % 4));
            value |= std::uint32_t{in[i]} << shift;
            mask |= 0xffu << shift;
        }
        write_reg(index, value, mask);
    }
    update_irq();
    return 0;
}

void DmaCopy::reset() {
    src_ = dst_ = 0;
    len_ = ctrl_ = status_ = copied_ = count_ = 0;
    update_irq();
}

replayer::DeviceFactory dma_copy_factory(DmaCopy::Options options) {
    return [options](replayer::DeviceHost& host) -> std::unique_ptr<replayer::Device> {
        return std::make_unique<replayer::SingleRangeDevice<DmaCopy>>(options.rid,
                                                                     std::make_unique<DmaCopy>(host, options));
    };
}

}  // namespace coreio::examples
