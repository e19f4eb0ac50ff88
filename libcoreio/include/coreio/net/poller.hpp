// Readiness of many fds through one epoll instance. The instance's own fd is
// itself pollable (readable while any watched fd is ready), so a loop that
// owns a Poller can be driven from select(), poll() or an Asio
// io_context by watching that single fd.
#pragma once

#include <cstdint>
#include <span>

#include "coreio/net/socket.hpp"

namespace coreio::net {

class Poller {
public:
    enum Interest : unsigned { Read = 1, Write = 2 };

    struct Event {
        std::uint64_t key = 0;  // as given to watch()
        bool readable = false;  // also set on hang-up and error, so that a read sees them
        bool writable = false;
    };

    /// Creates the epoll instance; valid() tells whether that worked.
    Poller();
    bool valid() const { return static_cast<bool>(epoll_); }
    /// The epoll fd: readable while a watched fd is ready.
    int fd() const { return epoll_.get(); }

    /// Starts watching `fd` for `interest` (Read | Write; 0: errors only),
    /// level-triggered. Returns 0 or -errno.
    int watch(int fd, std::uint64_t key, unsigned interest);
    /// Changes what `fd` is watched for. Returns 0 or -errno.
    int change(int fd, std::uint64_t key, unsigned interest);
    /// Stops watching `fd` (do it before closing a fd that was dup()ed).
    void forget(int fd);

    /// Waits up to `timeout_ms` (-1: forever, 0: just look). Returns the
    /// number of events stored in `out`, 0 on timeout or EINTR, or -errno.
    int wait(std::span<Event> out, int timeout_ms);

private:
    UniqueFd epoll_;
};

}  // namespace coreio::net
