// The few io_uring requests a loop needs (on liburing) to wait for several
// things and receive in the same system call. Waiting in
// epoll_wait() and then calling recv() costs two system calls per request
// where a device that only reads one socket pays one; one io_uring_enter()
// that waits for a pending recv (and for a poll of other fds) pays one too.
#pragma once

#include <linux/time_types.h>

#include <chrono>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <span>

#include "coreio/net/socket.hpp"

struct io_uring;
struct io_uring_sqe;

namespace coreio::net {

class Uring {
public:
    struct Completion {
        std::uint64_t key = 0;  // as given when the request was prepared
        int result = 0;         // the operation's return value or -errno
    };

    /// Sets up a ring of `entries` submissions; valid() is false where the
    /// kernel has no io_uring (or forbids it, or lacks the features used:
    /// Linux 5.7), and under Valgrind (it holds every thread while one waits
    /// in io_uring_enter, so a peer thread could never wake it).
    explicit Uring(unsigned entries);
    ~Uring();
    Uring(const Uring&) = delete;
    Uring& operator=(const Uring&) = delete;
    bool valid() const { return static_cast<bool>(ring_); }

    /// Prepare one request (sent with the next wait()); false when the
    /// submission queue is full.
    bool recv(int fd, void* buf, std::size_t len, std::uint64_t key);
    /// One-shot poll of `fd` for `events` (POLLIN, ...): completes with the revents.
    bool poll(int fd, unsigned events, std::uint64_t key);
    /// A timer that completes with -ETIME at `when` (steady_clock is CLOCK_MONOTONIC).
    bool timeout_at(std::chrono::steady_clock::time_point when, std::uint64_t key);
    /// Cancels the request prepared with `target` (it completes with -ECANCELED).
    bool cancel(std::uint64_t target, std::uint64_t key);

    /// Submits what was prepared and waits until a completion is there; one
    /// system call. Returns the number of completions stored in `out`, 0 when
    /// a signal interrupted the wait, or -errno.
    int wait(std::span<Completion> out);

private:
    io_uring_sqe* next_sqe();

    std::unique_ptr<io_uring> ring_;  // null when io_uring is not usable here
    __kernel_timespec when_{};        // timeout_at()'s time, read by the kernel at submission
};

}  // namespace coreio::net
