// Text parsing shared by the coreio-mockvm command line and scenario scripts:
// numbers, sizes with K/M/G suffixes, BASE:SIZE pairs, hex byte strings.
// Every function throws std::invalid_argument with a message naming the bad text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "coreio/mockvm/vm.hpp"

namespace coreio::mockvm {

/// A decimal or 0x-prefixed hexadecimal unsigned 64-bit number ("4096", "0xfef00000").
std::uint64_t parse_number(std::string_view text);
/// A number with an optional binary suffix K, M or G (either case; also KiB/MiB/GiB): "16M" = 16 << 20.
std::uint64_t parse_size(std::string_view text);
/// "BASE:SIZE", e.g. "0xfef00000:0x1000" or "0x80000000:16M".
RangeConfig parse_range(std::string_view text);
/// "0x" followed by exactly 2 * size hex digits: bytes in memory order (as qtest writes them).
std::vector<std::byte> parse_hex_bytes(std::string_view text, std::size_t size);
/// Bytes as "0x" + two lowercase hex digits each, in memory order.
std::string format_hex_bytes(const std::byte* data, std::size_t size);

/// The CLI's defaults: one range 0xfef00000:0x1000 (rid 0), used when no --range
/// is given, and 16 MiB of memory at 0x80000000, used when no --memory is given.
VmConfig default_config();

}  // namespace coreio::mockvm
