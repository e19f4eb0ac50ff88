#include "crc32c.hpp"

#include <array>
#include <cstring>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace coreio::trace::detail {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // Castagnoli, reflected

constexpr std::array<std::uint32_t, 256> make_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
        t[i] = c;
    }
    return t;
}
constexpr auto kTable = make_table();

std::uint32_t by_table(std::uint32_t c, const std::uint8_t* p, std::size_t n) {
    while (n--) c = kTable[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t by_instruction(std::uint32_t c, const std::uint8_t* p, std::size_t n) {
    std::uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
    }
    c = static_cast<std::uint32_t>(c64);
    for (; n > 0; --n) c = _mm_crc32_u8(c, *p++);
    return c;
}
const bool kHaveSse42 = [] {
    __builtin_cpu_init();  // may run before libgcc's own constructor does it
    return __builtin_cpu_supports("sse4.2") != 0;
}();
#endif

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    const std::uint32_t c = ~crc;
#if defined(__x86_64__)
    if (kHaveSse42) return ~by_instruction(c, p, n);
#endif
    return ~by_table(c, p, n);
}

}  // namespace coreio::trace::detail
