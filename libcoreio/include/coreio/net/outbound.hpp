// Outbound bytes of one connection and the non-blocking loop that sends them.
//
// A ByteSource is anything holding bytes to send (an OutboundQueue, or a
// session's own output buffer behind a three-line adapter). send_from()
// writes as much as the socket takes, several buffers per sendmsg(), and
// leaves the rest queued: the owner waits for writability and may stop
// reading the peer while queued() is over its limit (back-pressure).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace coreio::net {

/// Bytes waiting to be sent, oldest first.
class ByteSource {
public:
    virtual ~ByteSource() = default;
    /// Describes up to `max` buffers of queued bytes, oldest first; returns how many.
    virtual std::size_t gather(iovec* out, std::size_t max) const = 0;
    /// Drops the first `n` queued bytes (they were sent).
    virtual void consume(std::size_t n) = 0;
};

/// A byte queue in fixed-size chunks: appending copies into the last chunk,
/// chunks that were sent are kept for reuse, so a steady stream allocates
/// nothing; sending hands every chunk to one sendmsg().
class OutboundQueue final : public ByteSource {
public:
    explicit OutboundQueue(std::size_t chunk_bytes = 64 * 1024);

    void append(std::span<const std::byte> bytes);
    /// Bytes queued.
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    /// Forgets everything queued (keeps the chunks for reuse).
    void clear();

    std::size_t gather(iovec* out, std::size_t max) const override;
    void consume(std::size_t n) override;

private:
    struct Chunk {
        std::unique_ptr<std::byte[]> data;
        std::size_t begin = 0;  // first unsent byte
        std::size_t end = 0;    // one past the last byte written
    };
    void add_chunk();
    void retire_front();

    std::size_t chunk_bytes_;
    std::size_t size_ = 0;
    std::vector<Chunk> chunks_;  // live chunks from head_ on
    std::size_t head_ = 0;
    std::vector<std::unique_ptr<std::byte[]>> spare_;  // at most kSpareChunks
};

/// Buffers handed to one sendmsg() call at most.
inline constexpr std::size_t kMaxSendBuffers = 16;

/// Sends from `source` to the stream socket `fd` without blocking (sendmsg
/// with MSG_DONTWAIT | MSG_NOSIGNAL, EINTR retried) until the source is empty
/// or the socket is full. Returns 0 (everything sent), -EAGAIN (the socket is
/// full: wait for POLLOUT; the rest stays queued), or the -errno of a failed
/// send (-EPIPE, -ECONNRESET, ...: the connection is unusable).
int send_from(int fd, ByteSource& source);

}  // namespace coreio::net
