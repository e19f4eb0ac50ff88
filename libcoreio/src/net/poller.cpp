#include "coreio/net/poller.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>

namespace coreio::net {

namespace {
constexpr int kMaxEventsPerWait = 64;

epoll_event make_event(std::uint64_t key, unsigned interest) {
    epoll_event e{};
    e.events = ((interest & Poller::Read) ? EPOLLIN : 0u) | ((interest & Poller::Write) ? EPOLLOUT : 0u);
    e.data.u64 = key;
    return e;
}
}  // namespace

Poller::Poller() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

int Poller::watch(int fd, std::uint64_t key, unsigned interest) {
    epoll_event e = make_event(key, interest);
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) == 0 ? 0 : -errno;
}

int Poller::change(int fd, std::uint64_t key, unsigned interest) {
    epoll_event e = make_event(key, interest);
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &e) == 0 ? 0 : -errno;
}

void Poller::forget(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

int Poller::wait(std::span<Event> out, int timeout_ms) {
    epoll_event events[kMaxEventsPerWait];
    const int max = static_cast<int>(std::min<std::size_t>(out.size(), kMaxEventsPerWait));
    if (max == 0) return 0;
    const int n = ::epoll_wait(epoll_.get(), events, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; ++i) {
        const std::uint32_t ev = events[i].events;
        out[static_cast<std::size_t>(i)] = Event{events[i].data.u64, (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0,
                                                 (ev & (EPOLLOUT | EPOLLERR)) != 0};
    }
    return n;
}

}  // namespace coreio::net
