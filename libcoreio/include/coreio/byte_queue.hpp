// One channel's outbound bytes inside a session (ClientSession, VmSession):
// frames are appended at the tail, the transport drains from the head.
// Storage is kept between batches and grows by doubling from nothing (a
// session that sends little pays for little: fuzzing makes one per exec), so
// steady traffic allocates nothing and appending a frame is a bounds check
// and a memcpy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

namespace coreio {

class ByteQueue {
public:
    /// Room for `n` more bytes at the tail, counted as queued: the caller fills them.
    std::byte* append(std::size_t n) {
        if (cap_ - tail_ < n) make_room(n);
        std::byte* p = bytes_.data() + tail_;
        tail_ += n;
        return p;
    }
    /// The queued bytes, oldest first.
    std::span<const std::byte> pending() const { return {bytes_.data() + head_, tail_ - head_}; }
    std::size_t size() const { return tail_ - head_; }
    bool empty() const { return tail_ == head_; }
    /// Drops the first `n` queued bytes (sent).
    void consume(std::size_t n) {
        head_ += std::min(n, size());
        if (head_ == tail_) head_ = tail_ = 0;
    }
    void clear() { head_ = tail_ = 0; }
    /// Moves the queued bytes into `into` without copying them: the queue
    /// takes `into`'s old storage and is empty afterwards.
    void take(std::vector<std::byte>& into) {
        if (head_ > 0) std::memmove(bytes_.data(), bytes_.data() + head_, size());
        bytes_.resize(size());  // shrinks: no allocation
        into.clear();
        into.swap(bytes_);
        cap_ = bytes_.size();
        head_ = tail_ = 0;
    }

private:
    // Slides the unsent bytes to the front, then doubles the storage if that
    // is not enough (the new part is value-initialised once, not per frame).
    void make_room(std::size_t n) {
        if (head_ > 0) {
            std::memmove(bytes_.data(), bytes_.data() + head_, tail_ - head_);
            tail_ -= head_;
            head_ = 0;
            if (cap_ - tail_ >= n) return;
        }
        bytes_.resize(std::max({cap_ * 2, tail_ + n, std::size_t{1024}}));
        cap_ = bytes_.size();
    }

    std::vector<std::byte> bytes_;  // [head_, tail_) is queued
    std::size_t cap_ = 0;           // bytes_.size(), kept apart: append() reads one word, not two pointers
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
};

}  // namespace coreio
