// GuidedCorpus: the kept execs of a coverage-guided fuzz and the coverage seen
// so far; it decides whether an exec reached something new and makes the next
// exec from a kept one.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "coreio/replayer/fuzz.hpp"

namespace coreio::replayer {

class GuidedCorpus {
public:
    /// Exec `exec` of `seed`: a mutation of a kept exec (3 of 4 times, once any
    /// is kept) or a fresh one (generate_exec). The parent is mostly one that
    /// hit a counter nothing had hit before it (the newest such one first),
    /// as AFL prefers new edges over new hit counts.
    void generate(const FuzzConfig& config, std::uint64_t seed, std::uint64_t exec, Scenario& out) const;
    /// Keeps `sc` when the counters it moved (`after` - `before`; `before` of
    /// another size counts as zeros) hit a counter or a count bucket never seen
    /// before. Returns whether it was kept.
    bool observe(const Scenario& sc, std::span<const std::uint32_t> before, std::span<const std::uint32_t> after);
    std::size_t size() const { return kept_.size(); }

private:
    std::vector<Scenario> kept_;
    std::vector<std::size_t> favoured_;  // indexes into kept_ of execs that hit a counter first
    std::vector<std::uint8_t> seen_;  // per counter: the hit-count buckets seen (bit b: 2^b..2^(b+1)-1 hits)
};

/// The steps of `previous` then those of `sc` (records renumbered): a guided
/// finding's scenario, since the device carries state from one exec into the
/// next (an exec's opening RESET is not checked) and the previous exec cannot
/// be regenerated alone. `previous` without steps: `sc` alone.
Scenario joined(const Scenario& previous, const Scenario& sc);

/// The guided part of an exec loop (either loop, in process or over TCP):
/// makes each exec, reads the device's coverage around it, keeps what reached
/// something new, and remembers the exec before for a finding's steps. Off
/// (no reader): execs come from generate_exec alone.
class Guidance {
public:
    /// Fills its argument with the current device's counters (empty: none).
    using Reader = std::function<void(std::vector<std::uint32_t>&)>;
    explicit Guidance(Reader read) : read_(std::move(read)) {}
    bool on() const { return static_cast<bool>(read_); }
    /// Exec `exec` of `seed` into `sc` (and, guided, the counters before it).
    void make(const FuzzConfig& config, std::uint64_t seed, std::uint64_t exec, Scenario& sc);
    /// After the exec: reads the counters and keeps `sc` if it reached
    /// something new. False when guided and the device shares no counters.
    bool ran(const Scenario& sc);
    /// The exec ran without a finding: the previous one for the next.
    void passed(const Scenario& sc) {
        if (on()) previous_ = sc;
    }
    /// A finding's steps: `sc`, guided with the exec before it on this device.
    Scenario finding(const Scenario& sc) const { return on() ? joined(previous_, sc) : sc; }
    /// A fresh device: no previous exec.
    void new_device() { previous_.steps.clear(); }
    std::size_t kept() const { return corpus_.size(); }

private:
    Reader read_;
    GuidedCorpus corpus_;
    Scenario previous_;
    std::vector<std::uint32_t> before_, after_;
};

/// Makes `out` from `parent` by 1 to 4 mutations: steps inserted, appended,
/// changed, copied or dropped (fuzz_generate.cpp).
void mutate_exec(const FuzzConfig& config, std::uint64_t seed, std::uint64_t exec, const Scenario& parent,
                 Scenario& out);

}  // namespace coreio::replayer

namespace coreio::replayer {

/// The fuzzer's end of the coverage side channel (fuzz_tcp, guided): a
/// temporary file, named to the device by COREIO_COVERAGE_MAP, that the device
/// fills (layout: cosim/include/coreio/cosim/coverage_map.hpp). Read with
/// pread, so a device that re-creates it never faults the fuzzer.
class CoverageMapFile {
public:
    CoverageMapFile() = default;
    ~CoverageMapFile();
    CoverageMapFile(const CoverageMapFile&) = delete;
    CoverageMapFile& operator=(const CoverageMapFile&) = delete;

    /// Creates the file in $TMPDIR (or /tmp). Returns "" or an error.
    std::string create();
    const std::string& path() const { return path_; }
    /// The counters the device wrote; empty when it wrote none (yet) or the file is malformed.
    void read(std::vector<std::uint32_t>& out) const;

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace coreio::replayer
