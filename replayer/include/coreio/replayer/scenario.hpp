// A Scenario: what the VM side does (a list of steps: MMIO requests, resets,
// guest-memory fills) and, for a recorded trace, what the device did in reply
// (expected replies, IRQ changes with the window of requests that may have
// caused each, DMA chunks, claims). Built from a trace file, or by the fuzzer;
// written back as a trace (reproducers).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "coreio/frame.hpp"
#include "coreio/trace/event.hpp"

namespace coreio::replayer {

/// One thing the VM side does, in order.
struct Step {
    enum class Kind : std::uint8_t { Access, Reset, Fill };
    Kind kind = Kind::Access;
    bool expect_reply = false;  // `expected` holds the recorded reply (replies are checked)
    std::uint64_t record = 0;   // trace record index (reports); the op index for generated steps
    std::uint64_t time_ns = 0;  // recorded request time (timed replay)
    Frame frame;                // Access: the request as sent
    Frame expected;             // Access with expect_reply: the recorded reply
    /// The trace shows device-originated records (DMA, IRQ) after the previous
    /// request had completed and before this one: the replayer waits for them
    /// (up to its timeout) before sending this step, as the recorded VM did.
    bool wait_device = false;
    std::uint64_t fill_address = 0;  // Fill: first byte of guest memory
    std::uint64_t fill_size = 0;     // Fill: bytes
    std::uint64_t fill_seed = 0;     // Fill: the bytes are fill_bytes(fill_seed)

    /// An MMIO access step: `op` at `address` of range `rid`, `size` bytes
    /// (each element, pair ops), write data from `data`/`data2` (little endian).
    static Step access(Op op, unsigned rid, std::uint64_t address, unsigned size, std::uint64_t data = 0,
                       std::uint64_t data2 = 0, unsigned flags = 0);
    static Step reset();
    static Step fill(std::uint64_t address, std::uint64_t size, std::uint64_t seed);
};

/// The bytes of a Fill step: a deterministic stream from `seed`.
void fill_bytes(std::uint64_t seed, std::span<std::byte> out);

/// A recorded IRQ level change. Its cause (the index of the step being handled
/// when it happened) must lie in [lo, hi]; -1 means "before the first step".
struct ExpectedIrq {
    std::uint64_t record = 0;
    unsigned rid = 0, line = 0;
    bool level = false;
    std::int64_t lo = -1, hi = -1;
    /// Recorded after step hi had completed (a posted write returned, or its
    /// reply came): the device made it from its own loop, so it may arrive
    /// after the completion; it is due before step hi + 1 is sent.
    bool deferred = false;
};

/// A recorded DMA chunk (request and reply).
struct ExpectedDma {
    std::uint64_t record = 0;
    Op op = Op::Read;
    unsigned mid = 0, sid = 0, flags = 0, size = 0;
    std::uint64_t address = 0;
    std::uint32_t mask = 0;
    bool error = false;      // the VM faulted it
    bool has_reply = false;  // the reply was recorded
    bool deferred = false;   // recorded after the request before it completed (see ExpectedIrq)
    std::array<std::byte, kMaxAccessSize> data{};  // write data, or the data the VM returned
};

/// A recorded range claim.
struct ExpectedClaim {
    std::uint64_t record = 0;
    unsigned rid = 0;
};

struct Scenario {
    std::vector<Step> steps;
    std::vector<ExpectedIrq> irqs;
    std::vector<ExpectedDma> dmas;
    std::vector<ExpectedClaim> claims;
    std::vector<trace::RangeInfo> ranges;   // MMIO ranges (from the header)
    std::vector<trace::MemoryInfo> memory;  // guest memory served to DMA
    std::vector<std::pair<std::string, std::string>> labels;  // header labels
    bool reproducer = false;  // written by the fuzzer: its findings are checked, not its replies
    std::uint64_t records = 0;  // records read from the trace
    std::vector<std::uint32_t> clients;  // the device models (client indexes) the records name, in order seen
    std::string warning;        // e.g. the trace's tail was cut off

    /// The label's value, or "".
    std::string label(const std::string& key) const;
    /// Base address of range `rid` (from `ranges`), or -1 when unknown.
    std::int64_t range_base(unsigned rid) const;
    /// Offset of `address` in range `rid` (low 12 bits when the base is unknown).
    std::uint64_t offset_in_range(unsigned rid, std::uint64_t address) const;
};

/// Reads a trace into a Scenario, keeping the records of device model
/// `client`. Returns "" or an error naming the file and what is wrong.
std::string load_scenario(const std::string& path, Scenario& out, std::uint32_t client = 0);
/// The same from a trace held in memory.
std::string load_scenario_memory(std::span<const std::byte> bytes, Scenario& out, std::uint32_t client = 0);

/// Label keys of reproducers.
inline constexpr const char* kLabelReproducer = "coreio.reproducer";  // "1"
inline constexpr const char* kLabelFill = "coreio.fill.";             // + index: "STEP:ADDR:SIZE:SEED" (hex)
inline constexpr const char* kLabelFinding = "coreio.finding";        // kind: field
inline constexpr const char* kLabelExpectRead = "coreio.expect-read.";  // + index: RID:OFFSET:MASK:VALUE

/// Writes `scenario`'s steps as a trace (requests only, no replies), with its
/// ranges, memory, fills and labels in the header: a reproducer that the
/// replayer runs in findings mode. Returns "" or an error.
std::string write_requests(const std::string& path, const Scenario& scenario);

}  // namespace coreio::replayer
