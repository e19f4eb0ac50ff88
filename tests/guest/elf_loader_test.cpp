// The ELF loader: good images land in guest memory; bad files get a clear error
// naming what is wrong and leave memory untouched.
#include <gtest/gtest.h>

#include "coreio/mockvm/guest/elf_loader.hpp"
#include "guest_test_support.hpp"

namespace coreio::mockvm::guest {
namespace {

using testing::make_elf;

std::string load_error(std::vector<std::byte> bytes) {
    GuestMemory m;
    m.add_region(0x80000000, 16 << 20);
    try {
        load_elf(bytes, m, "fw.elf");
    } catch (const GuestError& e) {
        EXPECT_EQ(m.resident(), 0u) << "memory was touched";
        return e.what();
    }
    return "(loaded)";
}

TEST(ElfLoader, LoadsSegmentAndEntry) {
    GuestMemory m;
    m.add_region(0x80000000, 16 << 20);
    const ElfImage img = load_elf(make_elf({0x11223344, 0x55667788}), m, "fw.elf");
    EXPECT_EQ(img.entry, 0x80000000u);
    ASSERT_EQ(img.segments.size(), 1u);
    EXPECT_EQ(img.segments[0].memory_size, 8u);
    std::uint32_t w[2] = {};
    ASSERT_TRUE(m.read(0x80000000, std::as_writable_bytes(std::span(w))));
    EXPECT_EQ(w[0], 0x11223344u);
    EXPECT_EQ(w[1], 0x55667788u);
}

TEST(ElfLoader, ZeroFillsBss) {
    GuestMemory m;
    m.add_region(0x80000000, 16 << 20);
    ASSERT_TRUE(m.fill(0x80000000, 64, std::byte{0x5a}));
    auto elf = make_elf({0x11223344});
    Elf64_Phdr p;
    std::memcpy(&p, elf.data() + sizeof(Elf64_Ehdr), sizeof p);
    p.p_memsz = 64;
    std::memcpy(elf.data() + sizeof(Elf64_Ehdr), &p, sizeof p);
    load_elf(elf, m, "fw.elf");
    std::byte b[64];
    ASSERT_TRUE(m.read(0x80000000, b));
    EXPECT_EQ(b[4], std::byte{0});
    EXPECT_EQ(b[63], std::byte{0});
}

TEST(ElfLoader, RejectsNonElf) {
    const std::string text = "#!/bin/sh\necho not firmware\n";
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    EXPECT_EQ(load_error(bytes), "fw.elf: not an ELF file");
    EXPECT_EQ(load_error({}), "fw.elf: not an ELF file");
}

TEST(ElfLoader, RejectsWrongMachine) {
    EXPECT_EQ(load_error(make_elf({0}, 0x80000000, EM_X86_64)), "fw.elf: ELF machine 62 is not AArch64 (183)");
}

TEST(ElfLoader, Rejects32BitAndBigEndian) {
    auto elf = make_elf({0});
    elf[EI_CLASS] = std::byte{ELFCLASS32};
    EXPECT_EQ(load_error(elf), "fw.elf: not a 64-bit ELF file (AArch64 firmware is ELF64)");
    elf = make_elf({0});
    elf[EI_DATA] = std::byte{ELFDATA2MSB};
    EXPECT_EQ(load_error(elf), "fw.elf: not a little-endian ELF file");
}

TEST(ElfLoader, RejectsSegmentOutsideMemory) {
    EXPECT_EQ(load_error(make_elf({0, 0}, 0x40000000)),
              "fw.elf: segment 0 [0x40000000, 0x40000008) is outside guest memory (see --memory)");
    // Straddling the end of the region is outside too.
    EXPECT_EQ(load_error(make_elf({0, 0}, 0x80fffffc)),
              "fw.elf: segment 0 [0x80fffffc, 0x81000004) is outside guest memory (see --memory)");
}

TEST(ElfLoader, RejectsTruncatedFiles) {
    auto elf = make_elf({1, 2, 3, 4});
    elf.resize(elf.size() - 4);
    EXPECT_EQ(load_error(elf), "fw.elf: segment 0: data runs past the end of the file");
    elf.resize(sizeof(Elf64_Ehdr) + 10);
    EXPECT_EQ(load_error(elf), "fw.elf: program header table runs past the end of the file");
    elf.resize(20);
    EXPECT_EQ(load_error(elf), "fw.elf: truncated ELF header");
}

TEST(ElfLoader, RejectsEntryOutsideMemoryAndNonExecutables) {
    auto elf = make_elf({0});
    Elf64_Ehdr h;
    std::memcpy(&h, elf.data(), sizeof h);
    h.e_entry = 0x1000;
    std::memcpy(elf.data(), &h, sizeof h);
    EXPECT_EQ(load_error(elf), "fw.elf: entry point 0x1000 is outside guest memory (see --memory)");
    h.e_entry = 0x80000000;
    h.e_type = ET_DYN;
    std::memcpy(elf.data(), &h, sizeof h);
    EXPECT_EQ(load_error(elf), "fw.elf: not an executable (ELF type 3)");
}

TEST(ElfLoader, MissingFileIsAGuestError) {
    GuestMemory m;
    m.add_region(0x80000000, 16 << 20);
    EXPECT_THROW(load_elf_file("/nonexistent/fw.elf", m), GuestError);
}

}  // namespace
}  // namespace coreio::mockvm::guest
