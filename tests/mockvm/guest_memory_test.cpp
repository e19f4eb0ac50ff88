#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <span>
#include <unistd.h>
#include <vector>
#include <string>

#include "coreio/mockvm/guest_memory.hpp"

using coreio::mockvm::GuestMemory;

namespace {

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(GuestMemory, RegionsAreZeroFilledAndSorted) {
    GuestMemory m;
    m.add_region(0x9000, 0x1000);
    m.add_region(0x1000, 0x100);
    const auto r = m.regions();
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].base, 0x1000u);
    EXPECT_EQ(r[1].base, 0x9000u);
    std::array<std::byte, 16> buf;
    buf.fill(std::byte{0xff});
    ASSERT_TRUE(m.read(0x9ff0, buf));
    for (auto b : buf) EXPECT_EQ(b, std::byte{0});
}

TEST(GuestMemory, RejectsBadRegionsWithAReason) {
    GuestMemory m;
    m.add_region(0x1000, 0x1000);
    EXPECT_THROW(m.add_region(0x1800, 0x1000), std::invalid_argument);
    EXPECT_THROW(m.add_region(0x0800, 0x1000), std::invalid_argument);
    EXPECT_THROW(m.add_region(0x1000, 1), std::invalid_argument);
    EXPECT_THROW(m.add_region(0x5000, 0), std::invalid_argument);
    EXPECT_THROW(m.add_region(~0ull - 10, 100), std::invalid_argument);
    try {
        m.add_region(0x1fff, 2);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("overlaps region 0x1000:0x1000"), std::string::npos) << e.what();
    }
    m.add_region(0x2000, 0x1000);  // adjacent is fine
    m.add_region(~0ull - 0xff, 0x100);  // ends at the top of the address space
    EXPECT_TRUE(m.contains(~0ull, 1));
}

TEST(GuestMemory, AccessesAtTheBoundaries) {
    GuestMemory m;
    m.add_region(0x1000, 0x100);
    std::array<std::byte, 8> buf{};
    EXPECT_TRUE(m.read(0x1000, buf));
    EXPECT_TRUE(m.read(0x10f8, buf));
    EXPECT_FALSE(m.read(0x10f9, buf));  // one byte past the end
    EXPECT_FALSE(m.read(0x0ff8, buf));
    EXPECT_FALSE(m.read(0x0fff, std::span(buf).first(1)));
    EXPECT_TRUE(m.read(0x10ff, std::span(buf).first(1)));
    EXPECT_FALSE(m.read(0x1100, std::span(buf).first(1)));
    EXPECT_FALSE(m.read(~0ull - 3, buf));  // wraps
    EXPECT_TRUE(m.contains(0x1000, 0x100));
    EXPECT_FALSE(m.contains(0x1000, 0x101));
}

TEST(GuestMemory, FaultingWritesChangeNothing) {
    GuestMemory m;
    m.add_region(0x1000, 0x10);
    EXPECT_FALSE(m.write(0x100c, bytes("12345678")));
    EXPECT_FALSE(m.fill(0x100c, 8, std::byte{1}));
    std::array<std::byte, 16> all{};
    ASSERT_TRUE(m.read(0x1000, all));
    for (auto b : all) EXPECT_EQ(b, std::byte{0});
}

TEST(GuestMemory, AccessesCrossAdjacentRegionsButNotGaps) {
    GuestMemory m;
    m.add_region(0x1000, 0x10);
    m.add_region(0x1010, 0x10);
    m.add_region(0x1030, 0x10);
    ASSERT_TRUE(m.write(0x100c, bytes("abcdefgh")));
    std::string out(8, '\0');
    ASSERT_TRUE(m.read(0x100c, std::as_writable_bytes(std::span(out.data(), out.size()))));
    EXPECT_EQ(out, "abcdefgh");
    EXPECT_FALSE(m.write(0x101c, bytes("abcdefgh")));  // gap at 0x1020
    EXPECT_TRUE(m.fill(0x1000, 0x20, std::byte{7}));
    EXPECT_FALSE(m.fill(0x1000, 0x21, std::byte{7}));
}

TEST(GuestMemory, MaskedWritesHonourTheByteMask) {
    GuestMemory m;
    m.add_region(0, 0x100);
    std::array<std::byte, 32> data;
    data.fill(std::byte{0x5a});
    ASSERT_TRUE(m.write_masked(0x10, data.data(), 32, 0x80000001u));
    std::array<std::byte, 32> got{};
    ASSERT_TRUE(m.read(0x10, got));
    for (unsigned i = 0; i < 32; ++i) EXPECT_EQ(got[i], (i == 0 || i == 31) ? std::byte{0x5a} : std::byte{0}) << i;
    // Mask bits beyond size are ignored; a full mask is a plain copy.
    ASSERT_TRUE(m.write_masked(0x40, data.data(), 4, 0xffffffffu));
    ASSERT_TRUE(m.read(0x40, std::span(got).first(8)));
    EXPECT_EQ(got[3], std::byte{0x5a});
    EXPECT_EQ(got[4], std::byte{0});
    EXPECT_FALSE(m.write_masked(0xfc, data.data(), 8, 0xff));
    EXPECT_FALSE(m.write_masked(0, data.data(), 33, 0xff));
}

TEST(GuestMemory, ViewIsZeroCopyInsideOneRegion) {
    GuestMemory m;
    m.add_region(0x2000, 0x1000);
    auto v = m.view(0x2100, 0x10);
    ASSERT_EQ(v.size(), 0x10u);
    v[0] = std::byte{42};
    std::array<std::byte, 1> b{};
    ASSERT_TRUE(m.read(0x2100, b));
    EXPECT_EQ(b[0], std::byte{42});
    EXPECT_TRUE(m.view(0x2ff0, 0x11).empty());
    EXPECT_TRUE(m.view(0x1000, 1).empty());
}

TEST(GuestMemory, LargeSparseRegionsAreCheap) {
    GuestMemory m;
    m.add_region(0x100000000ull, 1ull << 30);  // 1 GiB: only touched pages cost memory
    ASSERT_TRUE(m.write(0x100000000ull + (1ull << 29), bytes("x")));
    EXPECT_TRUE(m.contains(0x100000000ull, 1ull << 30));
}

}  // namespace

namespace {

// Resident set size of this process, in bytes (from /proc/self/statm).
std::uint64_t rss_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f != nullptr) {
        if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

TEST(GuestMemory, SixtyFourGibConfiguredCostsOnlyThePagesTouched) {
    const std::uint64_t before = rss_bytes();
    GuestMemory m;
    m.add_region(0, 64ull << 30);  // 64 GiB
    m.add_region(64ull << 30, 1ull << 20);
    EXPECT_TRUE(m.contains(0, 64ull << 30));
    // Reads of untouched memory see zeros and allocate nothing.
    std::array<std::byte, 16> got{};
    got.fill(std::byte{1});
    ASSERT_TRUE(m.read(40ull << 30, got));
    for (auto b : got) EXPECT_EQ(b, std::byte{0});
    EXPECT_EQ(m.resident(), 0u);
    EXPECT_TRUE(m.fill(0, 1ull << 30, std::byte{0}));  // zeros allocate nothing either
    EXPECT_EQ(m.resident(), 0u);
    // Touch 16 pages spread over the region (one write crosses into the next region).
    for (std::uint64_t i = 0; i < 15; ++i) ASSERT_TRUE(m.write(i * (4ull << 30) + 123, std::as_bytes(std::span("page"))));
    ASSERT_TRUE(m.write((64ull << 30) - 2, std::as_bytes(std::span("xyz"))));
    EXPECT_EQ(m.resident(), 17 * GuestMemory::kPageSize);  // the crossing write touched two pages
    EXPECT_LT(rss_bytes() - before, 16ull << 20) << "RSS grew by " << (rss_bytes() - before);
    std::array<std::byte, 5> back{};
    ASSERT_TRUE(m.read(8ull << 30 | 123, back));
    EXPECT_EQ(std::memcmp(back.data(), "page", 5), 0);
    ASSERT_TRUE(m.read((64ull << 30) - 2, std::span(back).first(4)));
    EXPECT_EQ(std::memcmp(back.data(), "xyz", 4), 0);
}

TEST(GuestMemory, AccessesAcrossPageEdgesKeepEveryByte) {
    GuestMemory m;
    m.add_region(0x1000, 4 * GuestMemory::kPageSize);
    std::vector<std::byte> data(2 * GuestMemory::kPageSize + 100);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 1);
    const std::uint64_t at = 0x1000 + GuestMemory::kPageSize - 50;
    ASSERT_TRUE(m.write(at, data));
    std::vector<std::byte> back(data.size());
    ASSERT_TRUE(m.read(at, back));
    EXPECT_EQ(back, data);
    std::array<std::byte, 32> src{};
    src.fill(std::byte{0x5a});
    ASSERT_TRUE(m.write_masked(0x1000 + GuestMemory::kPageSize - 3, src.data(), 8, 0b10100101));
    std::array<std::byte, 8> got{};
    ASSERT_TRUE(m.read(0x1000 + GuestMemory::kPageSize - 3, got));
    for (unsigned i = 0; i < 8; ++i)
        if ((0b10100101 >> i) & 1) {
            EXPECT_EQ(got[i], std::byte{0x5a}) << i;
        }
}

TEST(GuestMemory, AWriteThatCannotGetItsPagesFailsAndWritesNothing) {
    GuestMemory m;
    m.add_region(0, 32ull << 30);
    m.set_resident_limit(2 * GuestMemory::kPageSize);
    ASSERT_TRUE(m.write(0, std::as_bytes(std::span("a"))));
    ASSERT_TRUE(m.write(5 * GuestMemory::kPageSize, std::as_bytes(std::span("b"))));
    // A third page is over the limit: the write fails as a whole, even the part on an allocated page.
    std::vector<std::byte> two_pages(8, std::byte{0x77});
    EXPECT_FALSE(m.write(6 * GuestMemory::kPageSize - 4, two_pages));
    EXPECT_FALSE(m.fill(9 * GuestMemory::kPageSize, 1, std::byte{1}));
    EXPECT_TRUE(m.view(9 * GuestMemory::kPageSize, 4).empty());
    EXPECT_TRUE(m.contains(6 * GuestMemory::kPageSize - 4, 8));  // how a caller tells it from a fault
    std::array<std::byte, 4> back{};
    ASSERT_TRUE(m.read(6 * GuestMemory::kPageSize - 4, back));
    for (auto b : back) EXPECT_EQ(b, std::byte{0});
    EXPECT_EQ(m.resident(), 2 * GuestMemory::kPageSize);
}

}  // namespace
