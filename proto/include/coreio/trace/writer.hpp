// TraceWriter: appends events to a trace file so that a crash, even kill -9,
// loses at most the last flush interval and never leaves a half record that a
// reader cannot tell from a complete one.
//
// Durability guarantee: records are encoded into an in-memory batch; the batch
// goes to the file with one write() when it holds `batch_bytes`, when its
// first record is older than `flush_interval` (found by the background thread;
// without that thread, by the next append), on flush() and on close(). With
// the background thread that write() happens on it, off the appending thread,
// while appends go on into a second batch. Every write() carries whole records only, so after kill -9 the file
// holds every record appended up to about `flush_interval` before the kill and
// ends at a record boundary (after a power loss or a full disk, the reader
// reports a truncated tail instead). No fsync: data is safe from the process
// dying, not from the machine dying.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "coreio/trace/event.hpp"

namespace coreio::trace {
namespace detail {
class FastMutex;
}

struct WriterOptions {
    /// Write the batch when it holds this many bytes.
    std::size_t batch_bytes = 64 * 1024;
    /// Longest time a record waits in memory (bounds the loss on kill -9).
    std::chrono::milliseconds flush_interval{20};
    /// Run a thread that flushes an idle batch after flush_interval; without
    /// it, only appends, flush() and close() write.
    bool background_flush = true;
    /// The trace's clock, ns since the trace start (default: the host's monotonic
    /// clock). A guest CPU run records guest time, so that its traces repeat exactly.
    std::function<std::uint64_t()> clock;
};

class TraceWriter {
public:
    TraceWriter();
    /// Closes the file (see close()).
    ~TraceWriter();
    TraceWriter(const TraceWriter&) = delete;
    TraceWriter& operator=(const TraceWriter&) = delete;

    /// Creates (truncates) `path` and writes the preamble and `header`; time 0
    /// of the trace is now. Returns an empty string, or an error naming the path.
    std::string open(const std::string& path, const TraceHeader& header, const WriterOptions& options = {});
    /// As open(path), on a file the caller opened for writing (e.g. an
    /// OutputFile's temporary); `name` is for messages. The fd stays the
    /// caller's: close() does not close it.
    std::string open(int fd, const std::string& name, const TraceHeader& header, const WriterOptions& options = {});
    /// True between a successful open() and close().
    bool is_open() const;

    /// Appends one event; `ev.time_ns` is relative to the trace start (see
    /// now_ns()). Returns the record's index. Thread-safe; no allocation.
    /// After a write error the event is dropped but counted (error() says why).
    std::uint64_t append(const Event& ev);
    /// Nanoseconds since the trace start on the steady clock: the time to put in events.
    std::uint64_t now_ns() const;
    /// now_ns() of the steady clock's time `t` (0 before the trace start);
    /// with WriterOptions::clock, that clock's now.
    std::uint64_t time_of(std::chrono::steady_clock::time_point t) const;

    /// Writes the batch now.
    void flush();
    /// Flushes, stops the flush thread and closes the file. Returns error(),
    /// which then also says how many records the file holds; empty when every
    /// appended record is in the file.
    std::string close();

    /// Records appended so far (the index the next append() returns).
    std::uint64_t records() const;
    /// Records handed to the file without error: after close(), what the file holds.
    std::uint64_t records_written() const;
    /// Bytes handed to the file (preamble and header included).
    std::uint64_t bytes() const;
    /// Bytes of records and of the checksums of written batches (for bytes-per-event figures).
    std::uint64_t record_bytes() const;
    /// The first write error (naming the file and the cause), or empty. Sticky:
    /// after it, appends are dropped.
    std::string error() const;

private:
    friend class TraceTap;
    /// The lock append() takes; TraceTap keeps its own state under it too, so
    /// that a frame costs one lock.
    detail::FastMutex& mutex() const;
    /// append() for a caller holding mutex().
    std::uint64_t append_locked(const Event& ev);
    /// now_ns() for a caller holding mutex(), on a cheaper clock (the TSC kept
    /// in step with the steady clock).
    std::uint64_t now_locked();

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace coreio::trace
