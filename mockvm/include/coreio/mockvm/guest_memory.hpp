// GuestMemory: the mock VM's sparse guest-physical memory. DMA from clients is
// served from it; accesses outside every configured region are faults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
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
/// As a DmaMemory it serves mid 0 / sid 0 (direct guest-physical access; the
/// mock VM has no IOMMU): any other IOMMU id faults.
class GuestMemory final : public DmaMemory {
public:
    GuestMemory() = default;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;

    /// Adds a zero-filled region. Pages are allocated lazily by the OS, so large
    /// regions cost nothing until touched. Throws std::invalid_argument (naming
    /// the region) if size is 0, the region wraps past 2^64, or it overlaps another.
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

    /// Direct view of [addr, addr + size) when it lies inside one region, else
    /// an empty span. Not synchronised with DMA: use it to set up or inspect
    /// memory while no transfer touches those bytes.
    std::span<std::byte> view(std::uint64_t addr, std::uint64_t size);

private:
    struct FreeDeleter {
        void operator()(std::byte* p) const;
    };
    struct Region {
        std::uint64_t base;
        std::uint64_t size;
        std::unique_ptr<std::byte[], FreeDeleter> bytes;
    };

    /// Index of the region holding addr, or -1.
    std::ptrdiff_t find(std::uint64_t addr) const;
    bool covered(std::uint64_t addr, std::uint64_t size) const;
    /// Calls fn(ptr, offset_in_access, len) for each region piece of a covered access.
    template <class Fn>
    void for_each_piece(std::uint64_t addr, std::uint64_t size, Fn&& fn) const;

    std::vector<Region> regions_;  // sorted by base, non-overlapping
    mutable std::mutex mu_;        // serialises byte accesses (DMA vs driver)
};

}  // namespace coreio::mockvm
