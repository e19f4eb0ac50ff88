#include "coreio/cosim/coverage_map.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace coreio::cosim {

namespace {
constexpr std::size_t kHeader = 16;
}  // namespace

CoverageMap::~CoverageMap() {
    if (map_ != nullptr) ::munmap(map_, bytes_);
}

std::string CoverageMap::open(const std::string& path, std::size_t counters) {
    if (map_ != nullptr) return "coverage map already open";
    if (counters == 0) return "the model has no coverage points to share (coreio_add_cosim COVERAGE)";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return "cannot create coverage map '" + path + "': " + std::strerror(errno);
    const std::size_t bytes = kHeader + counters * sizeof(std::uint32_t);
    void* m = MAP_FAILED;
    if (::ftruncate(fd, static_cast<off_t>(bytes)) == 0)
        m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int err = errno;
    ::close(fd);
    if (m == MAP_FAILED) return "cannot map coverage map '" + path + "': " + std::strerror(err);
    map_ = m;
    bytes_ = bytes;
    count_ = counters;
    auto* b = static_cast<unsigned char*>(map_);
    const auto n = static_cast<std::uint32_t>(counters);
    std::memcpy(b + 8, &n, sizeof n);
    std::memcpy(b, "CIOCOV01", 8);
    return "";
}

void CoverageMap::publish(CoverageCounters counters) {
    if (map_ == nullptr) return;
    auto* out = reinterpret_cast<std::uint32_t*>(static_cast<unsigned char*>(map_) + kHeader);
    const std::size_t n = counters.size() < count_ ? counters.size() : count_;
    for (std::size_t i = 0; i < n; ++i) out[i] = counters[i].load(std::memory_order_relaxed);
}

}  // namespace coreio::cosim
