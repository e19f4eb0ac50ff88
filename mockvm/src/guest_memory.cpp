#include "coreio/mockvm/guest_memory.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace coreio::mockvm {

namespace {
std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}
}  // namespace

void GuestMemory::FreeDeleter::operator()(std::byte* p) const { std::free(p); }

void GuestMemory::add_region(std::uint64_t base, std::uint64_t size) {
    const std::string name = "memory region " + hex(base) + ":" + hex(size);
    if (size == 0) throw std::invalid_argument(name + ": size is 0");
    if (base + size - 1 < base) throw std::invalid_argument(name + ": wraps past the end of the address space");
    if (size > (std::uint64_t{1} << 40)) throw std::invalid_argument(name + ": larger than 1 TiB");
    std::lock_guard lock(mu_);
    for (const Region& r : regions_) {
        if (base <= r.base + (r.size - 1) && r.base <= base + (size - 1))
            throw std::invalid_argument(name + ": overlaps region " + hex(r.base) + ":" + hex(r.size));
    }
    // calloc: large blocks come from fresh zero pages, so untouched memory is free.
    auto* p = static_cast<std::byte*>(std::calloc(static_cast<std::size_t>(size), 1));
    if (p == nullptr) throw std::bad_alloc();
    Region r{base, size, std::unique_ptr<std::byte[], FreeDeleter>(p)};
    auto pos = std::lower_bound(regions_.begin(), regions_.end(), base,
                                [](const Region& a, std::uint64_t b) { return a.base < b; });
    regions_.insert(pos, std::move(r));
}

std::vector<MemoryRegionConfig> GuestMemory::regions() const {
    std::lock_guard lock(mu_);
    std::vector<MemoryRegionConfig> out;
    out.reserve(regions_.size());
    for (const Region& r : regions_) out.push_back({r.base, r.size});
    return out;
}

std::ptrdiff_t GuestMemory::find(std::uint64_t addr) const {
    // First region with base > addr, then step back one.
    auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                               [](std::uint64_t a, const Region& r) { return a < r.base; });
    if (it == regions_.begin()) return -1;
    --it;
    if (addr - it->base >= it->size) return -1;
    return it - regions_.begin();
}

bool GuestMemory::covered(std::uint64_t addr, std::uint64_t size) const {
    if (size == 0) return true;
    if (addr + (size - 1) < addr) return false;  // wraps
    std::ptrdiff_t i = find(addr);
    if (i < 0) return false;
    for (;;) {
        const Region& r = regions_[static_cast<std::size_t>(i)];
        const std::uint64_t avail = r.size - (addr - r.base);
        if (size <= avail) return true;
        addr += avail;
        size -= avail;
        ++i;
        if (static_cast<std::size_t>(i) >= regions_.size() || regions_[static_cast<std::size_t>(i)].base != addr)
            return false;
    }
}

template <class Fn>
void GuestMemory::for_each_piece(std::uint64_t addr, std::uint64_t size, Fn&& fn) const {
    std::ptrdiff_t i = find(addr);
    std::uint64_t done = 0;
    while (done < size) {
        const Region& r = regions_[static_cast<std::size_t>(i)];
        const std::uint64_t off = addr + done - r.base;
        const std::uint64_t len = std::min(size - done, r.size - off);
        fn(r.bytes.get() + off, done, len);
        done += len;
        ++i;
    }
}

bool GuestMemory::contains(std::uint64_t addr, std::uint64_t size) const {
    std::lock_guard lock(mu_);
    return covered(addr, size);
}

bool GuestMemory::read(std::uint64_t addr, std::span<std::byte> out) const {
    std::lock_guard lock(mu_);
    if (!covered(addr, out.size())) return false;
    for_each_piece(addr, out.size(), [&](std::byte* p, std::uint64_t at, std::uint64_t len) {
        std::memcpy(out.data() + at, p, static_cast<std::size_t>(len));
    });
    return true;
}

bool GuestMemory::write(std::uint64_t addr, std::span<const std::byte> in) {
    std::lock_guard lock(mu_);
    if (!covered(addr, in.size())) return false;
    for_each_piece(addr, in.size(), [&](std::byte* p, std::uint64_t at, std::uint64_t len) {
        std::memcpy(p, in.data() + at, static_cast<std::size_t>(len));
    });
    return true;
}

bool GuestMemory::write_masked(std::uint64_t addr, const std::byte* data, unsigned size, std::uint32_t mask) {
    if (size > 32) return false;
    const std::uint32_t all = size == 32 ? 0xffffffffu : ((1u << size) - 1);
    std::lock_guard lock(mu_);
    if (!covered(addr, size)) return false;
    const bool full = (mask & all) == all;
    for_each_piece(addr, size, [&](std::byte* p, std::uint64_t at, std::uint64_t len) {
        if (full) {
            std::memcpy(p, data + at, static_cast<std::size_t>(len));
            return;
        }
        for (std::uint64_t k = 0; k < len; ++k)
            if ((mask >> (at + k)) & 1) p[k] = data[at + k];
    });
    return true;
}

bool GuestMemory::fill(std::uint64_t addr, std::uint64_t size, std::byte value) {
    std::lock_guard lock(mu_);
    if (!covered(addr, size)) return false;
    for_each_piece(addr, size, [&](std::byte* p, std::uint64_t, std::uint64_t len) {
        std::memset(p, static_cast<int>(value), static_cast<std::size_t>(len));
    });
    return true;
}

std::span<std::byte> GuestMemory::view(std::uint64_t addr, std::uint64_t size) {
    std::lock_guard lock(mu_);
    const std::ptrdiff_t i = find(addr);
    if (i < 0) return {};
    const Region& r = regions_[static_cast<std::size_t>(i)];
    if (size > r.size - (addr - r.base)) return {};
    return {r.bytes.get() + (addr - r.base), static_cast<std::size_t>(size)};
}

bool GuestMemory::dma_read(const Frame& request, std::span<std::byte> out) {
    return request.mid() == 0 && request.sid() == 0 && read(request.address(), out);
}

bool GuestMemory::dma_write(const Frame& request) {
    return request.mid() == 0 && request.sid() == 0 &&
           write_masked(request.address(), request.payload(), request.size(), request.byte_mask());
}

}  // namespace coreio::mockvm
