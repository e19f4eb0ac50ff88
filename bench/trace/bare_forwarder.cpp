#include "bare_forwarder.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../loopback.hpp"

namespace coreio::bench {

BareForwarder::BareForwarder(std::uint16_t vm_port) : vm_port_(vm_port), buf_(64 * 1024) {
    listen_fd_ = listen_loopback(port_, "bare forwarder");
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0)
        throw std::runtime_error(std::string("bare forwarder: epoll: ") + std::strerror(errno));
    watch(listen_fd_);
    watch(wake_fd_);
    thread_ = std::thread([this] { run(); });
}

BareForwarder::~BareForwarder() {
    const std::uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof one) < 0) {
    }
    thread_.join();
    for (std::size_t fd = 0; fd < peer_.size(); ++fd)
        if (peer_[fd] >= 0) ::close(static_cast<int>(fd));
    ::close(listen_fd_);
    ::close(epoll_fd_);
    ::close(wake_fd_);
}

void BareForwarder::run() {
    epoll_event events[16];
    for (;;) {
        const int n = ::epoll_wait(epoll_fd_, events, 16, -1);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == wake_fd_) return;
            if (fd == listen_fd_)
                accept_one();
            else if (static_cast<std::size_t>(fd) < peer_.size() && peer_[fd] >= 0 && !forward(fd, peer_[fd])) {
                const int other = peer_[fd];  // one side closed: close both
                for (const int f : {fd, other}) {
                    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, f, nullptr);
                    ::close(f);
                    peer_[f] = -1;
                }
            }
        }
    }
}

// Accepts a device model's connection and opens its VM connection at once
// (blocking), so the VM sees connections in accept order.
void BareForwarder::accept_one() {
    const int down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (down < 0) return;
    const int up = connect_loopback(vm_port_);
    if (up < 0) {
        ::close(down);
        return;
    }
    const std::size_t need = static_cast<std::size_t>(std::max(down, up)) + 1;
    if (peer_.size() < need) peer_.resize(need, -1);
    peer_[down] = up;
    peer_[up] = down;
    set_nodelay(down);
    watch(down);
    watch(up);
}

void BareForwarder::watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
}

// One recv, its bytes out whole (blocking send: the bench's peers always read).
// False when `from` closed or either side failed.
bool BareForwarder::forward(int from, int to) {
    const ssize_t n = ::recv(from, buf_.data(), buf_.size(), MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    return n > 0 && send_all(to, buf_.data(), static_cast<std::size_t>(n)) == 0;
}

}  // namespace coreio::bench
