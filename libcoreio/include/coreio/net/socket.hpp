// TCP sockets as CoreIO uses them: an owning fd, name resolution, connecting
// (blocking or not) with TCP_NODELAY set, and printable addresses.
// Errors are negative errno values.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "coreio/net/host_port.hpp"

namespace coreio::net {

/// Owns one file descriptor (closed on destruction); -1 when empty.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    /// Gives up ownership without closing.
    int release() {
        const int f = fd_;
        fd_ = -1;
        return f;
    }
    /// Closes the held fd (if any) and takes `fd`.
    void reset(int fd = -1);

private:
    int fd_ = -1;
};

/// One resolved socket address.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
    int family() const { return storage.ss_family; }
    /// "1.2.3.4:5" or "[::1]:5".
    std::string to_string() const;
};

/// Resolves `where` for a TCP stream (names through getaddrinfo; `passive`
/// for binding, where an empty host is not allowed either). Returns 0,
/// -EINVAL when the name does not resolve (`error` says why), or -ENOMEM.
int resolve(const HostPort& where, bool passive, std::vector<SocketAddress>& out, std::string* error = nullptr);

/// Sets TCP_NODELAY (PROTOCOL.md: on both connections).
void set_nodelay(int fd);
/// Sets or clears O_NONBLOCK. Returns 0 or -errno.
int set_nonblocking(int fd, bool on);

/// Opens a TCP connection to `where`, trying each resolved address in turn
/// with a blocking connect; the socket is then TCP_NODELAY, non-blocking and
/// close-on-exec. Returns the fd, or -EINVAL (the name does not resolve), or
/// the last connect error (e.g. -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH).
int connect_tcp(const HostPort& where);

/// Starts a non-blocking connect to `address`: returns the fd (non-blocking,
/// close-on-exec, TCP_NODELAY) with the connect under way or done, or -errno.
/// Wait for the fd to become writable, then call finish_connect().
int start_connect(const SocketAddress& address);
/// The result of a connect started by start_connect(): 0 or -errno (SO_ERROR).
int finish_connect(int fd);

/// Closes with a reset (SO_LINGER 0) instead of FIN: for mirroring a peer's
/// reset, and leaves no TIME_WAIT behind.
void close_with_reset(UniqueFd& fd);

/// The address of the peer of a connected socket ("?" when unknown).
std::string peer_name(int fd);
/// The local port of a bound socket (0 when unknown).
std::uint16_t local_port(int fd);

}  // namespace coreio::net
