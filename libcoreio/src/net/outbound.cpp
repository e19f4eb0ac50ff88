#include "coreio/net/outbound.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace coreio::net {

namespace {
// Chunks kept after a burst drains: enough to absorb the next one without
// allocating, few enough that an idle connection holds little memory.
constexpr std::size_t kSpareChunks = 2;
}  // namespace

OutboundQueue::OutboundQueue(std::size_t chunk_bytes) : chunk_bytes_(std::max<std::size_t>(chunk_bytes, 64)) {}

void OutboundQueue::add_chunk() {
    Chunk c;
    if (!spare_.empty()) {
        c.data = std::move(spare_.back());
        spare_.pop_back();
    } else {
        c.data.reset(new std::byte[chunk_bytes_]);
    }
    chunks_.push_back(std::move(c));
}

void OutboundQueue::append(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
        if (head_ == chunks_.size() || chunks_.back().end == chunk_bytes_) add_chunk();
        Chunk& c = chunks_.back();
        const std::size_t n = std::min(bytes.size(), chunk_bytes_ - c.end);
        std::memcpy(c.data.get() + c.end, bytes.data(), n);
        c.end += n;
        size_ += n;
        bytes = bytes.subspan(n);
    }
}

void OutboundQueue::retire_front() {
    Chunk& c = chunks_[head_++];
    if (spare_.size() < kSpareChunks) spare_.push_back(std::move(c.data));
    c.data.reset();
    if (head_ == chunks_.size()) {
        chunks_.clear();
        head_ = 0;
    } else if (head_ >= 64 && head_ * 2 >= chunks_.size()) {  // keep the vector from growing without bound
        chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
}

void OutboundQueue::clear() {
    while (head_ < chunks_.size()) retire_front();
    size_ = 0;
}

std::size_t OutboundQueue::gather(iovec* out, std::size_t max) const {
    std::size_t n = 0;
    for (std::size_t i = head_; i < chunks_.size() && n < max; ++i) {
        const Chunk& c = chunks_[i];
        if (c.end == c.begin) continue;
        out[n++] = iovec{c.data.get() + c.begin, c.end - c.begin};
    }
    return n;
}

void OutboundQueue::consume(std::size_t n) {
    n = std::min(n, size_);
    size_ -= n;
    while (n > 0) {
        Chunk& c = chunks_[head_];
        const std::size_t k = std::min(n, c.end - c.begin);
        c.begin += k;
        n -= k;
        if (c.begin == c.end) retire_front();
    }
}

int send_from(int fd, ByteSource& source) {
    iovec iov[kMaxSendBuffers];
    for (;;) {
        const std::size_t count = source.gather(iov, kMaxSendBuffers);
        if (count == 0) return 0;
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = count;
        const ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            source.consume(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -EAGAIN;
        return n < 0 ? -errno : -EPIPE;
    }
}

}  // namespace coreio::net
