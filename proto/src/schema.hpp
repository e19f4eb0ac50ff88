// Every field number and enum value of coreio_trace.proto that the hand-written
// codec (codec.cpp, reader.cpp, writer.cpp) uses, in one place. The test
// tests/trace/schema_test.cpp static_asserts each one equal to the constant
// protoc generates, so a schema change that is not mirrored here fails to build.
#pragma once

#include <cstdint>

namespace coreio::trace::schema {

/// Protobuf wire types.
enum WireType : std::uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

/// The key of a field: (number << 3) | wire type.
constexpr std::uint32_t key(std::uint32_t field, WireType type) { return (field << 3) | type; }

/// TraceFile fields.
namespace file {
inline constexpr std::uint32_t kRecord = 1;
inline constexpr std::uint32_t kHeader = 2;
inline constexpr std::uint32_t kBatch = 3;
inline constexpr std::uint32_t kMagic = 17;
inline constexpr std::uint32_t kFormatVersion = 18;
}  // namespace file

/// Batch fields (the checksum in front of each batch of records).
namespace batch {
inline constexpr std::uint32_t kSize = 1;
inline constexpr std::uint32_t kCrc32c = 2;
}  // namespace batch

/// Header fields.
namespace header {
inline constexpr std::uint32_t kSchemaVersion = 1;
inline constexpr std::uint32_t kTool = 2;
inline constexpr std::uint32_t kToolVersion = 3;
inline constexpr std::uint32_t kCreatedUnixNs = 4;
inline constexpr std::uint32_t kTarget = 5;
inline constexpr std::uint32_t kRanges = 6;
inline constexpr std::uint32_t kMemory = 7;
inline constexpr std::uint32_t kLabels = 8;
inline constexpr std::uint32_t kObserver = 9;
inline constexpr std::uint32_t kRawFrames = 10;
/// Header.Observer values.
inline constexpr std::uint32_t kObserverUnknown = 0;
inline constexpr std::uint32_t kObserverClient = 1;
inline constexpr std::uint32_t kObserverVm = 2;
inline constexpr std::uint32_t kObserverProxy = 3;
}  // namespace header

/// Range fields.
namespace range {
inline constexpr std::uint32_t kRid = 1;
inline constexpr std::uint32_t kBase = 2;
inline constexpr std::uint32_t kSize = 3;
inline constexpr std::uint32_t kName = 4;
}  // namespace range

/// MemoryRegion fields.
namespace memory {
inline constexpr std::uint32_t kMid = 1;
inline constexpr std::uint32_t kSid = 2;
inline constexpr std::uint32_t kBase = 3;
inline constexpr std::uint32_t kSize = 4;
inline constexpr std::uint32_t kName = 5;
}  // namespace memory

/// Fields of a map<string, string> entry (Header.labels).
namespace label {
inline constexpr std::uint32_t kKey = 1;
inline constexpr std::uint32_t kValue = 2;
}  // namespace label

/// Record fields.
namespace record {
inline constexpr std::uint32_t kDtNs = 1;
inline constexpr std::uint32_t kChannel = 2;
inline constexpr std::uint32_t kDirection = 3;
inline constexpr std::uint32_t kClient = 4;
inline constexpr std::uint32_t kMmio = 5;
inline constexpr std::uint32_t kDma = 6;
inline constexpr std::uint32_t kIrq = 7;
inline constexpr std::uint32_t kClaim = 8;
inline constexpr std::uint32_t kPing = 9;
inline constexpr std::uint32_t kReset = 10;
inline constexpr std::uint32_t kConnection = 11;
inline constexpr std::uint32_t kProtocolError = 12;
inline constexpr std::uint32_t kRaw = 16;
inline constexpr std::uint32_t kRawReply = 17;
/// Record.Channel values.
inline constexpr std::uint32_t kChannelMain = 0;
inline constexpr std::uint32_t kChannelDma = 1;
/// Record.Direction values.
inline constexpr std::uint32_t kDirectionToClient = 0;
inline constexpr std::uint32_t kDirectionToVm = 1;
}  // namespace record

/// Transaction fields.
namespace transaction {
inline constexpr std::uint32_t kOpSize = 1;
inline constexpr std::uint32_t kId = 2;
inline constexpr std::uint32_t kAddressDelta = 3;
inline constexpr std::uint32_t kTagStep = 4;
inline constexpr std::uint32_t kFlags = 5;
inline constexpr std::uint32_t kSid = 6;
inline constexpr std::uint32_t kData = 7;
inline constexpr std::uint32_t kDataBytes = 8;
inline constexpr std::uint32_t kData2 = 9;
inline constexpr std::uint32_t kData2Bytes = 10;
inline constexpr std::uint32_t kMaskXor = 11;
inline constexpr std::uint32_t kError = 12;
inline constexpr std::uint32_t kReplyAfterNs = 13;
inline constexpr std::uint32_t kStatus = 14;
inline constexpr std::uint32_t kCauseBack = 15;
/// Transaction.Status values.
inline constexpr std::uint32_t kStatusComplete = 0;
inline constexpr std::uint32_t kStatusNoReply = 1;
inline constexpr std::uint32_t kStatusReplyOnly = 2;
}  // namespace transaction

namespace irq {
inline constexpr std::uint32_t kRid = 1;
inline constexpr std::uint32_t kLine = 2;
inline constexpr std::uint32_t kLevel = 3;
}  // namespace irq

namespace claim {
inline constexpr std::uint32_t kRid = 1;
}  // namespace claim

namespace ping {
inline constexpr std::uint32_t kTag = 1;
}  // namespace ping

namespace connection {
inline constexpr std::uint32_t kUp = 1;
}  // namespace connection

namespace protocol_error {
inline constexpr std::uint32_t kCode = 1;
inline constexpr std::uint32_t kMessage = 2;
}  // namespace protocol_error

}  // namespace coreio::trace::schema
