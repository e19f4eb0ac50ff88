#include "coreio/mockvm/guest/console.hpp"

namespace coreio::mockvm::guest {

namespace {
constexpr std::uint64_t kDr = 0x00, kFr = 0x18, kPeriphId0 = 0xfe0;
// PL011 PeriphID0..3 and PCellID0..3 (0xfe0..0xffc), one byte per word.
constexpr std::uint8_t kIds[8] = {0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};
}  // namespace

std::uint32_t Console::read_uart(std::uint64_t offset, unsigned) const {
    if (offset == kFr) return kFlagRxEmpty | kFlagTxEmpty;
    if (offset >= kPeriphId0 && offset % 4 == 0) return kIds[(offset - kPeriphId0) / 4];
    return 0;
}

void Console::write_uart(std::uint64_t offset, unsigned, std::uint32_t value) {
    if (offset != kDr) return;
    out_.put(static_cast<char>(value & 0xff));
    if ((value & 0xff) == '\n') out_.flush();
}

void Console::write_power_off(std::uint64_t offset, std::uint32_t value) {
    if (offset == 0 && !exit_status_) exit_status_ = value;
}

}  // namespace coreio::mockvm::guest
