#include "coreio/mockvm/guest_memory.hpp"

#include <algorithm>
#include <cstdio>
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
    auto pos = std::lower_bound(regions_.begin(), regions_.end(), base,
                                [](const Region& a, std::uint64_t b) { return a.base < b; });
    regions_.insert(pos, Region{base, size, {}});
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
void GuestMemory::for_each_piece(std::uint64_t addr, std::uint64_t size, Fn&& fn) {
    std::ptrdiff_t i = find(addr);
    std::uint64_t done = 0;
    while (done < size) {
        Region& r = regions_[static_cast<std::size_t>(i)];
        // Pieces end at page and region ends.
        for (std::uint64_t off = addr + done - r.base; done < size && off < r.size;) {
            const std::uint64_t in_page = off % kPageSize;
            const std::uint64_t len = std::min({size - done, r.size - off, kPageSize - in_page});
            fn(Piece{&r, off / kPageSize, in_page, done, len});
            done += len;
            off += len;
        }
        ++i;
    }
}

template <class Fn>
void GuestMemory::for_each_piece(std::uint64_t addr, std::uint64_t size, Fn&& fn) const {
    const_cast<GuestMemory*>(this)->for_each_piece(addr, size, std::forward<Fn>(fn));
}

std::byte* GuestMemory::existing_page(const Piece& p) {
    const auto it = p.region->pages.find(p.page);
    return it == p.region->pages.end() ? nullptr : it->second.get();
}

std::byte* GuestMemory::page_of(const Piece& p) {
    auto& pages = p.region->pages;
    if (const auto it = pages.find(p.page); it != pages.end()) return it->second.get();
    if (resident_limit_ != 0 && resident_ + kPageSize > resident_limit_) return nullptr;
    try {
        std::unique_ptr<std::byte[]> bytes(new (std::nothrow) std::byte[kPageSize]());
        if (!bytes) return nullptr;
        std::byte* raw = bytes.get();
        pages.emplace(p.page, std::move(bytes));
        resident_ += kPageSize;
        return raw;
    } catch (const std::bad_alloc&) {  // the page table itself could not grow
        return nullptr;
    }
}

bool GuestMemory::allocate(std::uint64_t addr, std::uint64_t size) {
    bool ok = true;
    for_each_piece(addr, size, [&](const Piece& p) { ok = ok && page_of(p) != nullptr; });
    return ok;
}

bool GuestMemory::contains(std::uint64_t addr, std::uint64_t size) const {
    std::lock_guard lock(mu_);
    return covered(addr, size);
}

bool GuestMemory::read(std::uint64_t addr, std::span<std::byte> out) const {
    std::lock_guard lock(mu_);
    if (!covered(addr, out.size())) return false;
    for_each_piece(addr, out.size(), [&](const Piece& p) {
        const std::byte* page = existing_page(p);
        if (page) std::memcpy(out.data() + p.at, page + p.offset, static_cast<std::size_t>(p.len));
        else std::memset(out.data() + p.at, 0, static_cast<std::size_t>(p.len));
    });
    return true;
}

bool GuestMemory::write(std::uint64_t addr, std::span<const std::byte> in) {
    std::lock_guard lock(mu_);
    if (!covered(addr, in.size()) || !allocate(addr, in.size())) return false;
    for_each_piece(addr, in.size(), [&](const Piece& p) {
        std::memcpy(page_of(p) + p.offset, in.data() + p.at, static_cast<std::size_t>(p.len));
    });
    return true;
}

bool GuestMemory::write_masked(std::uint64_t addr, const std::byte* data, unsigned size, std::uint32_t mask) {
    if (size > 32) return false;
    const std::uint32_t all = size == 32 ? 0xffffffffu : ((1u << size) - 1);
    std::lock_guard lock(mu_);
    if (!covered(addr, size) || !allocate(addr, size)) return false;
    const bool full = (mask & all) == all;
    for_each_piece(addr, size, [&](const Piece& p) {
        std::byte* dst = page_of(p) + p.offset;
        if (full) {
            std::memcpy(dst, data + p.at, static_cast<std::size_t>(p.len));
            return;
        }
        for (std::uint64_t k = 0; k < p.len; ++k)
            if ((mask >> (p.at + k)) & 1) dst[k] = data[p.at + k];
    });
    return true;
}

bool GuestMemory::fill(std::uint64_t addr, std::uint64_t size, std::byte value) {
    std::lock_guard lock(mu_);
    if (!covered(addr, size)) return false;
    if (value == std::byte{0}) {  // zeros: untouched pages already are, so allocate nothing
        for_each_piece(addr, size, [&](const Piece& p) {
            if (std::byte* page = existing_page(p)) std::memset(page + p.offset, 0, static_cast<std::size_t>(p.len));
        });
        return true;
    }
    if (!allocate(addr, size)) return false;
    for_each_piece(addr, size, [&](const Piece& p) {
        std::memset(page_of(p) + p.offset, static_cast<int>(value), static_cast<std::size_t>(p.len));
    });
    return true;
}

std::span<std::byte> GuestMemory::view(std::uint64_t addr, std::uint64_t size) {
    std::lock_guard lock(mu_);
    const std::ptrdiff_t i = find(addr);
    if (i < 0) return {};
    Region& r = regions_[static_cast<std::size_t>(i)];
    const std::uint64_t off = addr - r.base;
    if (size > r.size - off || size > kPageSize - off % kPageSize) return {};
    std::byte* page = page_of(Piece{&r, off / kPageSize, off % kPageSize, 0, size});
    if (page == nullptr) return {};
    return {page + off % kPageSize, static_cast<std::size_t>(size)};
}

std::uint64_t GuestMemory::resident() const {
    std::lock_guard lock(mu_);
    return resident_;
}

void GuestMemory::set_resident_limit(std::uint64_t bytes) {
    std::lock_guard lock(mu_);
    resident_limit_ = bytes;
}

bool GuestMemory::dma_read(const Frame& request, std::span<std::byte> out) {
    return request.mid() == 0 && request.sid() == 0 && read(request.address(), out);
}

bool GuestMemory::dma_write(const Frame& request) {
    return request.mid() == 0 && request.sid() == 0 &&
           write_masked(request.address(), request.payload(), request.size(), request.byte_mask());
}

}  // namespace coreio::mockvm
