// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of a
// trace batch: the SSE4.2 crc32 instruction where the CPU has it, a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace coreio::trace::detail {

/// Extends `crc` (the CRC-32C of the bytes before; 0 for none) over [p, p+n).
/// crc32c_extend(crc32c_extend(0, a), b) equals the CRC-32C of a followed by b.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* p, std::size_t n);

}  // namespace coreio::trace::detail
