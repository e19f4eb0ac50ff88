#include "coreio/net/listener.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace coreio::net {

namespace {
bool is_resource_error(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }
}  // namespace

Listener::Listener(ListenerOptions options) : options_(std::move(options)) {}

int Listener::open(const HostPort& where, std::string* error) {
    fd_.reset();
    const auto fail = [&](int err, const std::string& why) {
        if (error) *error = "cannot listen on " + where.to_string() + ": " + why;
        return -err;
    };
    std::vector<SocketAddress> addrs;
    std::string why;
    if (const int rc = resolve(where, true, addrs, &why); rc != 0) return fail(-rc, why);
    int err = EADDRNOTAVAIL;
    for (const SocketAddress& a : addrs) {
        UniqueFd fd(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd) {
            err = errno;
            continue;
        }
        const int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), a.get(), a.length) != 0 || ::listen(fd.get(), options_.backlog) != 0) {
            err = errno;
            continue;
        }
        fd_ = std::move(fd);
        port_ = local_port(fd_.get());
        return 0;
    }
    return fail(err, std::strerror(err));
}

int Listener::accept(std::string* peer) {
    if (!fd_) return -EBADF;
    if (backoff().count() > 0) return -EAGAIN;
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        const int err = errno;
        if (is_resource_error(err)) {
            note_resource_error(err, Clock::now());
            return -err;
        }
        // EAGAIN, EINTR, and errors of the one connection (ECONNABORTED, EPROTO, EPERM, network errors)
        return err == EBADF || err == EINVAL || err == ENOTSOCK ? -err : -EAGAIN;
    }
    set_nodelay(fd);
    if (peer != nullptr) {
        SocketAddress a;
        std::memcpy(&a.storage, &from, sizeof from);
        a.length = len;
        *peer = a.to_string();
    }
    return fd;
}

std::chrono::milliseconds Listener::backoff() const {
    if (resume_at_ == Clock::time_point{}) return std::chrono::milliseconds(0);
    const auto left = resume_at_ - Clock::now();
    if (left <= Clock::duration::zero()) return std::chrono::milliseconds(0);
    // Rounded up, so that a loop sleeping this long does not wake early and find it non-zero.
    return std::chrono::ceil<std::chrono::milliseconds>(left);
}

void Listener::note_resource_error(int err, Clock::time_point now) {
    ++resource_errors_;
    resume_at_ = now + options_.backoff;
    if (logged_ && now - last_log_ < options_.log_interval) {
        ++unlogged_errors_;
        return;
    }
    if (options_.log) {
        std::string line = "cannot accept a connection on port " + std::to_string(port_) + ": " +
                           std::strerror(err) + "; pausing accepts for " + std::to_string(options_.backoff.count()) +
                           " ms (existing connections are still served)";
        if (unlogged_errors_ > 0) line += "; " + std::to_string(unlogged_errors_) + " more such failures since the last message";
        options_.log(line);
    }
    logged_ = true;
    last_log_ = now;
    unlogged_errors_ = 0;
}

}  // namespace coreio::net
