// coreio::Client: the TCP transport around a ClientSession.
//
// Threading: one lock (re-entrant, so handlers and completions may call back in)
// guards the session and the sockets. The loop thread holds it while it
// processes one batch of input; a call from any other thread takes it briefly
// and sends at once. A blocking DMA waits in poll() with the lock released.
#include "coreio/client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "coreio/client_session.hpp"
#include "trace_loader.hpp"

namespace coreio {

namespace {

constexpr std::size_t kRecvBufferSize = 256 * 1024;

/// A recursive mutex that a blocking wait can release completely and take back.
class ReentrantLock {
public:
    void lock() {
        const auto me = std::this_thread::get_id();
        if (owner_.load(std::memory_order_relaxed) == me) {
            ++depth_;
            return;
        }
        mu_.lock();
        owner_.store(me, std::memory_order_relaxed);
        depth_ = 1;
    }
    void unlock() {
        if (--depth_ == 0) {
            owner_.store(std::thread::id{}, std::memory_order_relaxed);
            mu_.unlock();
        }
    }
    /// Releases every level held by this thread; returns how many to retake.
    int release_all() {
        const int d = depth_;
        depth_ = 0;
        owner_.store(std::thread::id{}, std::memory_order_relaxed);
        mu_.unlock();
        return d;
    }
    void reacquire(int depth) {
        mu_.lock();
        owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        depth_ = depth;
    }

private:
    std::mutex mu_;
    std::atomic<std::thread::id> owner_{};
    int depth_ = 0;
};

/// One eventfd per thread that waits for a blocking DMA, created on first use.
struct ThreadWaker {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ~ThreadWaker() {
        if (fd >= 0) ::close(fd);
    }
};
int thread_wake_fd() {
    thread_local ThreadWaker w;
    return w.fd;
}
void signal_fd(int fd) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
}
void drain_fd(int fd) {
    std::uint64_t v;
    while (::read(fd, &v, sizeof v) > 0) {
    }
}

/// Splits "host[:port]" / "[v6]:port"; returns 0 or -EINVAL.
int parse_target(std::string_view target, std::string& host, std::string& port) {
    port = "4800";
    if (target.empty()) return -EINVAL;
    std::string_view h = target, p;
    if (target.front() == '[') {
        const auto close = target.find(']');
        if (close == std::string_view::npos) return -EINVAL;
        h = target.substr(1, close - 1);
        const auto rest = target.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return -EINVAL;
            p = rest.substr(1);
        }
    } else if (const auto colon = target.rfind(':');
               colon != std::string_view::npos && target.find(':') == colon) {
        h = target.substr(0, colon);
        p = target.substr(colon + 1);
    }
    if (h.empty()) return -EINVAL;
    if (target.find(':') != std::string_view::npos && target.front() != '[' && p.empty() &&
        target.find(':') == target.rfind(':'))
        return -EINVAL;  // "host:" with no port
    if (!p.empty()) {
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535) return -EINVAL;
        port.assign(p);
    }
    host.assign(h);
    return 0;
}

/// Opens one TCP connection (blocking connect), then TCP_NODELAY + non-blocking.
int open_connection(const std::string& host, const std::string& port, int& out_fd) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return -EINVAL;
    int err = ECONNREFUSED;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int rc;
        do {
            rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
        } while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            err = errno;
            ::close(fd);
            continue;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        out_fd = fd;
        ::freeaddrinfo(res);
        return 0;
    }
    ::freeaddrinfo(res);
    return -err;
}

}  // namespace

/// The Asio driver's state; shared with pending handlers so that they can see
/// the link was dropped (they never touch the Client after that).
struct AsioLink {
    explicit AsioLink(asio::io_context& io) : main(io), dma(io), wake(io) {}
    asio::posix::stream_descriptor main, dma, wake;
    bool active = true;
    bool writing[2] = {false, false};
    asio::posix::stream_descriptor& sd(int ch) { return ch == 0 ? main : dma; }
    /// Gives the fds back to us without closing them (we own them).
    void release() {
        active = false;
        for (auto* d : {&main, &dma, &wake}) {
            if (d->is_open()) d->release();
        }
    }
};

struct Client::Impl {
    explicit Impl(ClientOptions o)
        : options(std::move(o)),
          session(SessionOptions{options.log, options.max_frame_blocks, options.tap}),
          wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        rbuf[0].reset(new std::byte[kRecvBufferSize]);
        rbuf[1].reset(new std::byte[kRecvBufferSize]);
        session.set_backlog_handler([this](Channel c) { flush_backlog(static_cast<int>(c)); });
    }
    ~Impl() {
        if (wake_fd >= 0) ::close(wake_fd);
    }

    enum class State { Idle, Connected, Lost };

    ClientOptions options;
    ClientSession session;
    ReentrantLock lock;
    int fd[2] = {-1, -1};
    int wake_fd;                          // wakes a loop blocked in select/poll/Asio
    State state = State::Idle;
    int lost_error = 0;                   // why the connection ended (negative errno)
    std::thread::id batch_thread{};       // the thread processing input right now
    std::unique_ptr<std::byte[]> rbuf[2]; // one per channel: a handler may pump DMA mid-batch
    FrameTap* tap = nullptr;              // options.tap or the trace library's
    detail::TraceRecorder trace;          // opened from COREIO_TRACE (closed at disconnect)
    asio::io_context* io = nullptr;       // set by attach()
    std::function<void(int)> on_close;
    std::shared_ptr<AsioLink> link;

    int not_ready() const { return state == State::Lost ? lost_error : -ENOTCONN; }
    bool in_batch() const { return batch_thread == std::this_thread::get_id(); }

    void log(std::string_view m) const {
        if (options.log)
            options.log(m);
        else
            log_to_stderr(m);
    }

    /// Sends what the session queued for `ch`; keeps the rest for writability.
    void flush(int ch) {
        const auto c = static_cast<Channel>(ch);
        for (;;) {
            const auto p = session.pending(c);
            if (p.empty()) return;
            if (fd[ch] < 0) {
                session.consume(c, p.size());
                return;
            }
            const ssize_t n = ::send(fd[ch], p.data(), p.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                session.consume(c, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (!in_batch()) signal_fd(wake_fd);  // let the loop wait for writability
                return;
            }
            lose(-ECONNRESET);
            return;
        }
    }
    /// The session's queue for `ch` passed its limit (e.g. IRQ edges raised in a
    /// loop inside a handler): send all of it now, waiting for the socket, so
    /// memory stays bounded. On a dead socket the bytes are dropped; the next
    /// pump reports the loss (never lose() from inside the session).
    void flush_backlog(int ch) {
        const auto c = static_cast<Channel>(ch);
        for (auto p = session.pending(c); !p.empty(); p = session.pending(c)) {
            const ssize_t n = fd[ch] < 0 ? -1 : ::send(fd[ch], p.data(), p.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                session.consume(c, static_cast<std::size_t>(n));
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                pollfd w{fd[ch], POLLOUT, 0};
                ::poll(&w, 1, -1);
            } else if (!(n < 0 && errno == EINTR)) {
                session.consume(c, p.size());
            }
        }
    }
    void flush_all() {
        flush(0);
        if (state == State::Connected) flush(1);
    }
    /// Sends now unless this thread is processing a batch (then the batch's one send carries it).
    void after_command(int ch) {
        if (state == State::Connected && !in_batch()) flush(ch);
    }

    /// One recv on `ch` into its buffer, then the session handles every frame.
    void pump(int ch) {
        if (state != State::Connected) return;
        if (ch == 0 && session.in_handler()) return;  // MMIO input waits until the handler returns
        ssize_t n;
        do {
            n = ::recv(fd[ch], rbuf[ch].get(), kRecvBufferSize, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n > 0) {
            const int rc = session.receive(static_cast<Channel>(ch),
                                           std::span<const std::byte>(rbuf[ch].get(), static_cast<std::size_t>(n)));
            if (rc == -EPROTO) lose(-EPROTO);
            return;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        lose(-ECONNRESET);  // EOF or a socket error: the VM is gone
    }

    /// Handles readiness found by any loop; returns 0 or the connection's error.
    int process(bool main_ready, bool dma_ready, bool wake_ready) {
        if (state != State::Connected) return not_ready();
        const auto prev = batch_thread;
        batch_thread = std::this_thread::get_id();
        if (wake_ready) drain_fd(wake_fd);
        if (main_ready) pump(0);
        if (dma_ready) pump(1);
        if (state == State::Connected) flush_all();
        batch_thread = prev;
        return state == State::Connected ? 0 : lost_error;
    }

    /// The connection ended under us: fail DMA, close sockets, tell the tap and on_close.
    void lose(int err) {
        if (state != State::Connected) return;
        state = State::Lost;
        lost_error = err;
        session.connection_closed(Channel::Main);
        session.connection_closed(Channel::Dma);
        if (link) {
            // Asio objects belong to the io thread: release and close there.
            auto l = link;
            link.reset();
            l->active = false;
            const int f0 = fd[0], f1 = fd[1];
            auto cb = on_close;
            asio::post(*io, [l, f0, f1, cb, err] {
                l->release();
                ::close(f0);
                ::close(f1);
                if (cb) cb(err);
            });
        } else {
            close_fds();
        }
        fd[0] = fd[1] = -1;
        notify_connection(false);
    }

    void close_fds() {
        for (int& f : fd) {
            if (f >= 0) ::close(f);
            f = -1;
        }
    }

    void notify_connection(bool up) {
        if (tap == nullptr) return;
        tap->on_connection(Channel::Main, up);
        tap->on_connection(Channel::Dma, up);
    }

    // ---- Asio driver -----------------------------------------------------------

    void start_asio() {
        link = std::make_shared<AsioLink>(*io);
        link->main.assign(fd[0]);
        link->dma.assign(fd[1]);
        link->wake.assign(wake_fd);
        arm_read(link, 0);
        arm_read(link, 1);
        arm_wake(link);
        arm_writes();
    }

    void arm_read(const std::shared_ptr<AsioLink>& l, int ch) {
        l->sd(ch).async_wait(asio::posix::stream_descriptor::wait_read, [this, l, ch](const asio::error_code& ec) {
            if (ec || !l->active) return;
            std::lock_guard g(lock);
            if (!l->active) return;
            process(ch == 0, ch == 1, false);
            if (!l->active) return;
            arm_read(l, ch);
            arm_writes();
        });
    }

    void arm_wake(const std::shared_ptr<AsioLink>& l) {
        l->wake.async_wait(asio::posix::stream_descriptor::wait_read, [this, l](const asio::error_code& ec) {
            if (ec || !l->active) return;
            std::lock_guard g(lock);
            if (!l->active) return;
            process(false, false, true);
            if (!l->active) return;
            arm_wake(l);
            arm_writes();
        });
    }

    /// Waits for writability on each channel that still has bytes queued.
    void arm_writes() {
        if (!link) return;
        for (int ch = 0; ch < 2; ++ch) {
            if (link->writing[ch] || session.pending(static_cast<Channel>(ch)).empty()) continue;
            link->writing[ch] = true;
            auto l = link;
            l->sd(ch).async_wait(asio::posix::stream_descriptor::wait_write,
                                 [this, l, ch](const asio::error_code& ec) {
                                     l->writing[ch] = false;
                                     if (ec || !l->active) return;
                                     std::lock_guard g(lock);
                                     if (!l->active) return;
                                     process(false, false, false);
                                     arm_writes();
                                 });
        }
    }

    // ---- blocking DMA ----------------------------------------------------------

    int dma_blocking(Op op, unsigned mid, unsigned sid, std::uint64_t addr, std::byte* buf, std::size_t len,
                     unsigned flags) {
        struct Waiter {
            bool done = false;
            int result = 0;
            int efd;
            std::thread::id tid;
        } w{false, 0, thread_wake_fd(), std::this_thread::get_id()};
        if (w.efd < 0) return -ENOMEM;

        std::lock_guard g(lock);
        if (state != State::Connected) return not_ready();
        std::uint64_t handle = 0;
        const int rc = session.dma_start(
            op, mid, sid, addr, buf, len, flags,
            [&w](int r) {
                w.done = true;
                w.result = r;
                if (std::this_thread::get_id() != w.tid) signal_fd(w.efd);
            },
            &handle);
        if (rc != 0) return rc;
        drain_fd(w.efd);
        // The wait is a point where everything queued goes out, so that the VM
        // is not kept waiting for replies of the batch we are part of.
        flush_all();
        const bool timed = options.dma_timeout.count() > 0;
        const auto deadline = std::chrono::steady_clock::now() + options.dma_timeout;
        while (!w.done) {
            if (state != State::Connected) return not_ready();
            int timeout_ms = -1;
            if (timed) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) {
                    session.dma_cancel(handle);  // the buffer is never touched again
                    return -ETIMEDOUT;
                }
                timeout_ms = static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30));
            }
            pollfd pfd[2] = {{fd[1], static_cast<short>(POLLIN | (session.pending(Channel::Dma).empty() ? 0 : POLLOUT)), 0},
                             {w.efd, POLLIN, 0}};
            const int depth = lock.release_all();
            ::poll(pfd, 2, timeout_ms);
            lock.reacquire(depth);
            if (pfd[1].revents & POLLIN) drain_fd(w.efd);
            if (w.done) break;
            if (state != State::Connected) return not_ready();
            if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) pump(1);
            if (state == State::Connected) flush(1);
        }
        return w.result;
    }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() {
    disconnect();
}

int Client::connect(std::string_view target) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state == Impl::State::Connected) return -EISCONN;
    if (im.state == Impl::State::Lost) disconnect();
    std::string host, port;
    if (const int rc = parse_target(target, host, port); rc != 0) return rc;
    int fmain = -1, fdma = -1;
    if (const int rc = open_connection(host, port, fmain); rc != 0) return rc;
    if (const int rc = open_connection(host, port, fdma); rc != 0) {
        ::close(fmain);
        return rc;
    }
    im.session.reset();
    im.fd[0] = fmain;
    im.fd[1] = fdma;
    im.state = Impl::State::Connected;
    im.lost_error = 0;
    im.tap = im.options.tap;
    if (im.tap == nullptr) {
        im.tap = im.trace.open(target, im.options.log);
    }
    im.session.set_tap(im.tap);
    im.notify_connection(true);
    drain_fd(im.wake_fd);
    if (im.io != nullptr) im.start_asio();
    return 0;
}

void Client::disconnect() {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state == Impl::State::Idle) return;
    if (im.link) {  // documented: on the io thread or while it is not running
        im.link->release();
        im.link.reset();
    }
    const bool was_up = im.state == Impl::State::Connected;
    im.state = Impl::State::Idle;
    im.close_fds();
    im.session.reset();  // pending DMA completes with -ECONNRESET; claims are forgotten
    if (was_up) im.notify_connection(false);
    im.session.set_tap(nullptr);
    im.tap = nullptr;
    im.trace.close();
}

bool Client::connected() const {
    std::lock_guard g(impl_->lock);
    return impl_->state == Impl::State::Connected;
}

int Client::register_range(unsigned rid, MmioHandler& handler) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (rid >= kNumRanges) return -EINVAL;
    if (im.state != Impl::State::Connected) return im.not_ready();
    const int rc = im.session.claim(rid, handler);
    if (rc == 0) im.after_command(0);
    return rc;
}

int Client::irq_update(unsigned rid, unsigned line, bool level) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (rid >= kNumRanges || line >= kNumIrqLines) return -EINVAL;
    if (im.state != Impl::State::Connected) return im.not_ready();
    const int rc = im.session.irq_update(rid, line, level);
    if (rc == 0) im.after_command(0);
    return rc;
}

int Client::dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags,
                     DmaCompletion done) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return buf.empty() ? -EINVAL : im.not_ready();
    const int rc = im.session.dma_start(Op::Read, mid, sid, addr, buf.data(), buf.size(), flags, std::move(done));
    if (rc == 0) im.after_command(1);
    return rc;
}

int Client::dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf,
                      unsigned flags, DmaCompletion done) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return buf.empty() ? -EINVAL : im.not_ready();
    const int rc = im.session.dma_start(Op::WriteAck, mid, sid, addr, const_cast<std::byte*>(buf.data()),
                                        buf.size(), flags, std::move(done));
    if (rc == 0) im.after_command(1);
    return rc;
}

int Client::dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags) {
    if (buf.empty()) return -EINVAL;
    return impl_->dma_blocking(Op::Read, mid, sid, addr, buf.data(), buf.size(), flags);
}

int Client::dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf,
                      unsigned flags) {
    if (buf.empty()) return -EINVAL;
    return impl_->dma_blocking(Op::WriteAck, mid, sid, addr, const_cast<std::byte*>(buf.data()), buf.size(),
                               flags);
}

int Client::prepare_fds(int nfds, fd_set* readfds, fd_set* writefds) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return im.not_ready();
    for (int ch = 0; ch < 2; ++ch) {
        const int f = im.fd[ch];
        if (readfds) FD_SET(f, readfds);
        if (writefds && !im.session.pending(static_cast<Channel>(ch)).empty()) FD_SET(f, writefds);
        nfds = std::max(nfds, f + 1);
    }
    if (readfds) FD_SET(im.wake_fd, readfds);
    return std::max(nfds, im.wake_fd + 1);
}

int Client::process_fds(fd_set* readfds, fd_set* writefds) {
    (void)writefds;  // queued output is flushed on every call
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return im.not_ready();
    const bool m = readfds && FD_ISSET(im.fd[0], readfds);
    const bool d = readfds && FD_ISSET(im.fd[1], readfds);
    const bool w = readfds && FD_ISSET(im.wake_fd, readfds);
    return im.process(m, d, w);
}

int Client::run_for(long long usec) {
    auto& im = *impl_;
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::microseconds(usec < 0 ? 0 : usec);
    for (;;) {
        pollfd pfd[3];
        {
            std::lock_guard g(im.lock);
            if (im.state != Impl::State::Connected) return im.not_ready();
            for (int ch = 0; ch < 2; ++ch) {
                const bool out = !im.session.pending(static_cast<Channel>(ch)).empty();
                pfd[ch] = {im.fd[ch], static_cast<short>(POLLIN | (out ? POLLOUT : 0)), 0};
            }
            pfd[2] = {im.wake_fd, POLLIN, 0};
        }
        timespec ts{};
        timespec* tsp = nullptr;
        if (usec >= 0) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
            const long long ns = std::max<long long>(0, left.count());
            ts.tv_sec = static_cast<time_t>(ns / 1000000000);
            ts.tv_nsec = static_cast<long>(ns % 1000000000);
            tsp = &ts;
        }
        const int n = ::ppoll(pfd, 3, tsp, nullptr);
        if (n < 0 && errno != EINTR) return -errno;
        if (n > 0) {
            std::lock_guard g(im.lock);
            const short bad = POLLIN | POLLHUP | POLLERR;
            const int rc = im.process(pfd[0].revents & bad, pfd[1].revents & bad, pfd[2].revents & POLLIN);
            if (rc != 0) return rc;
        }
        if (usec >= 0 && std::chrono::steady_clock::now() >= deadline) return 0;
    }
}

void Client::attach(asio::io_context& io, std::function<void(int)> on_close) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.link) {
        im.link->release();
        im.link.reset();
    }
    im.io = &io;
    im.on_close = std::move(on_close);
    if (im.state == Impl::State::Connected) im.start_asio();
}

}  // namespace coreio
