// The record codec: hand-written protobuf encoding of coreio_trace.proto's
// Record, with the delta state that makes records small. Hand-written because
// it runs per frame inside the tap (no allocation, ~20 ns); tests check it
// against the protoc-generated classes field by field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "coreio/trace/event.hpp"
#include "schema.hpp"

namespace coreio::trace::detail {

/// Preamble: field 17 "COREIO", then the tag of field 18 (varint); the format
/// version follows as a varint.
inline constexpr std::uint8_t kPreamble[] = {0x8a, 0x01, 0x06, 'C', 'O', 'R', 'E', 'I', 'O', 0x90, 0x01};
static_assert(kPreamble[0] == ((schema::key(schema::file::kMagic, schema::kLen) & 0x7f) | 0x80) &&
              kPreamble[1] == (schema::key(schema::file::kMagic, schema::kLen) >> 7) &&
              kPreamble[9] == ((schema::key(schema::file::kFormatVersion, schema::kVarint) & 0x7f) | 0x80) &&
              kPreamble[10] == (schema::key(schema::file::kFormatVersion, schema::kVarint) >> 7));
/// Tag byte of field 1 (Record), length-delimited.
inline constexpr std::uint8_t kRecordTag = schema::key(schema::file::kRecord, schema::kLen);
/// Tag byte of field 2 (Header), length-delimited.
inline constexpr std::uint8_t kHeaderTag = schema::key(schema::file::kHeader, schema::kLen);
/// Longest header accepted, bytes.
inline constexpr std::size_t kMaxHeaderBytes = 1u << 20;

/// A batch checksum (TraceFile.batch, schema 2): always these 12 bytes,
///   1a 0a  0d <size: fixed32>  15 <crc32c: fixed32>
/// in front of the `size` bytes of records it covers.
inline constexpr std::size_t kBatchHeadBytes = 12;
/// Largest batch: `size` has 24 bits; its top byte checks the other three.
inline constexpr std::uint32_t kMaxBatchBytes = static_cast<std::uint32_t>(trace::kMaxBatchBytes);
/// First byte of a batch checksum (the key of TraceFile.batch).
inline constexpr std::uint8_t kBatchTag = schema::key(schema::file::kBatch, schema::kLen);

/// Writes a batch checksum for `size` bytes of records whose running CRC-32C is `crc`.
void put_batch_head(std::uint8_t* out, std::uint32_t size, std::uint32_t crc);
/// Reads a batch checksum (kBatchHeadBytes at `p`). Returns nullptr, or what
/// is wrong with `*bad_at` the offset of the bad byte within the 12.
const char* get_batch_head(const std::uint8_t* p, std::uint32_t& size, std::uint32_t& crc, std::size_t* bad_at);

/// What the previous records left behind for the deltas of the next one;
/// writer and reader keep one each and update it identically.
struct DeltaState {
    std::uint64_t time_ns = 0;       // time of the previous record
    std::uint64_t mmio_address = 0;  // previous MMIO address
    std::uint32_t mmio_tag = ~0u;    // previous MMIO tag (so tag 0 first costs nothing)
    std::uint64_t dma_address = 0;   // previous DMA address
    std::uint32_t dma_tag = ~0u;     // previous DMA packet id
    std::uint64_t index = 0;         // index of the record being coded
};

/// Upper bound of encode_record()'s output for `ev`.
std::size_t max_record_body(const Event& ev);
/// Encodes `ev` as a Record body (no outer tag/length) at `out`; returns its
/// length and advances `state`.
std::size_t encode_record(const Event& ev, DeltaState& state, std::uint8_t* out);
/// Decodes a Record body into `ev` (views point into `p`) and advances `state`.
/// Returns nullptr, or a static description of what is wrong; `*bad_at` is
/// then the offset of the bad field within the body.
const char* decode_record(const std::uint8_t* p, std::size_t n, DeltaState& state, Event& ev, std::size_t* bad_at);

/// Header <-> serialized Header message.
std::string encode_header(const TraceHeader& header);
bool decode_header(const std::uint8_t* p, std::size_t n, TraceHeader& header);

/// Appends a varint; returns bytes written (<= 10).
inline std::size_t put_varint(std::uint8_t* out, std::uint64_t v) {
    std::size_t n = 0;
    while (v >= 0x80) {
        out[n++] = static_cast<std::uint8_t>(v | 0x80);
        v >>= 7;
    }
    out[n++] = static_cast<std::uint8_t>(v);
    return n;
}
/// Reads a varint from [p, end); returns bytes used, 0 when cut off, or
/// SIZE_MAX when longer than 10 bytes.
inline std::size_t get_varint(const std::uint8_t* p, const std::uint8_t* end, std::uint64_t* v) {
    std::uint64_t r = 0;
    for (std::size_t i = 0; i < 10; ++i) {
        if (p + i >= end) return 0;
        const std::uint8_t b = p[i];
        r |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return SIZE_MAX;
}
inline std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline std::int64_t unzigzag(std::uint64_t v) {
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

}  // namespace coreio::trace::detail
