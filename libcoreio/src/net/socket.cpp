#include "coreio/net/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace coreio::net {

void UniqueFd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

std::string SocketAddress::to_string() const {
    char text[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
        ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
    }
    if (family() == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&storage);
        ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    return "?";
}

int resolve(const HostPort& where, bool passive, std::vector<SocketAddress>& out, std::string* error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(where.port);
    const int rc = ::getaddrinfo(where.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || res == nullptr) {
        if (error) *error = "cannot resolve '" + where.host + "': " + ::gai_strerror(rc);
        return rc == EAI_MEMORY ? -ENOMEM : -EINVAL;
    }
    out.clear();
    for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
        SocketAddress a;
        std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
        a.length = ai->ai_addrlen;
        out.push_back(a);
    }
    ::freeaddrinfo(res);
    return 0;
}

void set_nodelay(int fd) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int set_nonblocking(int fd, bool on) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    const int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (want != flags && ::fcntl(fd, F_SETFL, want) != 0) return -errno;
    return 0;
}

int connect_tcp(const HostPort& where) {
    std::vector<SocketAddress> addrs;
    if (const int rc = resolve(where, false, addrs); rc != 0) return rc;
    int err = ECONNREFUSED;
    for (const SocketAddress& a : addrs) {
        UniqueFd fd(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) {
            err = errno;
            continue;
        }
        int rc;
        do {
            rc = ::connect(fd.get(), a.get(), a.length);
        } while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            err = errno;
            continue;
        }
        set_nodelay(fd.get());
        if (const int e = set_nonblocking(fd.get(), true); e != 0) return e;
        return fd.release();
    }
    return -err;
}

int start_connect(const SocketAddress& address) {
    UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return -errno;
    set_nodelay(fd.get());
    if (::connect(fd.get(), address.get(), address.length) != 0 && errno != EINPROGRESS && errno != EINTR)
        return -errno;
    return fd.release();
}

int finish_connect(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
    return -err;
}

void close_with_reset(UniqueFd& fd) {
    if (!fd) return;
    const linger l{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    fd.reset();
}

std::string peer_name(int fd) {
    SocketAddress a;
    a.length = sizeof a.storage;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) return "?";
    return a.to_string();
}

std::uint16_t local_port(int fd) {
    sockaddr_storage s{};
    socklen_t len = sizeof s;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len) != 0) return 0;
    if (s.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&s)->sin_port);
    if (s.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&s)->sin6_port);
    return 0;
}

}  // namespace coreio::net
