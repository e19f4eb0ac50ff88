#include "coreio/mockvm/guest/elf_loader.hpp"

#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fstream>
#include <iterator>
#include <sstream>

namespace coreio::mockvm::guest {

namespace {

std::string hex(std::uint64_t v) {
    std::ostringstream s;
    s << "0x" << std::hex << v;
    return s.str();
}

/// Header checks: everything about the file as a whole.
Elf64_Ehdr check_header(std::span<const std::byte> bytes, const std::string& name) {
    if (bytes.size() < EI_NIDENT || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0)
        throw GuestError(name + ": not an ELF file");
    if (static_cast<unsigned char>(bytes[EI_CLASS]) != ELFCLASS64)
        throw GuestError(name + ": not a 64-bit ELF file (AArch64 firmware is ELF64)");
    if (static_cast<unsigned char>(bytes[EI_DATA]) != ELFDATA2LSB)
        throw GuestError(name + ": not a little-endian ELF file");
    if (bytes.size() < sizeof(Elf64_Ehdr)) throw GuestError(name + ": truncated ELF header");
    Elf64_Ehdr h;
    std::memcpy(&h, bytes.data(), sizeof h);
    if (h.e_machine != EM_AARCH64)
        throw GuestError(name + ": ELF machine " + std::to_string(h.e_machine) + " is not AArch64 (" +
                         std::to_string(EM_AARCH64) + ")");
    if (h.e_type != ET_EXEC) throw GuestError(name + ": not an executable (ELF type " + std::to_string(h.e_type) + ")");
    if (h.e_phnum == 0) throw GuestError(name + ": no program headers");
    if (h.e_phentsize < sizeof(Elf64_Phdr))
        throw GuestError(name + ": program header size " + std::to_string(h.e_phentsize) + " is too small");
    const std::uint64_t table = std::uint64_t{h.e_phnum} * h.e_phentsize;
    if (h.e_phoff > bytes.size() || table > bytes.size() - h.e_phoff)
        throw GuestError(name + ": program header table runs past the end of the file");
    return h;
}

/// The PT_LOAD segments, each checked against the file and guest memory.
std::vector<std::pair<Elf64_Phdr, unsigned>> loadable_segments(std::span<const std::byte> bytes, const Elf64_Ehdr& h,
                                                              const GuestMemory& memory, const std::string& name) {
    std::vector<std::pair<Elf64_Phdr, unsigned>> out;
    for (unsigned i = 0; i < h.e_phnum; ++i) {
        Elf64_Phdr p;
        std::memcpy(&p, bytes.data() + h.e_phoff + std::uint64_t{i} * h.e_phentsize, sizeof p);
        if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
        const std::string seg = name + ": segment " + std::to_string(i);
        if (p.p_filesz > p.p_memsz) throw GuestError(seg + ": file size is larger than memory size");
        if (p.p_offset > bytes.size() || p.p_filesz > bytes.size() - p.p_offset)
            throw GuestError(seg + ": data runs past the end of the file");
        if (p.p_paddr + p.p_memsz < p.p_paddr || !memory.contains(p.p_paddr, p.p_memsz))
            throw GuestError(seg + " [" + hex(p.p_paddr) + ", " + hex(p.p_paddr + p.p_memsz) +
                             ") is outside guest memory (see --memory)");
        out.emplace_back(p, i);
    }
    if (out.empty()) throw GuestError(name + ": no loadable segment");
    return out;
}

}  // namespace

ElfImage load_elf(std::span<const std::byte> bytes, GuestMemory& memory, const std::string& name) {
    const Elf64_Ehdr h = check_header(bytes, name);
    const auto segments = loadable_segments(bytes, h, memory, name);
    if (!memory.contains(h.e_entry, 4))
        throw GuestError(name + ": entry point " + hex(h.e_entry) + " is outside guest memory (see --memory)");
    ElfImage image;
    image.entry = h.e_entry;
    for (const auto& [p, index] : segments) {
        const bool ok = (p.p_filesz == 0 || memory.write(p.p_paddr, bytes.subspan(p.p_offset, p.p_filesz))) &&
                        (p.p_memsz == p.p_filesz ||
                         memory.fill(p.p_paddr + p.p_filesz, p.p_memsz - p.p_filesz, std::byte{0}));
        if (!ok) throw GuestError(name + ": segment " + std::to_string(index) + ": cannot allocate guest memory");
        image.segments.push_back({p.p_paddr, p.p_filesz, p.p_memsz});
    }
    return image;
}

ElfImage load_elf_file(const std::string& path, GuestMemory& memory) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw GuestError(path + ": cannot open: " + std::strerror(errno));
    std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw GuestError(path + ": cannot read");
    return load_elf(std::as_bytes(std::span<const char>(data)), memory, path);
}

}  // namespace coreio::mockvm::guest
