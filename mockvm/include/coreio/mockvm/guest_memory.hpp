// GuestMemory: the mock VM's sparse guest-physical memory. DMA from clients is
// served from it; accesses outside every configured region are faults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "coreio/vm_session.hpp"

namespace coreio::mockvm {

/// One region of guest memory: [base, base + size).
struct MemoryRegionConfig {
    std::uint64_t base = 0;  // first guest-physical address
    std::uint64_t size = 0;  // length in bytes (> 0)
};

/// Sparse guest memory made of non-overlapping, zero-filled regions.
/// Every access is all-or-nothing: if any byte falls outside the regions it
/// faults (returns false) and nothing is written. Accesses may cross from one
/// region into an adjacent one. Thread-safe: byte accesses take an internal
/// lock, so DMA serving and a driver thread may use it at once.
///
/// Memory is held in pages of kPageSize bytes, allocated on the first write
/// that touches them (reads of untouched pages see zeros and allocate
/// nothing), so a 64 GiB region costs what its written pages cost. A write
/// that needs a page it cannot get (out of memory, or past the resident
/// limit) fails like a fault and writes nothing; contains() still says true
/// for it, which is how a caller tells the two apart.
///
/// As a DmaMemory it serves mid 0 / sid 0 (direct guest-physical access; the
/// mock VM has no IOMMU): any other IOMMU id faults.
class GuestMemory final : public DmaMemory {
public:
    GuestMemory() = default;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;

    /// Size of the pages memory is allocated in.
    static constexpr std::uint64_t kPageSize = 64 * 1024;

    /// Adds a zero-filled region; it costs nothing until written. Throws
    /// std::invalid_argument (naming the region) if size is 0, the region wraps
    /// past 2^64, is larger than 1 TiB, or overlaps another.
    void add_region(std::uint64_t base, std::uint64_t size);
    void add_region(const MemoryRegionConfig& r) { add_region(r.base, r.size); }

    /// The configured regions, sorted by base.
    std::vector<MemoryRegionConfig> regions() const;

    /// True when every byte of [addr, addr + size) is inside some region.
    bool contains(std::uint64_t addr, std::uint64_t size) const;

    /// Copies out.size() bytes from addr; false (out untouched) on a fault.
    bool read(std::uint64_t addr, std::span<std::byte> out) const;
    /// Copies in into memory at addr; false (memory untouched) on a fault.
    bool write(std::uint64_t addr, std::span<const std::byte> in);
    /// Writes byte i of data (i < size <= 32) only where bit i of mask is set,
    /// as a DMA write's byte-enable mask demands; false on a fault.
    bool write_masked(std::uint64_t addr, const std::byte* data, unsigned size, std::uint32_t mask);
    /// Sets size bytes at addr to value; false (untouched) on a fault.
    bool fill(std::uint64_t addr, std::uint64_t size, std::byte value);

    // DmaMemory
    bool dma_read(const Frame& request, std::span<std::byte> out) override;
    bool dma_write(const Frame& request) override;

    /// Direct view of [addr, addr + size) when it lies inside one page of one
    /// region (allocating that page), else an empty span. Not synchronised with
    /// DMA: use it to set up or inspect memory while no transfer touches those bytes.
    std::span<std::byte> view(std::uint64_t addr, std::uint64_t size);

    /// Bytes of allocated pages.
    std::uint64_t resident() const;
    /// At most this many bytes of pages (0: no limit but the system's); a write
    /// needing more fails. Guards a run against the OOM killer.
    void set_resident_limit(std::uint64_t bytes);

private:
    struct Region {
        std::uint64_t base;
        std::uint64_t size;
        // Page number (offset in the region / kPageSize) -> its bytes; absent pages are zeros.
        std::unordered_map<std::uint64_t, std::unique_ptr<std::byte[]>> pages;
    };
    /// One piece of an access: inside one page of one region.
    struct Piece {
        Region* region;
        std::uint64_t page;     // page number in the region
        std::uint64_t offset;   // in the page
        std::uint64_t at;       // offset in the access
        std::uint64_t len;
    };

    /// Index of the region holding addr, or -1.
    std::ptrdiff_t find(std::uint64_t addr) const;
    bool covered(std::uint64_t addr, std::uint64_t size) const;
    /// Calls fn(Piece) for each page piece of a covered access, in order.
    template <class Fn>
    void for_each_piece(std::uint64_t addr, std::uint64_t size, Fn&& fn);
    template <class Fn>
    void for_each_piece(std::uint64_t addr, std::uint64_t size, Fn&& fn) const;
    /// The page's bytes, allocating it; nullptr when it cannot be had.
    std::byte* page_of(const Piece& p);
    /// The page's bytes if allocated, else nullptr (zeros).
    static std::byte* existing_page(const Piece& p);
    /// Allocates every page of a covered access up front (all-or-nothing writes).
    bool allocate(std::uint64_t addr, std::uint64_t size);

    std::vector<Region> regions_;  // sorted by base, non-overlapping
    std::uint64_t resident_ = 0;        // bytes of allocated pages
    std::uint64_t resident_limit_ = 0;  // 0: none
    mutable std::mutex mu_;        // serialises byte accesses (DMA vs driver)
};

}  // namespace coreio::mockvm
