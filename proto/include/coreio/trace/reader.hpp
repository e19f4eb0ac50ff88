// TraceReader: streams the records of a trace file. Never crashes and never
// allocates without bound on a bad file: a cut-off tail is reported as a
// warning with its byte offset, anything else wrong as corruption naming the
// byte offset and the field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "coreio/trace/event.hpp"

namespace coreio::trace {

/// What next() found.
enum class ReadStatus : std::uint8_t {
    Record,     // an event was read
    End,        // clean end of file
    Truncated,  // the file ends inside a record (e.g. killed mid-write): everything before is good
    Corrupt,    // bytes that are not a valid record; message() names the offset
};

class TraceReader {
public:
    TraceReader();
    ~TraceReader();
    TraceReader(const TraceReader&) = delete;
    TraceReader& operator=(const TraceReader&) = delete;

    /// Opens a file and reads its preamble and header. Returns an empty string,
    /// or an error naming the path and, for bad contents, the byte offset.
    std::string open(const std::string& path);
    /// Reads a trace held in memory (copied), as open() does.
    std::string open_memory(std::span<const std::byte> bytes);

    /// The header read by open().
    const TraceHeader& header() const;

    /// Reads the next record into `ev`. Views in `ev` (raw frames, message)
    /// stay valid until the next call. After Truncated or Corrupt, next()
    /// keeps returning the same status.
    ReadStatus next(Event& ev);

    /// Index of the record last returned (0-based).
    std::uint64_t index() const;
    /// Byte offset of the record last returned, or of the problem after
    /// Truncated/Corrupt.
    std::uint64_t offset() const;
    /// Bytes consumed so far (for progress).
    std::uint64_t position() const;
    /// Size of the input in bytes.
    std::uint64_t size() const;
    /// For Truncated/Corrupt: one line naming the byte offset and what was wrong.
    const std::string& message() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace coreio::trace
