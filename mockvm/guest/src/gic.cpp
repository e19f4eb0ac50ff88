#include "coreio/mockvm/guest/gic.hpp"

#include <algorithm>

namespace coreio::mockvm::guest {

namespace {

// Distributor register blocks: first offset of each (one bit per interrupt).
constexpr std::uint64_t kDistCtlr = 0x000, kDistTyper = 0x004, kDistIidr = 0x008;
constexpr std::uint64_t kIsenabler = 0x100, kIcenabler = 0x180, kIspendr = 0x200, kIcpendr = 0x280;
constexpr std::uint64_t kIsactiver = 0x300, kIcactiver = 0x380;
constexpr std::uint64_t kIpriorityr = 0x400, kItargetsr = 0x800, kIcfgr = 0xc00;
constexpr std::uint64_t kBitWords = kNumIntids / 32;  // words in each bit block
// CPU interface registers.
constexpr std::uint64_t kCpuCtlr = 0x00, kCpuPmr = 0x04, kCpuBpr = 0x08, kCpuIar = 0x0c, kCpuEoir = 0x10;
constexpr std::uint64_t kCpuRpr = 0x14, kCpuHppir = 0x18, kCpuIidr = 0xfc;
constexpr unsigned kIdlePriority = 0x100;  // running priority with nothing active

/// Which bit block `offset` falls in: its word index, or -1.
long bit_word(std::uint64_t offset, std::uint64_t block) {
    if (offset < block || offset >= block + 4 * kBitWords || offset % 4 != 0) return -1;
    return static_cast<long>((offset - block) / 4);
}

bool in_bytes(std::uint64_t offset, std::uint64_t block) { return offset >= block && offset < block + kNumIntids; }

}  // namespace

std::uint32_t Gic::read_bits(const Bits& bits, std::uint64_t word) const {
    std::uint32_t v = 0;
    for (unsigned i = 0; i < 32; ++i)
        if (bits[word * 32 + i]) v |= 1u << i;
    return v;
}

void Gic::set_bits(Bits& bits, std::uint64_t word, std::uint32_t value, bool to) {
    for (unsigned i = 0; i < 32; ++i)
        if (value & (1u << i)) bits[word * 32 + i] = to;
}

std::uint32_t Gic::read_bytes(const std::array<std::uint8_t, kNumIntids>& bytes, std::uint64_t first, unsigned size,
                              bool targets) const {
    std::uint32_t v = 0;
    for (unsigned i = 0; i < size && first + i < kNumIntids; ++i) {
        // SGI/PPI targets read as this CPU (bit 0), as on a one-CPU GIC.
        const std::uint8_t b = targets && first + i < kFirstDeviceIntid ? 1 : bytes[first + i];
        v |= std::uint32_t{b} << (8 * i);
    }
    return v;
}

std::uint32_t Gic::read_distributor(std::uint64_t offset, unsigned size) const {
    if (in_bytes(offset, kIpriorityr)) return read_bytes(priority_, offset - kIpriorityr, size, false);
    if (in_bytes(offset, kItargetsr)) return read_bytes(targets_, offset - kItargetsr, size, true);
    if (size != 4) return 0;
    if (offset == kDistCtlr) return distributor_ctlr_;
    if (offset == kDistTyper) return kBitWords - 1;  // ITLinesNumber; one CPU, no security extensions
    if (offset == kDistIidr) return 0x0200043b;      // ARM implementer code, GICv2
    if (const long w = bit_word(offset, kIsenabler); w >= 0) return read_bits(enabled_, w);
    if (const long w = bit_word(offset, kIcenabler); w >= 0) return read_bits(enabled_, w);
    if (const long w = bit_word(offset, kIspendr); w >= 0) return read_bits(latched_ | level_, w);
    if (const long w = bit_word(offset, kIcpendr); w >= 0) return read_bits(latched_ | level_, w);
    if (const long w = bit_word(offset, kIsactiver); w >= 0) return read_bits(active_, w);
    if (const long w = bit_word(offset, kIcactiver); w >= 0) return read_bits(active_, w);
    if (offset >= kIcfgr && offset < kIcfgr + 4 * config_.size()) return config_[(offset - kIcfgr) / 4];
    return 0;
}

void Gic::write_distributor(std::uint64_t offset, unsigned size, std::uint32_t value) {
    const bool priorities = in_bytes(offset, kIpriorityr), targets = in_bytes(offset, kItargetsr);
    if (priorities || targets) {
        auto& bytes = priorities ? priority_ : targets_;
        const std::uint64_t first = offset - (priorities ? kIpriorityr : kItargetsr);
        for (unsigned i = 0; i < size && first + i < kNumIntids; ++i)
            bytes[first + i] = static_cast<std::uint8_t>(value >> (8 * i));
        return;
    }
    if (size != 4) return;
    if (offset == kDistCtlr) distributor_ctlr_ = value & 1;
    if (const long w = bit_word(offset, kIsenabler); w >= 0) set_bits(enabled_, w, value, true);
    if (const long w = bit_word(offset, kIcenabler); w >= 0) set_bits(enabled_, w, value, false);
    if (const long w = bit_word(offset, kIspendr); w >= 0) set_bits(latched_, w, value, true);
    if (const long w = bit_word(offset, kIcpendr); w >= 0) set_bits(latched_, w, value, false);
    if (const long w = bit_word(offset, kIsactiver); w >= 0) set_bits(active_, w, value, true);
    if (const long w = bit_word(offset, kIcactiver); w >= 0) set_bits(active_, w, value, false);
    if (offset >= kIcfgr && offset < kIcfgr + 4 * config_.size()) config_[(offset - kIcfgr) / 4] = value;
}

std::uint32_t Gic::read_cpu_interface(std::uint64_t offset, unsigned size) {
    if (size != 4) return 0;
    switch (offset) {
    case kCpuCtlr: return cpu_ctlr_;
    case kCpuPmr: return priority_mask_;
    case kCpuBpr: return binary_point_;
    case kCpuIar: {
        const int id = highest_pending();
        if (id < 0) return kSpurious;
        active_[id] = true;
        latched_[id] = false;  // a level-triggered line still high stays pending (and active)
        return static_cast<std::uint32_t>(id);
    }
    case kCpuRpr: return running_priority() == kIdlePriority ? 0xff : running_priority();
    case kCpuHppir: {
        const int id = highest_pending();
        return id < 0 ? kSpurious : static_cast<std::uint32_t>(id);
    }
    case kCpuIidr: return 0x0202043b;
    default: return 0;
    }
}

void Gic::write_cpu_interface(std::uint64_t offset, unsigned size, std::uint32_t value) {
    if (size != 4) return;
    switch (offset) {
    case kCpuCtlr: cpu_ctlr_ = value & 1; break;
    case kCpuPmr: priority_mask_ = value & 0xff; break;
    case kCpuBpr: binary_point_ = value & 7; break;
    case kCpuEoir:
        if ((value & 0x3ff) < kNumIntids) active_[value & 0x3ff] = false;
        break;
    default: break;
    }
}

void Gic::set_level(unsigned intid, bool high) {
    if (intid < kNumIntids) level_[intid] = high;
}

void Gic::latch_edge(unsigned intid) {
    if (intid < kNumIntids) latched_[intid] = true;
}

unsigned Gic::running_priority() const {
    unsigned p = kIdlePriority;
    for (unsigned id = 0; id < kNumIntids; ++id)
        if (active_[id] && priority_[id] < p) p = priority_[id];
    return p;
}

int Gic::highest_pending() const {
    if (!(distributor_ctlr_ & 1) || !(cpu_ctlr_ & 1)) return -1;
    const unsigned limit = std::min(priority_mask_, running_priority());
    int best = -1;
    unsigned best_priority = limit;
    for (unsigned id = 0; id < kNumIntids; ++id) {
        if (!enabled_[id] || !pending(id) || active_[id] || priority_[id] >= best_priority) continue;
        best = static_cast<int>(id);
        best_priority = priority_[id];
    }
    return best;
}

}  // namespace coreio::mockvm::guest
