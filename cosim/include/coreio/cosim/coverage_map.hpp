// CoverageMap: a device's coverage counters shared with a fuzzer through a
// file both map (the side channel of `coreio-fuzz --guided`). The device
// creates the file named by COREIO_COVERAGE_MAP before it connects and copies
// its counters into it after every access and reset; the fuzzer reads them
// after each exec (every request has been answered by then).
//
// File layout (host byte order, the two processes share a machine):
//   bytes 0..7   "CIOCOV01"
//   bytes 8..11  N, the number of counters (uint32)
//   bytes 12..15 zero
//   bytes 16..   N uint32 counters, cumulative since the device started
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "coreio/cosim/model.hpp"

namespace coreio::cosim {

/// The environment variable that names the file.
inline constexpr const char* kCoverageMapEnv = "COREIO_COVERAGE_MAP";

class CoverageMap {
public:
    CoverageMap() = default;
    ~CoverageMap();
    CoverageMap(const CoverageMap&) = delete;
    CoverageMap& operator=(const CoverageMap&) = delete;

    /// Creates (or truncates) `path` for `counters` counters and maps it.
    /// Returns "" or an error naming the file.
    std::string open(const std::string& path, std::size_t counters);
    /// Copies `counters` (as many as the file holds) into the file.
    void publish(CoverageCounters counters);
    bool is_open() const { return map_ != nullptr; }

private:
    void* map_ = nullptr;
    std::size_t bytes_ = 0;
    std::size_t count_ = 0;
};

}  // namespace coreio::cosim
