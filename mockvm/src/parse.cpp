#include "coreio/mockvm/parse.hpp"

#include <stdexcept>

namespace coreio::mockvm {

namespace {
int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
std::string quoted(std::string_view t) { return "'" + std::string(t) + "'"; }
}  // namespace

std::uint64_t parse_number(std::string_view text) {
    if (text.empty()) throw std::invalid_argument("expected a number, got nothing");
    std::uint64_t base = 10;
    std::string_view digits = text;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        digits = text.substr(2);
    }
    std::uint64_t v = 0;
    for (char c : digits) {
        const int d = hex_digit(c);
        if (d < 0 || static_cast<std::uint64_t>(d) >= base)
            throw std::invalid_argument("not a number: " + quoted(text) + (base == 10 ? " (hex needs 0x)" : ""));
        if (v > (~0ull - static_cast<std::uint64_t>(d)) / base)
            throw std::invalid_argument("number too large for 64 bits: " + quoted(text));
        v = v * base + static_cast<std::uint64_t>(d);
    }
    return v;
}

std::uint64_t parse_size(std::string_view text) {
    std::string_view num = text;
    unsigned shift = 0;
    for (auto [suffix, s] : {std::pair{"KiB", 10u}, {"MiB", 20u}, {"GiB", 30u}, {"K", 10u}, {"M", 20u}, {"G", 30u},
                             {"k", 10u}, {"m", 20u}, {"g", 30u}}) {
        const std::string_view sv(suffix);
        // Suffixes are matched whole, so a hex number ending in B is not mistaken for one.
        if (num.size() > sv.size() && num.substr(num.size() - sv.size()) == sv) {
            num = num.substr(0, num.size() - sv.size());
            shift = s;
            break;
        }
    }
    std::uint64_t v;
    try {
        v = parse_number(num);
    } catch (const std::invalid_argument&) {
        throw std::invalid_argument("not a size: " + quoted(text) + " (a number with an optional K, M or G suffix)");
    }
    if (shift != 0 && v > (~0ull >> shift)) throw std::invalid_argument("size too large: " + quoted(text));
    return v << shift;
}

RangeConfig parse_range(std::string_view text) {
    const auto colon = text.find(':');
    if (colon == std::string_view::npos)
        throw std::invalid_argument("expected BASE:SIZE (e.g. 0xfef00000:0x1000), got " + quoted(text));
    RangeConfig r;
    try {
        r.base = parse_number(text.substr(0, colon));
        r.size = parse_size(text.substr(colon + 1));
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("in " + quoted(text) + ": " + e.what());
    }
    if (r.size == 0) throw std::invalid_argument("in " + quoted(text) + ": size is 0");
    return r;
}

std::vector<std::byte> parse_hex_bytes(std::string_view text, std::size_t size) {
    if (text.size() < 2 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
        throw std::invalid_argument("expected 0x followed by hex bytes, got " + quoted(text));
    const std::string_view digits = text.substr(2);
    if (digits.size() != 2 * size)
        throw std::invalid_argument("expected " + std::to_string(2 * size) + " hex digits for " + std::to_string(size) +
                                    " byte(s), got " + std::to_string(digits.size()) + " in " + quoted(text));
    std::vector<std::byte> out(size);
    for (std::size_t i = 0; i < size; ++i) {
        const int hi = hex_digit(digits[2 * i]);
        const int lo = hex_digit(digits[2 * i + 1]);
        if (hi < 0 || lo < 0) throw std::invalid_argument("bad hex digit in " + quoted(text));
        out[i] = static_cast<std::byte>(hi * 16 + lo);
    }
    return out;
}

std::string format_hex_bytes(const std::byte* data, std::size_t size) {
    static const char* digits = "0123456789abcdef";
    std::string s = "0x";
    s.reserve(2 + 2 * size);
    for (std::size_t i = 0; i < size; ++i) {
        const auto b = static_cast<unsigned>(data[i]);
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    return s;
}

VmConfig default_config() {
    VmConfig c;
    c.ranges = {{0xfef00000, 0x1000}};
    c.memory = {{0x80000000, 16ull << 20}};
    return c;
}

}  // namespace coreio::mockvm
