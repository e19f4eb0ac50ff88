// The device every benchmark drives: a 4 KiB register file at `base`, written
// with libcoreio. A write to the kick register (bare_responder.hpp's
// kKickOffset) passes its value to `on_kick`, e.g. to raise IRQ edges from
// inside the handler.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "coreio/client.hpp"

namespace coreio::bench {

class RegisterFile final : public MmioHandler {
public:
    static constexpr std::size_t kBytes = 4096;

    explicit RegisterFile(std::uint64_t base, std::uint64_t kick_offset = ~0ull,
                          std::function<void(std::uint32_t)> on_kick = {})
        : base_(base), kick_offset_(kick_offset), on_kick_(std::move(on_kick)) {}

    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned) override {
        const std::uint64_t off = addr - base_;
        if (off + len > regs_.size()) return 1;
        std::memcpy(buf, regs_.data() + off, len);
        return 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) override {
        const std::uint64_t off = addr - base_;
        if (off + len > regs_.size()) return 1;
        std::memcpy(regs_.data() + off, buf, len);
        if (off == kick_offset_ && on_kick_) {
            std::uint32_t n = 0;
            std::memcpy(&n, buf, len < sizeof n ? len : sizeof n);
            on_kick_(n);
        }
        return 0;
    }

private:
    std::uint64_t base_;                         // guest-physical base of the range
    std::uint64_t kick_offset_;                  // offset that calls on_kick_ (~0: none)
    std::function<void(std::uint32_t)> on_kick_;  // what a kick does
    std::vector<std::byte> regs_ = std::vector<std::byte>(kBytes);
};

}  // namespace coreio::bench
