// Plain POSIX TCP on 127.0.0.1 for the bench's bare sides (bare device, bare
// VM peer, bare forwarder): what a program written without any library does,
// so that they measure the sockets and nothing else.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace coreio::bench {

inline sockaddr_in loopback_address(std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

inline void set_nodelay(int fd) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A listening socket on 127.0.0.1, any free port (stored in `port`).
/// Throws std::runtime_error naming `who` on failure.
inline int listen_loopback(std::uint16_t& port, const char* who) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string(who) + ": socket failed: " + std::strerror(errno));
    sockaddr_in sa = loopback_address(0);
    socklen_t len = sizeof sa;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
        const int e = errno;
        ::close(fd);
        throw std::runtime_error(std::string(who) + ": cannot listen: " + std::strerror(e));
    }
    port = ntohs(sa.sin_port);
    return fd;
}

/// A blocking TCP_NODELAY connection to 127.0.0.1:port, or -errno.
inline int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    const sockaddr_in sa = loopback_address(port);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        const int e = errno;
        ::close(fd);
        return -e;
    }
    set_nodelay(fd);
    return fd;
}

/// Sends all n bytes (blocking). 0, or -errno (-ECONNRESET for a closed peer).
inline int send_all(int fd, const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? -errno : -ECONNRESET;
        p += k;
        n -= static_cast<std::size_t>(k);
    }
    return 0;
}

}  // namespace coreio::bench
