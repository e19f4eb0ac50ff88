// Loads a bare-metal AArch64 ELF64 executable into the mock VM's guest memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "coreio/mockvm/guest_memory.hpp"

namespace coreio::mockvm::guest {

/// A firmware file that cannot be run; the message names the file and what is wrong.
class GuestError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One PT_LOAD segment as loaded: [address, address + memory_size), the first
/// file_size bytes from the file, the rest zeros.
struct LoadedSegment {
    std::uint64_t address = 0;  // physical (p_paddr): the guest runs with the MMU off
    std::uint64_t file_size = 0;
    std::uint64_t memory_size = 0;
};

struct ElfImage {
    std::uint64_t entry = 0;
    std::vector<LoadedSegment> segments;
};

/// Checks `bytes` is a little-endian ELF64 executable for AArch64 whose
/// loadable segments all lie inside guest memory, then copies them in.
/// Throws GuestError ("NAME: not an ELF file", "NAME: ELF machine 62 is not
/// AArch64 (183)", "NAME: segment 1 [0x..., 0x...) is outside guest memory", ...);
/// memory is untouched when the file is rejected.
ElfImage load_elf(std::span<const std::byte> bytes, GuestMemory& memory, const std::string& name);
/// Reads the file at `path` and loads it as above; an unreadable file is a GuestError too.
ElfImage load_elf_file(const std::string& path, GuestMemory& memory);

}  // namespace coreio::mockvm::guest
