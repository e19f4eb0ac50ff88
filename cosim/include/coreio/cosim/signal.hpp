// coreio::cosim::Signal: a reference to one port of a Verilated model (up to
// 64 bits), so bus adapters can drive and sample any model without knowing its
// generated class. Verilator exposes ports as public members of type
// CData/SData/IData/QData (uint8/16/32/64_t); a Signal remembers which.
#pragma once

#include <cstdint>
#include <type_traits>

namespace coreio::cosim {

class Signal {
public:
    /// An unbound signal: get() reads 0, set() does nothing (optional ports).
    Signal() = default;
    /// Binds to a Verilator port member (ports wider than 64 bits are not supported).
    template <class T>
    explicit Signal(T* port) : p_(port), bytes_(sizeof(T)) {
        static_assert(std::is_same_v<T, std::uint8_t> || std::is_same_v<T, std::uint16_t> ||
                          std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint64_t>,
                      "coreio cosim: only ports of up to 64 bits can be bound");
    }

    /// True when bound to a model port.
    bool bound() const { return p_ != nullptr; }
    /// Size of the port's storage in bytes (1, 2, 4, 8; 0 when unbound).
    unsigned bytes() const { return bytes_; }
    /// The raw storage (for the model's own fast paths).
    void* raw() const { return p_; }

    /// Current value (0 when unbound).
    std::uint64_t get() const {
        switch (bytes_) {
        case 1: return *static_cast<const std::uint8_t*>(p_);
        case 2: return *static_cast<const std::uint16_t*>(p_);
        case 4: return *static_cast<const std::uint32_t*>(p_);
        case 8: return *static_cast<const std::uint64_t*>(p_);
        default: return 0;
        }
    }
    /// Drives the port; the caller keeps `v` within the port's width.
    void set(std::uint64_t v) const {
        switch (bytes_) {
        case 1: *static_cast<std::uint8_t*>(p_) = static_cast<std::uint8_t>(v); break;
        case 2: *static_cast<std::uint16_t*>(p_) = static_cast<std::uint16_t>(v); break;
        case 4: *static_cast<std::uint32_t*>(p_) = static_cast<std::uint32_t>(v); break;
        case 8: *static_cast<std::uint64_t*>(p_) = v; break;
        default: break;
        }
    }

private:
    void* p_ = nullptr;        // the model's port member
    std::uint8_t bytes_ = 0;   // its storage size
};

}  // namespace coreio::cosim
