// A listening TCP socket whose accept survives running out of resources.
//
// When accept() fails with EMFILE, ENFILE, ENOBUFS or ENOMEM the connection
// stays in the kernel's backlog and the listening fd stays readable, so a
// loop that retried at once would spin. The Listener instead backs off:
// accept() returns -EAGAIN without a system call until backoff() has passed,
// and the owner stops watching fd() for that long (its other connections are
// served meanwhile). The failure is logged once per log interval, with a
// count of the failures since the last line.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "coreio/net/host_port.hpp"
#include "coreio/net/socket.hpp"

namespace coreio::net {

struct ListenerOptions {
    /// Receives the back-off messages; empty: nothing is logged.
    std::function<void(std::string_view)> log;
    /// How long accepting pauses after a resource error.
    std::chrono::milliseconds backoff{100};
    /// At most one log line per this interval.
    std::chrono::milliseconds log_interval{1000};
    int backlog = 128;
};

class Listener {
public:
    using Clock = std::chrono::steady_clock;

    explicit Listener(ListenerOptions options = {});

    /// Binds to `where` (port 0: any free port; hosts may be names, the first
    /// address that binds wins) with SO_REUSEADDR, and listens; the fd is
    /// non-blocking and close-on-exec. Returns 0 or -errno, and on failure
    /// `error` gets "cannot listen on HOST:PORT: <reason>".
    int open(const HostPort& where, std::string* error = nullptr);
    void close() { fd_.reset(); }
    bool is_open() const { return static_cast<bool>(fd_); }
    int fd() const { return fd_.get(); }
    /// The port listened on (useful after binding port 0).
    std::uint16_t port() const { return port_; }

    /// Takes one pending connection. Returns its fd (non-blocking,
    /// close-on-exec, TCP_NODELAY; the caller owns it), or -EAGAIN when none
    /// is pending, while backing off, or after a transient error such as a
    /// connection aborted before it was taken (call again when fd() is
    /// readable and backoff() is zero), or -EBADF when not open. A resource
    /// error (EMFILE, ENFILE, ENOBUFS, ENOMEM) starts a back-off and is
    /// returned once, as -errno.
    int accept(std::string* peer = nullptr);

    /// Time left before accept() may be tried again; zero when not backing off.
    std::chrono::milliseconds backoff() const;
    /// Resource errors seen so far (each one started a back-off).
    std::uint64_t resource_errors() const { return resource_errors_; }

private:
    void note_resource_error(int err, Clock::time_point now);

    ListenerOptions options_;
    UniqueFd fd_;
    std::uint16_t port_ = 0;
    Clock::time_point resume_at_{};
    Clock::time_point last_log_{};
    bool logged_ = false;
    std::uint64_t resource_errors_ = 0;
    std::uint64_t unlogged_errors_ = 0;
};

}  // namespace coreio::net
