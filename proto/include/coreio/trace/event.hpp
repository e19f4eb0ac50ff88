// One trace event as tools see it: every field absolute (the file's deltas are
// undone by the reader), plain values, no allocation. The file format is
// proto/coreio_trace.proto; this is its in-memory form.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coreio/client.hpp"
#include "coreio/frame.hpp"

namespace coreio::trace {

/// File format version written in the preamble; readers accept <= this.
inline constexpr std::uint32_t kFormatVersion = 1;
/// Schema version written in the header: the format's minor version. 2 added
/// the batch checksums (readers of version 1 skip them).
inline constexpr std::uint32_t kSchemaVersion = 2;
/// Longest batch of records behind one checksum, bytes.
inline constexpr std::size_t kMaxBatchBytes = (1u << 24) - 1;
/// Longest record a reader accepts, bytes: bounds memory on a corrupt length.
inline constexpr std::size_t kMaxRecordBytes = 1u << 20;
/// Event::cause when a DMA chunk had no MMIO transaction in flight.
inline constexpr std::uint64_t kNoCause = ~std::uint64_t{0};

/// What an event is (Record.event in the schema).
enum class EventKind : std::uint8_t {
    Unknown = 0,    // an event type from a newer schema; only time/link fields are set
    Mmio,           // MMIO access, request folded with its reply
    Dma,            // DMA chunk, request folded with its reply
    Irq,            // IRQ line level change
    Claim,          // range claim
    Ping,           // PING or its echo
    Reset,          // RESET from the VM
    Connection,     // TCP connection up/down
    ProtocolError,  // a frame that failed validation
};

/// Which way an event's (first) frame travelled.
enum class Towards : std::uint8_t { Client = 0, Vm = 1 };

/// How much of a transaction the recorder saw (Transaction.Status).
enum class Status : std::uint8_t {
    Complete = 0,   // request and reply, or a posted write
    NoReply = 1,    // the reply never came
    ReplyOnly = 2,  // the request was not seen
};

/// Which end recorded a trace (Header.Observer).
enum class Observer : std::uint8_t { Unknown = 0, Client = 1, Vm = 2, Proxy = 3 };

/// One event. Fields not used by `kind` are zero.
struct Event {
    std::uint64_t time_ns = 0;          // ns since the trace start (request time for transactions)
    std::uint32_t client = 0;           // device model index where several
    Channel channel = Channel::Main;    // connection the event crossed
    Towards towards = Towards::Client;  // direction of its first frame
    EventKind kind = EventKind::Unknown;

    // Mmio, Dma, Irq, Claim.
    std::uint8_t id = 0;     // rid (Mmio, Irq, Claim) or mid (Dma)
    // Mmio and Dma.
    Op op = Op::Read;        // access opcode (1..6)
    std::uint8_t size = 0;   // access size, bytes (pair ops: each element)
    std::uint8_t sid = 0;    // DMA: IOMMU region id
    std::uint8_t flags = 0;  // access flags (kFlagIfetch | kFlagPriv | kFlagSecure)
    bool error = false;      // reply had the error bit
    Status status = Status::Complete;
    std::uint32_t tag = 0;   // VM tag (Mmio), packet id (Dma), ping tag (Ping)
    std::uint32_t mask = 0;  // byte-enable mask as on the wire
    std::uint64_t address = 0;         // guest-physical address, bytes
    std::uint64_t reply_after_ns = 0;  // reply time - request time (0 without reply)
    std::uint64_t cause = kNoCause;    // Dma: record index of the MMIO access in flight
    std::array<std::byte, kMaxAccessSize> data{};     // `size` bytes: write data, or read result
    std::array<std::byte, kMaxPairElement> data2{};  // pair ops: element 2

    // Irq.
    std::uint8_t line = 0;   // IRQ line 0..7
    std::uint8_t level = 0;  // new level 0/1
    // Connection.
    bool up = false;         // connected (true) or closed
    // ProtocolError.
    std::uint8_t code = 0;         // coreio::FrameError value
    std::string_view message;      // description (valid as long as `raw`)

    // Wire frames when recorded (always for ProtocolError). Views: valid until
    // the reader's next call, or as long as the writer's caller keeps them.
    std::span<const std::byte> raw;        // request / only frame
    std::span<const std::byte> raw_reply;  // reply frame of a transaction
};

/// Guest MMIO range named in the header.
struct RangeInfo {
    std::uint32_t rid = 0;   // 0..7
    std::uint64_t base = 0;  // guest-physical base
    std::uint64_t size = 0;  // bytes
    std::string name;        // may be empty
    friend bool operator==(const RangeInfo&, const RangeInfo&) = default;
};

/// Guest memory region reachable by DMA, named in the header.
struct MemoryInfo {
    std::uint32_t mid = 0;
    std::uint32_t sid = 0;
    std::uint64_t base = 0;
    std::uint64_t size = 0;
    std::string name;
    friend bool operator==(const MemoryInfo&, const MemoryInfo&) = default;
};

/// The trace header (Header in the schema).
struct TraceHeader {
    std::uint32_t schema_version = kSchemaVersion;  // set by the writer
    std::string tool;                 // program that wrote the file
    std::string tool_version;         // its version
    std::uint64_t created_unix_ns = 0;  // wall clock of time 0; the writer fills it when 0
    std::string target;               // VM "host:port"
    std::vector<RangeInfo> ranges;
    std::vector<MemoryInfo> memory;
    std::vector<std::pair<std::string, std::string>> labels;  // sorted by key on read
    Observer observer = Observer::Unknown;
    bool raw_frames = false;          // records carry wire frames
    friend bool operator==(const TraceHeader&, const TraceHeader&) = default;
};

/// "mmio", "dma", "irq", ... for dumps and JSON.
const char* kind_name(EventKind k);
/// "complete", "no-reply", "reply-only".
const char* status_name(Status s);
/// "client", "vm", "proxy", "unknown".
const char* observer_name(Observer o);

/// One readable line (no newline), e.g.
/// "      1.234567 c0 main ->dev MMIO READ   rid=0 addr=0x10000004 size=4 data=0x0000002a lat=2.1us".
std::string format_event(const Event& ev);
/// One JSON object (no newline) with every field of the event.
std::string event_json(const Event& ev);

/// Which fields a comparison looks at.
struct CompareOptions {
    bool timing = false;  // compare time_ns and reply_after_ns too
    bool tags = true;     // compare tags (VM tags and DMA packet ids)
    bool raw = false;     // compare raw frames
};

/// The first field where two events differ, or empty `field` when equal.
struct Difference {
    std::string field;  // e.g. "address"; empty when the events are equal
    std::string a;      // value in the first event
    std::string b;      // value in the second event
};
/// Compares two events field by field in a fixed order.
Difference compare_events(const Event& a, const Event& b, const CompareOptions& options = {});

/// Little-endian integer view of up to 8 data bytes.
std::uint64_t data_value(std::span<const std::byte> bytes);
/// Default byte mask of an access: all bytes for writes, 0 for reads.
std::uint32_t default_mask(Op op, unsigned size);

}  // namespace coreio::trace
