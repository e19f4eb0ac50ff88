// coreio::Client: the TCP transport around a ClientSession, built from the
// transport kit (coreio/net/).
//
// Threading: one lock (re-entrant, so handlers and completions may call back in)
// guards the connection state and the sockets. The loop thread holds it while it
// processes one batch of input; a call from any other thread takes it briefly
// and sends at once. A blocking DMA waits in poll() with the lock released.
//
// Every connect() gets a fresh Connection (session + receive buffers). A batch
// keeps its Connection alive while it runs, so that when another thread
// disconnects and reconnects while a handler waits in a blocking DMA, the
// handler's reply and the rest of its batch stay in the old, closed session
// instead of reaching the new connection.
//
// Loops: the sockets and a wake eventfd sit in one epoll set (net::Poller)
// whose fd is the one thing a loop waits on: run_for(), the select() pair
// prepare_fds()/process_fds(), and the header-only Asio driver (asio_driver.hpp)
// through event_fd()/process_events(). run_for() (when io_uring works) instead
// keeps a recv on main pending in a ring beside a poll of that epoll fd: one
// system call per request waits and receives (see run_ring()).
#include "coreio/client.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "coreio/client_session.hpp"
#include "coreio/net/host_port.hpp"
#include "coreio/net/outbound.hpp"
#include "coreio/net/poller.hpp"
#include "coreio/net/socket.hpp"
#include "coreio/net/uring.hpp"
#include "trace_loader.hpp"

namespace coreio {

namespace {

constexpr std::size_t kRecvBufferSize = 256 * 1024;
constexpr std::uint64_t kWakeKey = 2;  // poller keys: 0 main, 1 DMA, 2 wake
// run_for()'s ring requests: the recv on main, the poll of the poller's fd, cancels.
constexpr std::uint64_t kRingRecv = 1, kRingPoll = 2, kRingTimeout = 3, kRingCancel = 4;
// run_for() waits in the ring from this long on (or forever); a shorter call
// waits in epoll_wait(): setting the ring up and cancelling costs more than it saves.
constexpr long long kRingMinUsec = 1000;
constexpr int kRingGaveUp = 1;   // run_ring(): the ring cannot wait for main here, use epoll
constexpr int kRingTimeUp = 2;   // run_ring(): the deadline's timer fired

/// COREIO_IO_URING=0 keeps run_for() on epoll (e.g. where a seccomp filter kills io_uring users).
bool ring_allowed_by_env() {
    const char* v = std::getenv("COREIO_IO_URING");
    return v == nullptr || std::strcmp(v, "0") != 0;
}

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


/// What the session queued for one channel, as the kit's send loop sees it.
class SessionOutput final : public net::ByteSource {
public:
    SessionOutput(ClientSession& s, Channel ch) : s_(s), ch_(ch) {}
    std::size_t gather(iovec* out, std::size_t max) const override {
        const auto p = s_.pending(ch_);
        if (p.empty() || max == 0) return 0;
        out[0] = iovec{const_cast<std::byte*>(p.data()), p.size()};
        return 1;
    }
    void consume(std::size_t n) override { s_.consume(ch_, n); }

private:
    ClientSession& s_;
    Channel ch_;
};


}  // namespace

/// One connect(): the session and a receive buffer per channel (a handler may
/// pump DMA input mid-batch, so the channels do not share one).
struct Connection {
    explicit Connection(const SessionOptions& o) : session(o) {
        // Not zeroed: touching 512 KiB per connection cost the TCP replay
        // bench 3-5%. A recv through io_uring writes it unseen by memory
        // checkers, but Valgrind gets epoll (net::Uring declines under it).
        for (auto& b : rbuf) b.reset(new std::byte[kRecvBufferSize]);
    }
    ClientSession session;
    std::unique_ptr<std::byte[]> rbuf[2];
};

// Hidden: only Client itself is the library's ABI (methods defined out of line would be exported otherwise).
struct __attribute__((visibility("hidden"))) Client::Impl {
    explicit Impl(ClientOptions o) : options(std::move(o)), wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (wake_fd >= 0) poller.watch(wake_fd, kWakeKey, net::Poller::Read);
    }
    ~Impl() {
        if (wake_fd >= 0) ::close(wake_fd);
    }

    enum class State { Idle, Connected, Lost };

    ClientOptions options;
    ReentrantLock lock;
    std::shared_ptr<Connection> conn;     // null when Idle
    net::UniqueFd fd[2];
    bool watching_write[2] = {false, false};
    int dma_waiters = 0;                  // threads in a blocking DMA wait (they read the DMA socket)
    net::Poller poller;                   // main, DMA and wake_fd
    int wake_fd;                          // wakes a loop blocked in select/poll/Asio
    State state = State::Idle;
    int lost_error = 0;                   // why the connection ended (negative errno)
    std::thread::id batch_thread{};       // the thread processing input right now
    FrameTap* tap = nullptr;              // options.tap or the trace library's
    detail::TraceRecorder trace;          // opened from COREIO_TRACE (closed at disconnect)

    // run_for()'s io_uring wait (see run_ring()): one io_uring_enter() per
    // request waits for main's input and receives it, where epoll_wait() then
    // recv() costs two system calls. The poller's fd is polled in the same
    // ring, so DMA input, write room and wake-ups reach the loop as before.
    std::unique_ptr<net::Uring> ring;     // made by the first run_for() that uses it
    bool ring_unusable = false;           // no io_uring here (or COREIO_IO_URING=0)
    bool ring_active = false;             // a run_for() receives main through the ring (epoll skips main's input)
    bool ring_recv_pending = false;       // its recv on main is prepared or in flight
    bool ring_poll_pending = false;       // its poll of the poller's fd likewise
    bool ring_timeout_pending = false;    // its deadline's timer likewise
    std::shared_ptr<Connection> ring_conn;  // whose buffer that recv fills
    net::UniqueFd ring_deferred_close;    // main, closed while that recv may still name its fd

    int not_ready() const { return state == State::Lost ? lost_error : -ENOTCONN; }
    bool in_batch() const { return batch_thread == std::this_thread::get_id(); }
    ClientSession& session() { return conn->session; }

    void log(std::string_view m) const {
        if (options.log)
            options.log(m);
        else
            log_to_stderr(m);
    }

    int open(std::string_view target);
    void close_connection();
    void flush(int ch);
    void flush_all() {
        flush(0);
        if (state == State::Connected) flush(1);
    }
    /// Sends now unless this thread is processing a batch (then the batch's one send carries it).
    void after_command(int ch) {
        if (state == State::Connected && !in_batch()) flush(ch);
    }
    void watch_write(int ch, bool on);
    void update_interest(int ch);
    void pump(Connection& c, int ch);
    int process(bool main_ready, bool dma_ready, bool wake_ready);
    int process_ready(std::span<const net::Poller::Event> events);
    int process_events();
    void lose(int err);
    void close_fds();
    void notify_connection(bool up);
    void flush_backlog(Connection& c, Channel ch);
    int dma_blocking(Op op, unsigned mid, unsigned sid, std::uint64_t addr, std::byte* buf, std::size_t len,
                     unsigned flags);
    struct DmaWaiter;
    int await_dma(const std::shared_ptr<Connection>& c, DmaWaiter& w, std::uint64_t handle);
    short poll_dma(Connection& c, DmaWaiter& w, int timeout_ms);
    void received(Connection& c, int ch, ssize_t n);
    unsigned main_read_interest() const { return ring_active ? 0u : net::Poller::Read; }
    bool claim_ring(long long usec);
    void release_ring();
    int run_ring(long long usec, std::chrono::steady_clock::time_point deadline);
    int ring_wait(std::span<net::Uring::Completion> out);
    int on_ring_completion(const net::Uring::Completion& c);
    int on_ring_recv(int result);
};

/// Opens main then DMA, each with TCP_NODELAY, and starts a fresh session.
int Client::Impl::open(std::string_view target) {
    net::HostPort where;
    if (!net::parse_host_port(target, where).empty()) return -EINVAL;
    const int m = net::connect_tcp(where);
    if (m < 0) return m;
    net::UniqueFd fmain(m);
    const int d = net::connect_tcp(where);
    if (d < 0) return d;
    fd[0] = std::move(fmain);
    fd[1].reset(d);
    for (int ch = 0; ch < 2; ++ch) {
        poller.watch(fd[ch].get(), static_cast<std::uint64_t>(ch), ch == 0 ? main_read_interest() : net::Poller::Read);
        watching_write[ch] = false;
    }
    tap = options.tap;
    if (tap == nullptr) tap = trace.open(target, options.log);
    conn = std::make_shared<Connection>(
        SessionOptions{options.log, options.max_frame_blocks, tap, &std::chrono::steady_clock::now, true});
    conn->session.set_backlog_handler([this, c = conn.get()](Channel ch) { flush_backlog(*c, ch); });
    state = State::Connected;
    lost_error = 0;
    notify_connection(true);
    drain_fd(wake_fd);
    return 0;
}

/// Ends the current connection (from any state): sockets closed, DMA failed,
/// registrations forgotten, the session closed for a batch still inside it.
void Client::Impl::close_connection() {
    const bool was_up = state == State::Connected;
    state = State::Idle;
    close_fds();
    if (conn) {
        std::shared_ptr<Connection> old = std::move(conn);
        old->session.set_tap(nullptr);
        old->session.reset();  // pending DMA completes with -ECONNRESET; claims are forgotten
        // A batch on another thread may still be inside this session (a handler
        // in a blocking DMA): closed, it drops that handler's reply and the
        // rest of the batch. reset() left no partial frame, so nothing is logged.
        old->session.connection_closed(Channel::Main);
        old->session.connection_closed(Channel::Dma);
    }
    if (was_up) notify_connection(false);
    signal_fd(wake_fd);  // a loop waiting on another thread returns (-ENOTCONN)
    tap = nullptr;
    trace.close();
}

/// Sends what the session queued for `ch`; keeps the rest for writability.
void Client::Impl::flush(int ch) {
    if (state != State::Connected) return;
    SessionOutput out(session(), static_cast<Channel>(ch));
    const int rc = net::send_from(fd[ch].get(), out);
    if (rc == 0) {
        if (watching_write[ch]) watch_write(ch, false);
    } else if (rc == -EAGAIN) {
        if (!watching_write[ch]) watch_write(ch, true);  // the loop goes on when the socket drains
    } else {
        lose(-ECONNRESET);
    }
}

void Client::Impl::watch_write(int ch, bool on) {
    watching_write[ch] = on;
    update_interest(ch);
}

/// What the loop's poller watches `ch` for. While a blocking DMA waits, that
/// thread reads and writes the DMA socket itself: a loop woken by the same
/// replies would only fight it for the lock (two wake-ups per batch, not one).
void Client::Impl::update_interest(int ch) {
    if (state != State::Connected) return;
    unsigned interest = (ch == 0 ? main_read_interest() : net::Poller::Read) |
                        (watching_write[ch] ? net::Poller::Write : 0u);
    if (ch == 1 && dma_waiters > 0) interest = 0;
    poller.change(fd[ch].get(), static_cast<std::uint64_t>(ch), interest);
}

/// One recv on `ch` into its buffer, then the session handles every frame.
void Client::Impl::pump(Connection& c, int ch) {
    if (state != State::Connected || conn.get() != &c) return;
    if (ch == 0 && c.session.in_handler()) return;  // MMIO input waits until the handler returns
    ssize_t n;
    do {
        n = ::recv(fd[ch].get(), c.rbuf[ch].get(), kRecvBufferSize, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    received(c, ch, n < 0 ? -errno : n);
}

/// What one recv on `ch` returned (bytes now in c.rbuf[ch], or -errno): the
/// session handles every frame; end of stream or a socket error loses the connection.
void Client::Impl::received(Connection& c, int ch, ssize_t n) {
    if (n > 0) {
        const int rc = c.session.receive(static_cast<Channel>(ch),
                                         std::span<const std::byte>(c.rbuf[ch].get(), static_cast<std::size_t>(n)));
        if (rc == -EPROTO && conn.get() == &c) lose(-EPROTO);
        return;
    }
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR) return;
    lose(-ECONNRESET);  // EOF or a socket error: the VM is gone
}

/// Handles readiness found by any loop; returns 0 or the connection's error.
int Client::Impl::process(bool main_ready, bool dma_ready, bool wake_ready) {
    if (wake_ready) drain_fd(wake_fd);
    if (state != State::Connected) return not_ready();
    const std::shared_ptr<Connection> c = conn;  // this batch's session, even if a reconnect replaces it
    const auto prev = batch_thread;
    batch_thread = std::this_thread::get_id();
    if (main_ready) pump(*c, 0);
    if (dma_ready) pump(*c, 1);
    if (state == State::Connected) flush_all();
    c->session.deliver_tap();  // recorded after the replies went out, off their path
    batch_thread = prev;
    return state == State::Connected ? 0 : not_ready();
}

/// Handles events a wait on the poller returned (taken without the lock: stale ones are harmless).
int Client::Impl::process_ready(std::span<const net::Poller::Event> events) {
    bool ready[3] = {false, false, false};
    for (const auto& e : events)
        if (e.readable && e.key <= kWakeKey) ready[e.key] = true;
    if (ring_active) ready[0] = false;  // hang-up or error on main: the ring's recv sees it, in order
    return process(ready[0], ready[1], ready[2]);
}

int Client::Impl::process_events() {
    net::Poller::Event ev[4];
    const int n = poller.wait(ev, 0);
    if (n < 0) return n;
    return process_ready(std::span(ev, static_cast<std::size_t>(n)));
}

/// The connection ended under us: fail DMA, close sockets, tell the tap and wake the loop.
void Client::Impl::lose(int err) {
    if (state != State::Connected) return;
    state = State::Lost;
    lost_error = err;
    session().connection_closed(Channel::Main);
    session().connection_closed(Channel::Dma);
    close_fds();
    notify_connection(false);
    signal_fd(wake_fd);  // a loop waiting elsewhere (e.g. Asio) learns of it
}

void Client::Impl::close_fds() {
    for (auto& f : fd) {
        if (f) poller.forget(f.get());
        if (&f == &fd[0] && f && ring_recv_pending) {
            // run_for()'s recv names this fd (maybe not submitted yet): the
            // socket is shut down, which ends that recv, and the number is
            // kept until it has, so that it cannot name a new connection's socket.
            ::shutdown(f.get(), SHUT_RDWR);
            ring_deferred_close = std::move(f);
        }
        f.reset();
    }
}

void Client::Impl::notify_connection(bool up) {
    if (tap == nullptr) return;
    tap->on_connection(Channel::Main, up);
    tap->on_connection(Channel::Dma, up);
}

/// The session's queue for `ch` passed its limit (e.g. IRQ edges raised in a
/// loop inside a handler): sends all of it now, waiting for the socket, so
/// memory stays bounded and every edge goes out in order. Runs under the lock,
/// inside the session. On an old or dead connection the bytes are dropped; the
/// next pump reports the loss (never lose() from inside the session).
void Client::Impl::flush_backlog(Connection& c, Channel ch) {
    const int i = static_cast<int>(ch);
    SessionOutput out(c.session, ch);
    for (;;) {
        const int rc = conn.get() == &c && state == State::Connected ? net::send_from(fd[i].get(), out) : -ENOTCONN;
        if (rc == 0) return;
        if (rc != -EAGAIN) {
            c.session.consume(ch, c.session.pending(ch).size());
            return;
        }
        pollfd w{fd[i].get(), POLLOUT, 0};
        ::poll(&w, 1, 1000);
    }
}

/// A blocking DMA call's completion, set by the session's callback (on this
/// thread or, through efd, on another one).
struct Client::Impl::DmaWaiter {
    bool done = false;
    int result = 0;
    int efd;
    std::thread::id tid;
};

int Client::Impl::dma_blocking(Op op, unsigned mid, unsigned sid, std::uint64_t addr, std::byte* buf,
                               std::size_t len, unsigned flags) {
    DmaWaiter w{false, 0, thread_wake_fd(), std::this_thread::get_id()};
    if (w.efd < 0) return -ENOMEM;

    std::lock_guard g(lock);
    if (state != State::Connected) return not_ready();
    const std::shared_ptr<Connection> c = conn;  // the transfer belongs to this connection
    std::uint64_t handle = 0;
    const int rc = c->session.dma_start(
        op, mid, sid, addr, buf, len, flags,
        [&w](int r) {
            w.done = true;
            w.result = r;
            if (std::this_thread::get_id() != w.tid) signal_fd(w.efd);
        },
        &handle);
    if (rc != 0) return rc;
    drain_fd(w.efd);
    struct WaiterCount {  // this thread reads the DMA socket until it returns
        Impl& im;
        explicit WaiterCount(Impl& i) : im(i) {
            if (++im.dma_waiters == 1) im.update_interest(1);
        }
        ~WaiterCount() {
            if (--im.dma_waiters == 0) im.update_interest(1);
        }
    } counted{*this};
    // The wait is a point where everything queued goes out, so that the VM
    // is not kept waiting for replies of the batch we are part of.
    flush_all();
    return await_dma(c, w, handle);
}

/// Reads the DMA socket of `c` until `w` completes; ends early when that
/// connection is gone (lost, or replaced by a reconnect) or, with a
/// dma_timeout, when it passes (the transfer is then cancelled).
int Client::Impl::await_dma(const std::shared_ptr<Connection>& c, DmaWaiter& w, std::uint64_t handle) {
    const bool timed = options.dma_timeout.count() > 0;
    const auto deadline = std::chrono::steady_clock::now() + options.dma_timeout;
    const auto gone = [&] { return conn != c || state != State::Connected; };
    while (!w.done) {
        if (gone()) return conn == c ? not_ready() : -ECONNRESET;
        int timeout_ms = -1;
        if (timed) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                c->session.dma_cancel(handle);  // the buffer is never touched again
                return -ETIMEDOUT;
            }
            timeout_ms = static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30));
        }
        const short dma_events = poll_dma(*c, w, timeout_ms);
        if (w.done) break;
        if (gone()) return conn == c ? not_ready() : -ECONNRESET;
        if (dma_events & (POLLIN | POLLHUP | POLLERR)) pump(*c, 1);
        if (state == State::Connected) flush(1);
        c->session.deliver_tap();
    }
    return w.result;
}

/// Waits (the lock released) for the DMA socket, or for room on it while
/// replies are queued, or for w's wake-up; returns the DMA socket's revents.
short Client::Impl::poll_dma(Connection& c, DmaWaiter& w, int timeout_ms) {
    const bool out = !c.session.pending(Channel::Dma).empty();
    pollfd pfd[2] = {{fd[1].get(), static_cast<short>(POLLIN | (out ? POLLOUT : 0)), 0}, {w.efd, POLLIN, 0}};
    const int depth = lock.release_all();
    ::poll(pfd, 2, timeout_ms);
    lock.reacquire(depth);
    if (pfd[1].revents & POLLIN) drain_fd(w.efd);
    return pfd[0].revents;
}

std::chrono::milliseconds dma_timeout_from_env() {
    const char* v = std::getenv("COREIO_DMA_TIMEOUT_MS");
    if (v == nullptr || *v == '\0') return std::chrono::milliseconds(0);
    char* end = nullptr;
    const long long ms = std::strtoll(v, &end, 10);
    if (end == v || *end != '\0' || ms < 0) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(ms);
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() { disconnect(); }

int Client::connect(std::string_view target) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state == Impl::State::Connected) return -EISCONN;
    if (im.state == Impl::State::Lost) im.close_connection();
    return im.open(target);
}

void Client::disconnect() {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state == Impl::State::Idle) return;
    im.close_connection();
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
    const int rc = im.session().claim(rid, handler);
    if (rc == 0) im.after_command(0);
    return rc;
}

int Client::irq_update(unsigned rid, unsigned line, bool level) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (rid >= kNumRanges || line >= kNumIrqLines) return -EINVAL;
    if (im.state != Impl::State::Connected) return im.not_ready();
    const int rc = im.session().irq_update(rid, line, level);
    if (rc == 0) im.after_command(0);
    return rc;
}

int Client::dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags,
                     DmaCompletion done) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return buf.empty() ? -EINVAL : im.not_ready();
    const int rc = im.session().dma_start(Op::Read, mid, sid, addr, buf.data(), buf.size(), flags, std::move(done));
    if (rc == 0) im.after_command(1);
    return rc;
}

int Client::dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf,
                      unsigned flags, DmaCompletion done) {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return buf.empty() ? -EINVAL : im.not_ready();
    const int rc = im.session().dma_start(Op::WriteAck, mid, sid, addr, const_cast<std::byte*>(buf.data()),
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

int Client::event_fd() const { return impl_->poller.fd(); }

int Client::process_events() {
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    return im.process_events();
}

int Client::prepare_fds(int nfds, fd_set* readfds, fd_set* writefds) {
    (void)writefds;  // waiting to write shows as the event fd being readable
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return im.not_ready();
    const int efd = im.poller.fd();
    if (readfds) FD_SET(efd, readfds);
    return std::max(nfds, efd + 1);
}

int Client::process_fds(fd_set* readfds, fd_set* writefds) {
    (void)writefds;  // queued output is flushed on every call
    auto& im = *impl_;
    std::lock_guard g(im.lock);
    if (im.state != Impl::State::Connected) return im.not_ready();
    if (readfds && FD_ISSET(im.poller.fd(), readfds)) return im.process_events();
    return im.process(false, false, false);
}

int Client::run_for(long long usec) {
    auto& im = *impl_;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(usec < 0 ? 0 : usec);
    if (im.claim_ring(usec)) {
        const int rc = im.run_ring(usec, deadline);
        im.release_ring();
        if (rc == kRingTimeUp) return 0;
        if (rc != kRingGaveUp) return rc;  // else the rest of the time in epoll
    }
    for (;;) {
        {
            std::lock_guard g(im.lock);
            if (im.state != Impl::State::Connected) return im.not_ready();
        }
        int timeout_ms = -1;
        if (usec >= 0) {  // rounded up to whole milliseconds (epoll's unit)
            const auto left = deadline - std::chrono::steady_clock::now();
            timeout_ms = static_cast<int>(std::clamp<long long>(
                std::chrono::ceil<std::chrono::milliseconds>(left).count(), 0, 1 << 30));
        }
        // One system call per wake-up: the poller's wait returns the ready fds themselves.
        net::Poller::Event ev[4];
        const int n = im.poller.wait(ev, timeout_ms);
        if (n < 0) return n;
        if (n > 0) {
            std::lock_guard g(im.lock);
            if (const int rc = im.process_ready(std::span(ev, static_cast<std::size_t>(n))); rc != 0) return rc;
        }
        if (usec >= 0 && std::chrono::steady_clock::now() >= deadline) return 0;
    }
}

// ---- run_for() through io_uring --------------------------------------------

/// Makes this run_for() the ring's user when it can be: connected, long
/// enough to pay for itself, no other run_for() using it, and no handler in
/// progress (main's input must wait for it; a nested run_for() takes epoll).
/// From then on epoll leaves main's input to the ring.
bool Client::Impl::claim_ring(long long usec) {
    if (usec >= 0 && usec < kRingMinUsec) return false;
    std::lock_guard g(lock);
    if (state != State::Connected || ring_active || ring_unusable || conn->session.in_handler()) return false;
    if (!ring) {
        if (ring_allowed_by_env()) ring = std::make_unique<net::Uring>(8);
        if (!ring || !ring->valid()) {
            ring.reset();
            ring_unusable = true;
            return false;
        }
    }
    ring_active = true;
    update_interest(0);
    return true;
}

/// Ends the ring's use: what is still pending is cancelled and reaped (input
/// that arrived first is handled, never dropped), then epoll watches main again.
void Client::Impl::release_ring() {
    {
        std::lock_guard g(lock);
        if (ring_recv_pending) ring->cancel(kRingRecv, kRingCancel);
        if (ring_poll_pending) ring->cancel(kRingPoll, kRingCancel);
        if (ring_timeout_pending) ring->cancel(kRingTimeout, kRingCancel);
    }
    net::Uring::Completion done[4];
    while (ring_recv_pending || ring_poll_pending || ring_timeout_pending)
        if (ring_wait(done) == kRingGaveUp) break;  // not expected: the cancels complete at once
    std::lock_guard g(lock);
    ring_active = false;
    update_interest(0);
    if (!ring_recv_pending) ring_conn.reset();  // else the kernel may still fill its buffer: kept
}

/// The ring's loop: prepare the recv on main and the poll of the poller's fd
/// (each once, until it completes), then one wait that submits and sleeps.
int Client::Impl::run_ring(long long usec, std::chrono::steady_clock::time_point deadline) {
    if (usec >= 0 && ring->timeout_at(deadline, kRingTimeout)) ring_timeout_pending = true;
    net::Uring::Completion done[4];
    for (;;) {
        {
            std::lock_guard g(lock);
            if (state != State::Connected) return not_ready();
            if (ring_unusable) return kRingGaveUp;
            if (!ring_recv_pending && ring->recv(fd[0].get(), conn->rbuf[0].get(), kRecvBufferSize, kRingRecv)) {
                ring_recv_pending = true;
                ring_conn = conn;
            }
            if (!ring_poll_pending && ring->poll(poller.fd(), POLLIN, kRingPoll)) ring_poll_pending = true;
        }
        if (const int rc = ring_wait(done); rc != 0) return rc;
    }
}

/// One wait on the ring (the lock not held); handles what completed. Returns
/// 0, the first error or ending (kRingTimeUp) a completion gave the loop,
/// or kRingGaveUp when the ring itself failed.
int Client::Impl::ring_wait(std::span<net::Uring::Completion> out) {
    const int n = ring->wait(out);
    if (n < 0) {
        std::lock_guard g(lock);
        ring_unusable = true;
        return kRingGaveUp;
    }
    int rc = 0;
    for (int i = 0; i < n; ++i)
        if (const int r = on_ring_completion(out[static_cast<std::size_t>(i)]); r != 0 && rc == 0) rc = r;
    return rc;
}

int Client::Impl::on_ring_completion(const net::Uring::Completion& c) {
    if (c.key == kRingRecv) return on_ring_recv(c.result);
    if (c.key == kRingTimeout) {
        ring_timeout_pending = false;
        return c.result == -ETIME ? kRingTimeUp : 0;
    }
    if (c.key != kRingPoll) return 0;  // a cancel's own result
    ring_poll_pending = false;
    if (c.result == -ECANCELED) return 0;
    std::lock_guard g(lock);
    return process_events();  // DMA input, write room, a wake-up (main is the ring's)
}

/// The recv on main completed: like a batch of process() on main, if it
/// still belongs to the current connection (else its bytes are the old
/// connection's and go with it).
int Client::Impl::on_ring_recv(int result) {
    std::lock_guard g(lock);
    ring_recv_pending = false;
    ring_deferred_close.reset();
    const std::shared_ptr<Connection> c = std::move(ring_conn);
    if (state != State::Connected) return not_ready();
    if (c != conn || result == -ECANCELED) return 0;
    if (result == -EAGAIN) {  // a kernel whose recv does not wait on a non-blocking socket
        ring_unusable = true;
        return 0;
    }
    const auto prev = batch_thread;
    batch_thread = std::this_thread::get_id();
    received(*c, 0, result);
    if (state == State::Connected) flush_all();
    c->session.deliver_tap();
    batch_thread = prev;
    return state == State::Connected ? 0 : not_ready();
}

}  // namespace coreio
