#include "coreio/mockvm/vm.hpp"

#include <asio.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "coreio/net/host_port.hpp"
#include "coreio/net/listener.hpp"
#include "coreio/net/pairing.hpp"
#include "coreio/net/poller.hpp"
#include "coreio/vm_session.hpp"
#include "futex_wait.hpp"

namespace coreio::mockvm {

namespace {

/// Adds one client session's counters to the VM's totals.
void add_counts(VmCounters& total, const VmSessionCounters& session) {
    total.frames_in += session.frames_in;
    total.frames_out += session.frames_out;
    total.dma_chunks += session.dma_chunks;
    total.dma_faults += session.dma_faults;
    total.protocol_errors += session.protocol_errors;
}

using detail::Clock;
using detail::Waiter;
using detail::complete;
using detail::futex_wait;
using detail::futex_wake_all;
using detail::wait_done;
using asio::ip::tcp;

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

// Serialises the user's tap: frames cross it from the I/O thread and from driver threads.
class LockedTap final : public FrameTap {
public:
    explicit LockedTap(FrameTap* inner) : inner_(inner) {}
    void on_frame(Channel channel, Direction direction, std::span<const std::byte> frame) override {
        std::lock_guard lock(mu_);
        inner_->on_frame(channel, direction, frame);
    }
    void on_connection(Channel channel, bool up) override {
        std::lock_guard lock(mu_);
        inner_->on_connection(channel, up);
    }

private:
    FrameTap* inner_;
    std::mutex mu_;
};

constexpr std::size_t kReadBuffer = 64 * 1024;     // one recv per batch, up to this much
constexpr std::size_t kDmaBacklog = 1024 * 1024;   // stop reading DMA requests while this much is unsent
constexpr std::uint32_t kSlotBits = 12;
constexpr std::uint32_t kSlots = 1u << kSlotBits;  // VM requests outstanding at once, all clients
constexpr std::uint32_t kPostedTagBit = 0x80000000u;  // tags of posted writes (nothing waits for them)
constexpr int kLeaderSliceMs = 20;  // a driver reading replies itself re-checks its deadline this often
// A main socket a driver call took from the I/O thread's poller stays out of
// it while driver calls keep coming (watching it again costs an epoll_ctl per
// call); the I/O thread watches it again once no call led for this long.
// While calls keep coming, the check backs off to kIdleRearmMax, so that a
// stream of reads wakes the I/O thread about 125 times a second, not 1000.
constexpr auto kIdleRearm = std::chrono::milliseconds(1);
constexpr auto kIdleRearmMax = std::chrono::milliseconds(8);

// Futex words of waiters completed by this thread while it fed one batch of
// replies to a session, woken once it holds no lock (a woken driver thread
// would otherwise block at once on slots_mu or the connection's mutex). A wake
// may land after the waiter saw its count and returned; FUTEX_WAKE on such a
// word is at worst a spurious wakeup, which every wait here tolerates.
thread_local std::vector<std::atomic<std::uint32_t>*> to_wake;
// A claim or IRQ change seen in the batch this thread feeds: waiters are told
// once its log lines are out (a test that waits for a claim sees the lines of
// the frames before it).
thread_local bool bump_deferred = false;
void wake_completed() {
    for (auto* w : to_wake) futex_wake_all(*w);
    to_wake.clear();
}
// The replies of the batch this thread feeds to a session are completed as
// they are matched, all under one slots_mu lock: taken at the batch's first
// reply, released once the batch is in (Impl::end_completions) or before a
// callback that takes state_mu (lock order).
struct Completions {
    std::mutex* held = nullptr;  // slots_mu, while held
    Waiter* run = nullptr;       // the waiter of the replies counted in `n`, not yet told
    std::uint32_t n = 0;
};
thread_local Completions completing;

// One outstanding VM request; its index is the cookie the client's session
// matches the reply under (VmSession keeps tag, w1 and w2).
struct Slot {
    std::uint32_t tag = 0;       // generation << kSlotBits | index
    bool busy = false;
    unsigned conn_id = 0;        // the client it was sent to
    Waiter* waiter = nullptr;
    std::byte* out1 = nullptr;   // where read data goes (null for writes and pings)
    std::byte* out2 = nullptr;   // pair element 2
    unsigned size = 0;
};

// Read data to the caller: the usual widths as one move each, not a libc call per reply.
void copy_data(std::byte* to, const std::byte* from, unsigned size) {
    if (size == 4)
        std::memcpy(to, from, 4);
    else if (size == 8)
        std::memcpy(to, from, 8);
    else
        std::memcpy(to, from, size);
}

// The free slots' indices, a stack (each index is in it at most once: a slot
// is pushed only when it stops being busy). A fixed array: pushing is a store,
// where std::vector's push_back was an out-of-line call per reply.
class FreeSlots {
public:
    FreeSlots() {
        for (std::uint32_t i = kSlots; i-- > 0;) push(i);
    }
    std::size_t size() const { return count_; }
    void push(std::uint32_t i) { ids_[count_++] = i; }
    std::uint32_t pop() { return ids_[--count_]; }

private:
    std::array<std::uint32_t, kSlots> ids_{};
    std::uint32_t count_ = 0;
};

// A driver request before it gets a tag.
struct Request {
    Frame frame;
    std::byte* out1 = nullptr;
    std::byte* out2 = nullptr;
};

}  // namespace

// One connected client: its two sockets and its session.
//
// The main socket is not Asio's: the I/O thread learns of its input through
// Impl::main_poller, and a driver call waiting for replies reads them itself
// (the "leader"), with the socket taken out of that poller meanwhile, so a
// round trip wakes two threads (device, driver) instead of three. The socket
// goes back into the poller (`armed`) lazily: at once when other calls wait
// for replies or for an event (Impl::wait_event) or a call sends without
// leading (a posted write), else once driver calls paused for kIdleRearm
// (up to kIdleRearmMax after a long stream of calls);
// until then input is read by the next leader.
struct Conn {
    Conn(asio::io_context& io, unsigned id_, int main_fd_) : id(id_), main_fd(main_fd_), dma(io) {}
    ~Conn() { ::close(main_fd); }  // only here: a leader may still be in recv() on it
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    unsigned id;
    std::uint64_t main_key = 0;  // its main connection in Impl::pairing
    int main_fd;                 // blocking, with a receive timeout (kLeaderSliceMs); owned
    tcp::socket dma;
    bool has_dma = false;  // I/O thread only
    // Guards the session's main channel (receive, request, cancel), `closed`
    // and `leader`; held by driver threads while they send on the main socket.
    std::mutex mu;
    bool closed = false;   // written by the I/O thread under mu
    // A driver call reads the main socket (the I/O thread keeps off it).
    // Written under mu; atomic only for the lock-free look of the idle check.
    std::atomic<bool> leader{false};
    bool armed = true;     // main_fd is in Impl::main_poller for input (else errors only)
    // lead() calls so far (written under mu; the I/O thread's idle check reads
    // it without the lock, so a busy driver thread never waits for that check)
    std::atomic<std::uint64_t> leads{0};
    std::uint64_t leads_seen = 0;  // I/O thread only: `leads` at its last idle check
    std::unique_ptr<VmSession> session;
    std::vector<std::byte> main_rbuf = std::vector<std::byte>(kReadBuffer);
    std::vector<std::byte> dma_rbuf = std::vector<std::byte>(kReadBuffer);
    std::vector<std::byte> dma_wbuf;  // replies being written
    bool dma_writing = false;         // I/O thread only
    bool dma_read_paused = false;     // I/O thread only
    std::mutex log_mu;                   // guards log_lines (main input may be fed by a driver thread)
    std::vector<std::string> log_lines;  // session lines, logged once no other lock is held
    // log_lines may be non-empty: flush_log() skips the lock when not (nearly every batch).
    std::atomic<bool> has_log{false};
    void add_log(std::string line) {
        std::lock_guard lock(log_mu);
        log_lines.push_back(std::move(line));
        has_log.store(true, std::memory_order_release);
    }
};

namespace {
std::shared_ptr<Conn> find_conn(const std::vector<std::shared_ptr<Conn>>& clients, unsigned id) {
    for (const auto& c : clients)
        if (c->id == id) return c;
    return nullptr;
}
}  // namespace

// Lock order: Conn::mu, then state_mu or slots_mu (never both), then the
// LockedTap's mutex; Conn::log_mu is taken alone. The user's log callback is never called with any held.
struct Vm::Impl final : VmSessionEvents {
    explicit Impl(VmConfig c);
    ~Impl() override;

    // VmSessionEvents (I/O thread, under the client's Conn::mu for main-channel frames)
    void on_claim(VmSession& s, unsigned rid) override;
    void on_irq(VmSession& s, unsigned rid, unsigned line, bool level, bool rising) override;
    void on_reply(VmSession& s, std::uint64_t cookie, const Frame& reply) override;
    void end_completions();
    static void count_run(Completions& k);

    void log(const std::string& line) const {
        if (cfg.log) cfg.log(line);
    }
    /// Tells waiting driver calls that state changed. The futex syscall is made
    /// only when someone waits: IRQ frames arrive by the million and mostly
    /// nobody is waiting. seq_cst on both counters means a waiter that
    /// registered after the load below sees the new sequence number instead.
    void bump() {
        event_seq.fetch_add(1, std::memory_order_seq_cst);
        if (event_waiters.load(std::memory_order_seq_cst) > 0) futex_wake_all(event_seq);
    }
    template <class Pred>
    bool wait_event(Pred pred, std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        event_waiters.fetch_add(1, std::memory_order_seq_cst);
        arm_idle();  // the events may sit unread on a socket a leader left
        bool ok = false;
        for (;;) {
            const std::uint32_t seq = event_seq.load(std::memory_order_seq_cst);
            if (pred()) {
                ok = true;
                break;
            }
            if (Clock::now() >= deadline) break;
            futex_wait(event_seq, seq, deadline);
        }
        event_waiters.fetch_sub(1, std::memory_order_seq_cst);
        return ok;
    }

    // I/O thread
    void start_accept();
    void accept_ready();
    void on_accept(int fd, const std::string& from);
    void watch_mains();
    void serve_mains();
    void read_main(const std::shared_ptr<Conn>& c);
    bool feed_main(Conn& c, std::span<const std::byte> bytes);
    bool lead(Conn& c);
    void unlead(Conn& c);
    void unlead_locked(Conn& c);
    void arm(Conn& c);
    void arm_idle();
    void start_idle_checks();
    void check_idle();
    enum class Led { Progress, Idle, Lost, Done };
    Led lead_receive(const std::shared_ptr<Conn>& c, const Waiter& w, std::uint32_t last);
    /// A driver call's reading of its client's main socket (see Conn): from
    /// its first send on, while it can; ended at the latest on destruction.
    struct Leading {
        Impl& im;
        Conn& c;
        bool on = false;      // this call reads c's main socket
        bool allowed = true;  // false once that read failed: the I/O thread takes over
        ~Leading() {
            if (on) im.unlead(c);
        }
        /// One lead_receive() as the reader, and what follows from its outcome.
        void receive(const std::shared_ptr<Conn>& conn, const Waiter& w, std::uint32_t last);
    };
    void read_dma(const std::shared_ptr<Conn>& c);
    void flush_dma(const std::shared_ptr<Conn>& c);
    void close_client(const std::shared_ptr<Conn>& c, const std::string& why);
    void close_all();

    // Driver side
    std::shared_ptr<Conn> owner_of(unsigned rid) const {
        std::lock_guard lock(state_mu);
        return owner[rid];
    }
    /// Where driver accesses go: rc -EINVAL when an address is outside one
    /// configured range (all in the same one); otherwise rid and the claiming
    /// client, or no client when the range is unclaimed (the accesses are then
    /// counted as completed by the VM itself: reads 0xAA, writes dropped).
    struct Target {
        int rc = 0;
        unsigned rid = 0;
        std::shared_ptr<Conn> conn;
    };
    Target target(const Vm& vm, std::span<const std::uint64_t> addrs, std::uint64_t size) {
        Target t;
        const int rid = addrs.empty() ? -1 : vm.range_of(addrs[0], size);
        if (rid < 0) return {-EINVAL, 0, nullptr};
        // Ranges do not overlap: being inside this one is enough (two compares, not a search).
        const RangeConfig& r = cfg.ranges[static_cast<std::size_t>(rid)];
        for (std::uint64_t a : addrs.subspan(1))
            if (a < r.base || a - r.base >= r.size || size > r.size - (a - r.base)) return {-EINVAL, 0, nullptr};
        t.rid = static_cast<unsigned>(rid);
        t.conn = owner_of(t.rid);
        if (!t.conn) unclaimed_accesses.fetch_add(addrs.size(), std::memory_order_relaxed);
        return t;
    }
    std::vector<std::shared_ptr<Conn>> clients_snapshot() const {
        std::lock_guard lock(state_mu);
        return clients;
    }
    /// Queues VM requests nothing waits for (posted writes, resets) and sends them.
    int send_frames(Conn& c, std::span<const Frame> frames, Clock::time_point deadline);
    int send_queued(Conn& c, std::unique_lock<std::mutex>& lock, Clock::time_point deadline);
    void flush_log(Conn& c);
    /// After feeding a batch to c's session, with no lock held: wakes completed driver calls, logs, tells waiters.
    void after_batch(Conn& c) {
        wake_completed();
        flush_log(c);
        if (bump_deferred) {
            bump_deferred = false;
            bump();
        }
    }
    template <class Make>
    int transact(const std::shared_ptr<Conn>& c, std::size_t n, unsigned window, Make&& make);
    template <class Make>
    std::ptrdiff_t issue(const std::shared_ptr<Conn>& c, Waiter& w, std::size_t first, std::size_t want, Make& make,
                         Clock::time_point deadline, bool* leading);
    template <class Make>
    std::size_t take_slots(Conn& c, Waiter& w, std::size_t first, std::size_t want, Make& make);
    void cancel(Conn& c, Waiter& w, int err);
    int posted(const std::shared_ptr<Conn>& c, Frame f);

    VmConfig cfg;
    std::optional<LockedTap> tap;
    GuestMemory memory;
    asio::io_context io;
    // Accepts through the transport kit's Listener, which backs off (and logs
    // once per interval) when out of descriptors; Asio only watches its fd.
    net::Listener listener;
    asio::posix::stream_descriptor listen_watch{io};  // a dup of listener.fd()
    asio::steady_timer accept_backoff{io};
    // Every client's main socket, keyed by client id; watched by the I/O thread
    // through a dup of its epoll fd. Level-triggered inside, so serve_mains()
    // takes events until none is left before waiting again.
    net::Poller main_poller;
    asio::posix::stream_descriptor main_watch{io};
    bool main_wait_queued = false;  // I/O thread: an async_wait on main_watch is pending
    asio::steady_timer idle_timer{io};  // I/O thread: runs check_idle() while a main socket is disarmed
    bool idle_checking = false;         // I/O thread: idle_timer is pending
    std::chrono::milliseconds idle_interval = kIdleRearm;  // I/O thread: the next check's delay
    bool accepting = true;                            // I/O thread: false once closing
    std::uint16_t port = 0;
    std::thread thread;

    mutable std::mutex state_mu;                    // guards clients, owner, totals
    std::vector<std::shared_ptr<Conn>> clients;     // connected clients, oldest first
    std::array<std::shared_ptr<Conn>, kNumRanges> owner;  // claiming client per rid
    net::ConnectionPairing pairing;                 // I/O thread: which accepted connections form a client
    net::ConnectionPairing::Key next_key = 1;       // I/O thread: names the next accepted connection there
    unsigned next_id = 1;                           // I/O thread
    VmCounters closed_totals;                       // counters of clients already gone

    std::atomic<std::uint32_t> event_seq{0};        // bumped on connect/claim/IRQ/disconnect; futex word
    std::atomic<int> event_waiters{0};              // driver calls inside wait_event(); bump() wakes only if > 0
    std::array<std::atomic<std::uint8_t>, kNumRanges> irq_levels{};  // bit per line
    std::array<std::array<std::atomic<std::uint64_t>, kNumIrqLines>, kNumRanges> edges{};
    std::array<std::array<std::atomic<std::uint64_t>, kNumIrqLines>, kNumRanges> falling_edges{};

    std::mutex slots_mu;                            // guards slots and free_slots
    std::vector<Slot> slots = std::vector<Slot>(kSlots);
    FreeSlots free_slots;
    std::atomic<std::uint32_t> posted_tag{0};
    std::atomic<std::uint64_t> unclaimed_accesses{0};
};

Vm::Impl::Impl(VmConfig c) : cfg(std::move(c)) {
    if (!cfg.log) cfg.log = [](std::string_view line) { std::cerr << "coreio-mockvm: " << line << std::endl; };
    if (cfg.tap != nullptr) tap.emplace(cfg.tap);
    if (cfg.ranges.size() > kNumRanges)
        throw std::invalid_argument("too many ranges: " + std::to_string(cfg.ranges.size()) + " (at most 8)");
    for (std::size_t i = 0; i < cfg.ranges.size(); ++i) {
        const RangeConfig& r = cfg.ranges[i];
        const std::string name = "range " + std::to_string(i) + " (" + hex(r.base) + ":" + hex(r.size) + ")";
        if (r.size == 0 || r.size % 4096 != 0)
            throw std::invalid_argument(name + ": size must be a non-zero multiple of 4 KiB");
        if (r.base % 4096 != 0) throw std::invalid_argument(name + ": base must be 4 KiB aligned");
        if (r.base + r.size - 1 < r.base) throw std::invalid_argument(name + ": wraps past the end of the address space");
        for (std::size_t j = 0; j < i; ++j) {
            const RangeConfig& o = cfg.ranges[j];
            if (r.base <= o.base + o.size - 1 && o.base <= r.base + r.size - 1)
                throw std::invalid_argument(name + ": overlaps range " + std::to_string(j));
        }
    }
    if (cfg.timeout.count() <= 0) throw std::invalid_argument("timeout must be positive");
    for (const auto& m : cfg.memory) memory.add_region(m);

    asio::error_code ec;
    const auto addr = asio::ip::make_address(cfg.listen, ec);
    if (ec) throw std::invalid_argument("bad listen address '" + cfg.listen + "': " + ec.message());
    net::ListenerOptions lo;
    lo.log = [this](std::string_view line) { log("accept: " + std::string(line)); };  // I/O thread, no lock held
    listener = net::Listener(std::move(lo));
    std::string error;
    if (const int rc = listener.open(net::HostPort{addr.to_string(), cfg.port}, &error); rc < 0)
        throw std::system_error(-rc, std::generic_category(), error);
    port = listener.port();
    const int watch_fd = ::dup(listener.fd());
    if (watch_fd < 0) throw std::system_error(errno, std::generic_category(), "dup of the listening socket");
    listen_watch.assign(watch_fd);
    const int poller_fd = main_poller.valid() ? ::dup(main_poller.fd()) : -1;
    if (poller_fd < 0) throw std::system_error(errno, std::generic_category(), "epoll for the main connections");
    main_watch.assign(poller_fd);
    watch_mains();
    start_accept();
    thread = std::thread([this] { io.run(); });
}

Vm::Impl::~Impl() {
    // Close everything from the I/O thread; run() returns once no work is left.
    asio::post(io, [this] {
        asio::error_code ec;
        accepting = false;
        listen_watch.close(ec);
        accept_backoff.cancel();
        idle_timer.cancel();
        main_watch.close(ec);
        listener.close();
        close_all();
    });
    thread.join();
}

void Vm::Impl::start_accept() {
    if (!accepting) return;
    listen_watch.async_wait(asio::posix::stream_descriptor::wait_read, [this](const asio::error_code& ec) {
        if (!ec) accept_ready();
    });
}

// Takes the pending connections (a bounded batch per wake-up, so clients
// already connected are served in between). While the Listener backs off
// (out of descriptors), the listening fd is not watched: no spinning.
void Vm::Impl::accept_ready() {
    for (int i = 0; i < 64 && accepting; ++i) {
        std::string from;
        const int fd = listener.accept(&from);
        if (fd >= 0) {
            on_accept(fd, from);
            continue;
        }
        const auto wait = listener.backoff();
        if (fd == -EAGAIN && wait.count() == 0) break;
        if (wait.count() > 0) {
            accept_backoff.expires_after(wait);
            accept_backoff.async_wait([this](const asio::error_code& ec) {
                if (!ec) start_accept();
            });
            return;
        }
        if (fd != -EAGAIN) {
            log("accept failed: " + std::string(std::strerror(-fd)) + "; no longer accepting");
            return;
        }
    }
    start_accept();
}

void Vm::Impl::on_accept(int fd, const std::string& from) {
    // The transport kit's pairing rule, by accept order alone: the session must
    // know a connection's channel before its first byte.
    const net::ConnectionPairing::Key key = next_key++;
    pairing.accepted(key);
    if (pairing.role(key) == net::ConnectionRole::Dma) {
        sockaddr_storage local{};
        socklen_t len = sizeof local;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
        tcp::socket s(io);
        asio::error_code ec;
        s.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
        if (ec) {
            ::close(fd);
            log("accept: cannot adopt the connection from " + from + ": " + ec.message());
            pairing.closed(key);
            return;
        }
        // A client's main connection waits for it: this is its DMA connection.
        // That client is in `clients` (close_client removes it and forgets its key together).
        const auto main_key = pairing.pair(key);
        std::shared_ptr<Conn> c;
        {
            std::lock_guard lock(state_mu);
            for (const auto& x : clients)
                if (x->main_key == main_key) c = x;
        }
        c->dma = std::move(s);
        c->has_dma = true;
        if (tap) tap->on_connection(Channel::Dma, true);
        if (cfg.verbose) log("client " + std::to_string(c->id) + ": DMA connection from " + from);
        read_dma(c);
        return;
    }
    // Blocking, so that a leader sleeps in recv() itself; every other call passes MSG_DONTWAIT.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const timeval slice{0, kLeaderSliceMs * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
    auto c = std::make_shared<Conn>(io, next_id++, fd);
    c->main_key = key;
    VmSessionOptions so;
    so.log = [raw = c.get()](std::string_view line) { raw->add_log(std::string(line)); };
    so.tap = tap ? &*tap : nullptr;
    so.id = c->id;
    c->session = std::make_unique<VmSession>(memory, *this, std::move(so));
    {
        std::lock_guard lock(state_mu);
        clients.push_back(c);
        ++closed_totals.clients_accepted;
    }
    if (tap) tap->on_connection(Channel::Main, true);
    if (cfg.verbose) log("client " + std::to_string(c->id) + ": main connection from " + from);
    bump();
    main_poller.watch(fd, c->id, net::Poller::Read);
}

// Asio forgets an edge that comes while no wait is queued: after queueing
// one, look again, and serve at once what arrived in between.
void Vm::Impl::watch_mains() {
    if (!main_wait_queued) {
        main_wait_queued = true;
        main_watch.async_wait(asio::posix::stream_descriptor::wait_read, [this](const asio::error_code& ec) {
            main_wait_queued = false;
            if (!ec) serve_mains();
        });
    }
    net::Poller::Event ev[1];
    if (main_poller.wait(ev, 0) > 0)
        asio::post(io, [this] {
            if (main_watch.is_open()) serve_mains();
        });
}

// Reads every main socket that has input. Waits again only once the poller
// reports nothing (Asio watches its fd edge-triggered); after a bounded number
// of rounds it goes on from a posted handler instead, so that accepts and DMA
// are served in between a client's flood of IRQ frames.
void Vm::Impl::serve_mains() {
    net::Poller::Event ev[16];
    for (int round = 0; round < 16; ++round) {
        const int n = main_poller.wait(ev, 0);
        if (n <= 0) {
            watch_mains();
            return;
        }
        for (int i = 0; i < n; ++i) {
            std::shared_ptr<Conn> c;
            {
                std::lock_guard lock(state_mu);
                c = find_conn(clients, static_cast<unsigned>(ev[i].key));
            }
            if (c) read_main(c);
        }
    }
    asio::post(io, [this] {
        if (main_watch.is_open()) serve_mains();
    });
}

// Feeds bytes received on c's main connection to its session and sends what
// it answers at once (pings; best effort, never blocking). Caller holds c.mu.
bool Vm::Impl::feed_main(Conn& c, std::span<const std::byte> bytes) {
    bool ok = false;
    {
        // Under c.mu still, so a cancel() cannot free these slots first; also
        // when receive() throws, so slots_mu is never left held.
        struct EndCompletions {
            Impl& im;
            ~EndCompletions() { im.end_completions(); }
        } end{*this};
        ok = c.session->receive(Channel::Main, bytes);
    }
    auto out = c.session->outbound(Channel::Main);
    if (!out.empty()) {
        const ssize_t k = ::send(c.main_fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) c.session->consume(Channel::Main, static_cast<std::size_t>(k));
    }
    return ok;
}

// One recv on c's main socket, from the I/O thread (never while a leader reads it).
void Vm::Impl::read_main(const std::shared_ptr<Conn>& c) {
    bool ok = true;
    std::string lost;
    {
        std::lock_guard lock(c->mu);
        if (c->closed || c->leader) return;
        const ssize_t n = ::recv(c->main_fd, c->main_rbuf.data(), c->main_rbuf.size(), MSG_DONTWAIT);
        if (n > 0)
            ok = feed_main(*c, std::span<const std::byte>(c->main_rbuf.data(), static_cast<std::size_t>(n)));
        else if (n == 0)
            lost = "closed its main connection";
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            lost = std::string("main connection: ") + std::strerror(errno);
    }
    after_batch(*c);
    if (!lost.empty())
        close_client(c, lost);
    else if (!ok)
        close_client(c, "main connection can no longer be split into frames");
}

// Makes the calling driver thread the reader of c's main socket, unless
// another one is. Caller holds c.mu.
bool Vm::Impl::lead(Conn& c) {
    if (c.leader || c.closed) return false;
    c.leader.store(true, std::memory_order_relaxed);
    c.leads.store(c.leads.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (c.armed) {
        c.armed = false;
        main_poller.change(c.main_fd, c.id, 0);
        asio::post(io, [this] { start_idle_checks(); });
    }
    return true;
}

// Ends the calling driver thread's reading of c's main socket. It stays out
// of the poller (see Conn) unless someone waits: other calls' replies, or an
// event (a waiter that came before this call led would not see it otherwise).
void Vm::Impl::unlead(Conn& c) {
    std::lock_guard lock(c.mu);
    unlead_locked(c);
}

// unlead() for a caller that holds c.mu.
void Vm::Impl::unlead_locked(Conn& c) {
    c.leader.store(false, std::memory_order_relaxed);
    if (c.session->pending_count() > 0 || event_waiters.load(std::memory_order_seq_cst) > 0) arm(c);
}

// Puts c's main socket back into the poller: input that arrived meanwhile
// makes the poller report it at once. Caller holds c.mu.
void Vm::Impl::arm(Conn& c) {
    if (c.armed || c.closed || c.leader) return;
    c.armed = true;
    main_poller.change(c.main_fd, c.id, net::Poller::Read);
}

// Every main socket no driver call reads goes back into the poller.
void Vm::Impl::arm_idle() {
    for (const auto& c : clients_snapshot()) {
        std::lock_guard lock(c->mu);
        arm(*c);
    }
}

// I/O thread: checks the disarmed main sockets from now on, first after idle_interval.
void Vm::Impl::start_idle_checks() {
    if (idle_checking || !accepting) return;
    idle_checking = true;
    idle_timer.expires_after(idle_interval);
    idle_timer.async_wait([this](const asio::error_code& ec) {
        idle_checking = false;
        if (!ec) check_idle();
    });
}

// I/O thread: arms each disarmed main socket that no driver call led since
// the last check; keeps checking while one stays disarmed, less often the
// longer calls keep leading.
void Vm::Impl::check_idle() {
    bool again = false;
    for (const auto& c : clients_snapshot()) {
        // Led since the last check, or now: look again then (armed or not; no lock
        // taken, so a leader feeding or sending never waits for this check).
        const std::uint64_t leads = c->leads.load(std::memory_order_relaxed);
        if (leads != c->leads_seen || c->leader.load(std::memory_order_relaxed)) {
            c->leads_seen = leads;
            again = true;
            continue;
        }
        std::lock_guard lock(c->mu);
        arm(*c);
    }
    idle_interval = again ? std::min(2 * idle_interval, kIdleRearmMax) : kIdleRearm;
    if (again) start_idle_checks();
}

// The leader's wait: one recv (sleeping at most kLeaderSliceMs), its frames
// fed to the session. Lost: the connection ended or broke; the caller hands
// the socket back so that the I/O thread closes the client. Done: w counts
// `last` replies (the leader's call has them all), and the leading has ended
// under the lock held for feeding anyway.
Vm::Impl::Led Vm::Impl::lead_receive(const std::shared_ptr<Conn>& c, const Waiter& w, std::uint32_t last) {
    thread_local std::vector<std::byte> buf(kReadBuffer);
    const ssize_t n = ::recv(c->main_fd, buf.data(), buf.size(), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Led::Idle;
    if (n <= 0) return Led::Lost;
    bool ok = true;
    bool done = false;
    {
        std::lock_guard lock(c->mu);
        if (c->closed) return Led::Lost;
        ok = feed_main(*c, std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n)));
        if (ok && w.done() == last) {
            unlead_locked(*c);
            done = true;
        }
    }
    after_batch(*c);
    if (!ok) {
        asio::post(io, [this, c] { close_client(c, "main connection can no longer be split into frames"); });
        return Led::Lost;
    }
    return done ? Led::Done : Led::Progress;
}

void Vm::Impl::Leading::receive(const std::shared_ptr<Conn>& conn, const Waiter& w, std::uint32_t last) {
    const Led led = im.lead_receive(conn, w, last);
    if (led == Led::Lost) {  // the I/O thread sees the same and closes the client
        im.unlead(c);
        on = allowed = false;
    } else if (led == Led::Done) {
        on = false;  // lead_receive() ended the leading
    }
}

void Vm::Impl::read_dma(const std::shared_ptr<Conn>& c) {
    c->dma.async_read_some(asio::buffer(c->dma_rbuf), [this, c](const asio::error_code& ec, std::size_t n) {
        if (ec) {
            close_client(c, ec == asio::error::eof ? "closed its DMA connection" : "DMA connection: " + ec.message());
            return;
        }
        const bool ok = c->session->receive(Channel::Dma, std::span<const std::byte>(c->dma_rbuf.data(), n));
        flush_log(*c);
        flush_dma(c);
        if (!ok) {
            close_client(c, "DMA connection can no longer be split into frames");
            return;
        }
        if (c->dma_writing && c->session->outbound(Channel::Dma).size() >= kDmaBacklog)
            c->dma_read_paused = true;  // the client is not reading its replies; stop taking requests
        else
            read_dma(c);
    });
}

void Vm::Impl::flush_dma(const std::shared_ptr<Conn>& c) {
    if (c->dma_writing || c->closed || c->session->outbound(Channel::Dma).empty()) return;
    c->session->take_outbound(Channel::Dma, c->dma_wbuf);
    c->dma_writing = true;
    asio::async_write(c->dma, asio::buffer(c->dma_wbuf), [this, c](const asio::error_code& ec, std::size_t) {
        c->dma_writing = false;
        if (ec) {
            close_client(c, "DMA connection: " + ec.message());
            return;
        }
        flush_dma(c);
        if (c->dma_read_paused && !c->closed && c->session->outbound(Channel::Dma).size() < kDmaBacklog) {
            c->dma_read_paused = false;
            read_dma(c);
        }
    });
}

void Vm::Impl::close_client(const std::shared_ptr<Conn>& c, const std::string& why) {
    {
        std::lock_guard lock(c->mu);
        if (c->closed) return;
        c->closed = true;
        asio::error_code ec;
        main_poller.forget(c->main_fd);
        ::shutdown(c->main_fd, SHUT_RDWR);  // a leader's recv() returns; ~Conn closes the fd
        c->dma.close(ec);
    }
    pairing.closed(c->main_key);
    {
        std::lock_guard lock(state_mu);
        std::erase(clients, c);
        for (unsigned rid = 0; rid < kNumRanges; ++rid) {
            if (owner[rid] != c) continue;
            owner[rid].reset();
            irq_levels[rid].store(0, std::memory_order_relaxed);  // a departed device drives no line
        }
        add_counts(closed_totals, c->session->counters());
    }
    {
        // Requests the client will never answer fail now instead of timing out.
        std::lock_guard lock(slots_mu);
        for (std::uint32_t i = 0; i < kSlots; ++i) {
            Slot& s = slots[i];
            if (!s.busy || s.conn_id != c->id) continue;
            s.busy = false;
            free_slots.push(i);
            int expected = 0;
            s.waiter->error.compare_exchange_strong(expected, -ECONNRESET);
            if (complete(*s.waiter)) futex_wake_all(s.waiter->state);
        }
    }
    if (tap) {
        tap->on_connection(Channel::Main, false);
        if (c->has_dma) tap->on_connection(Channel::Dma, false);
    }
    if (cfg.verbose) log("client " + std::to_string(c->id) + " disconnected: " + why);
    bump();
}

void Vm::Impl::close_all() {
    for (const auto& c : clients_snapshot()) close_client(c, "closed by the VM");
}


void Vm::Impl::flush_log(Conn& c) {
    if (!c.has_log.load(std::memory_order_acquire)) return;
    std::vector<std::string> lines;
    {
        std::lock_guard lock(c.log_mu);
        c.has_log.store(false, std::memory_order_relaxed);
        lines.swap(c.log_lines);
    }
    for (const std::string& line : lines) log(line);
}

void Vm::Impl::on_claim(VmSession& s, unsigned rid) {
    end_completions();  // slots_mu and state_mu are never held together
    std::shared_ptr<Conn> c;
    std::string refused;
    {
        std::lock_guard lock(state_mu);
        c = find_conn(clients, s.id());
        if (!c) return;
        if (rid >= cfg.ranges.size()) {
            c->add_log("client " + std::to_string(s.id()) + " claimed range " + std::to_string(rid) + ", but only " +
                       std::to_string(cfg.ranges.size()) + " range(s) are configured; accesses never reach it");
        }
        if (owner[rid] && owner[rid] != c) {
            refused = "client " + std::to_string(s.id()) + " claimed range " + std::to_string(rid) +
                      ", already held by client " + std::to_string(owner[rid]->id) + "; claim ignored";
        } else {
            owner[rid] = c;
        }
    }
    if (!refused.empty()) {
        c->add_log(std::move(refused));
        return;
    }
    if (cfg.verbose) c->add_log("client " + std::to_string(s.id()) + " claimed range " + std::to_string(rid));
    bump_deferred = true;
}

// Edges are counted from the VM's line (irq_levels), as the levels are: the
// session's `rising` is one client's view, which a second client driving
// the same line makes disagree (rising edges with no falling one between).
void Vm::Impl::on_irq(VmSession&, unsigned rid, unsigned line, bool level, bool) {
    const auto bit = static_cast<std::uint8_t>(1u << line);
    const std::uint8_t old = level ? irq_levels[rid].fetch_or(bit) : irq_levels[rid].fetch_and(static_cast<std::uint8_t>(~bit));
    if (level && !(old & bit)) edges[rid][line].fetch_add(1, std::memory_order_relaxed);
    if (!level && (old & bit)) falling_edges[rid][line].fetch_add(1, std::memory_order_relaxed);
    bump_deferred = true;
}

// A reply to one of the VM's requests (caller holds the client's Conn::mu):
// its data goes to the caller and its slot is freed at once; its waiter is
// counted once per run of its replies and woken later, once this thread
// holds no lock.
void Vm::Impl::on_reply(VmSession& s, std::uint64_t cookie, const Frame& f) {
    Completions& k = completing;
    if (k.held == nullptr) {
        slots_mu.lock();
        k.held = &slots_mu;
    }
    const auto i = static_cast<std::uint32_t>(cookie);
    Slot& slot = slots[i];
    // The session matched tag, w1 and w2; a slot is freed only after its
    // session entry is cancelled, so it is still this request's.
    if (!slot.busy || slot.conn_id != s.id()) return;
    if (f.error()) {
        int expected = 0;
        slot.waiter->error.compare_exchange_strong(expected, -EIO);
    } else if (slot.out1 != nullptr) {
        copy_data(slot.out1, f.payload(), slot.size);
        if (slot.out2 != nullptr) copy_data(slot.out2, f.pair_second(), slot.size);
    }
    slot.busy = false;
    free_slots.push(i);
    if (slot.waiter != k.run) {
        count_run(k);
        k.run = slot.waiter;
    }
    ++k.n;
}

// Tells the waiter of the replies counted so far, and queues its wake-up if it sleeps.
void Vm::Impl::count_run(Completions& k) {
    if (k.run != nullptr && complete(*k.run, k.n) && (to_wake.empty() || to_wake.back() != &k.run->state))
        to_wake.push_back(&k.run->state);
    k.run = nullptr;
    k.n = 0;
}

// Ends the completions of the batch being fed (or of its part before a
// callback that takes another lock): counts the last run, drops slots_mu.
void Vm::Impl::end_completions() {
    Completions& k = completing;
    if (k.held == nullptr) return;
    count_run(k);
    k.held->unlock();
    k.held = nullptr;
}

int Vm::Impl::send_frames(Conn& c, std::span<const Frame> frames, Clock::time_point deadline) {
    std::unique_lock lock(c.mu);
    if (c.closed) return -ECONNRESET;
    for (const Frame& f : frames) c.session->request(f);
    return send_queued(c, lock, deadline);
}

// Sends what c's session queued on the main connection (caller holds c.mu
// through `lock`; released only while waiting for room). 0 or a negative errno.
int Vm::Impl::send_queued(Conn& c, std::unique_lock<std::mutex>& lock, Clock::time_point deadline) {
    // Without a leader, the I/O thread reads what comes back: the replies, or
    // what the device answers a posted write with (an IRQ, read at once).
    arm(c);
    const int fd = c.main_fd;
    for (;;) {
        auto out = c.session->outbound(Channel::Main);
        if (out.empty()) return 0;
        const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.session->consume(Channel::Main, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // Wait for room without holding the lock, so the I/O thread keeps taking replies.
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) return -ETIMEDOUT;
            lock.unlock();
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
            lock.lock();
            if (c.closed) return -ECONNRESET;
            continue;
        }
        return -ECONNRESET;  // the I/O thread sees the same error and closes the client
    }
}

void Vm::Impl::cancel(Conn& c, Waiter& w, int err) {
    std::lock_guard conn_lock(c.mu);  // a reply in receive() now can no longer match these slots
    std::lock_guard lock(slots_mu);
    for (std::uint32_t i = 0; i < kSlots; ++i) {
        Slot& s = slots[i];
        if (!s.busy || s.waiter != &w) continue;
        c.session->cancel(i);
        s.busy = false;
        free_slots.push(i);
    }
    int expected = 0;
    w.error.compare_exchange_strong(expected, err);
}

// Sends n requests (make(i) -> Request) to client c, keeping at most `window`
// outstanding, and waits for every reply. Returns 0 or the first error.
template <class Make>
int Vm::Impl::transact(const std::shared_ptr<Conn>& c, std::size_t n, unsigned window, Make&& make) {
    if (window == 0) window = 1;
    if (window > kSlots / 2) window = kSlots / 2;
    Waiter w;  // completers never touch it after counting (see Waiter): nothing to wait for on the way out
    Leading leader{*this, *c};
    // w counts at most Waiter::kMaxCount replies: the requests go in parts of
    // that many, and w starts again from 0 once a part is answered.
    std::size_t base = 0;                                          // requests of earlier parts
    std::size_t part = std::min<std::size_t>(n, Waiter::kMaxCount);  // requests of this part
    std::size_t issued = 0;                                        // of this part
    auto deadline = Clock::now() + cfg.timeout;  // pushed out whenever a reply arrives
    std::uint32_t seen = 0;
    bool check_time = false;  // false right after sending or progress: the clock need not be read
    for (;;) {
        const std::uint32_t done = w.done();
        const bool failed = w.error.load(std::memory_order_relaxed) != 0;
        if (done == issued && issued == part && !failed && base + part < n) {
            base += part;  // nothing of w's is outstanding: no completer can count on it now
            part = std::min<std::size_t>(n - base, Waiter::kMaxCount);
            issued = seen = 0;
            w.state.store(0, std::memory_order_relaxed);
            continue;
        }
        if (done == issued && (issued == part || failed)) break;
        if (done != seen) {
            seen = done;
            deadline = Clock::now() + cfg.timeout;
        } else if (check_time && Clock::now() >= deadline) {
            cancel(*c, w, -ETIMEDOUT);
            return w.error.load();
        }
        check_time = true;
        if (!failed && issued < part && issued - done < window) {
            const std::size_t want = std::min<std::size_t>(window - (issued - done), part - issued);
            const std::ptrdiff_t sent =
                issue(c, w, base + issued, want, make, deadline, leader.allowed ? &leader.on : nullptr);
            if (sent < 0) return static_cast<int>(sent);
            if (sent > 0) {
                issued += static_cast<std::size_t>(sent);
                check_time = false;
                continue;
            }
            // Every slot is taken by other callers: wait for any progress below.
        }
        if (leader.on) {
            // Every request sent: the leading can end with the batch that brings the last reply
            // (kAsleep: a value no count takes, so not yet).
            const std::uint32_t last =
                issued == part && base + part == n ? static_cast<std::uint32_t>(issued) : Waiter::kAsleep;
            leader.receive(c, w, last);
            continue;
        }
        wait_done(w, done, issued == done ? std::min(deadline, Clock::now() + std::chrono::milliseconds(1))
                                                : deadline);
    }
    return w.error.load();
}

// Sends requests make(first) .. make(first + want - 1) to c, as many as free
// slots allow. Returns how many went out (0: every slot is taken by other
// callers), or the error after cancelling w's requests. `leading` (optional):
// the caller reads the replies itself if it can (see Conn); set true if so.
template <class Make>
std::ptrdiff_t Vm::Impl::issue(const std::shared_ptr<Conn>& c, Waiter& w, std::size_t first, std::size_t want,
                               Make& make, Clock::time_point deadline, bool* leading) {
    int rc = -ECONNRESET;
    {
        std::unique_lock lock(c->mu);
        if (!c->closed) {
            want = take_slots(*c, w, first, want, make);
            if (want == 0) return 0;
            // Taken before the requests leave, so that no reply can wake the I/O thread.
            if (leading != nullptr && !*leading) *leading = lead(*c);
            rc = send_queued(*c, lock, deadline);
        }
    }
    if (rc < 0) {
        cancel(*c, w, rc);
        return w.error.load();
    }
    return static_cast<std::ptrdiff_t>(want);
}

// Takes up to `want` free slots for w's requests make(first + k), tags each
// frame with its slot and queues it in c's session (built there, not copied
// through a batch). Caller holds c.mu. Returns how many it queued.
template <class Make>
std::size_t Vm::Impl::take_slots(Conn& c, Waiter& w, std::size_t first, std::size_t want, Make& make) {
    std::lock_guard lock(slots_mu);
    want = std::min(want, free_slots.size());
    for (std::size_t k = 0; k < want; ++k) {
        Request r = make(first + k);
        const std::uint32_t i = free_slots.pop();
        Slot& s = slots[i];
        // A fresh generation in the high bits, so a late reply to an
        // earlier use of this slot never matches.
        const std::uint32_t gen = ((s.tag >> kSlotBits) + 1) & ((kPostedTagBit >> kSlotBits) - 1);
        s.tag = (gen << kSlotBits) | i;
        r.frame.set_tag(s.tag);
        s.busy = true;
        s.conn_id = c.id;
        s.waiter = &w;
        s.out1 = r.out1;
        s.out2 = r.out2;
        s.size = r.frame.size();
        c.session->request(r.frame, i);
    }
    return want;
}

int Vm::Impl::posted(const std::shared_ptr<Conn>& c, Frame f) {
    f.set_tag(kPostedTagBit | (posted_tag.fetch_add(1, std::memory_order_relaxed) & ~kPostedTagBit));
    return send_frames(*c, std::span<const Frame>(&f, 1), Clock::now() + cfg.timeout);
}

// ---- Vm ----

Vm::Vm(VmConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Vm::~Vm() = default;

std::uint16_t Vm::port() const { return impl_->port; }
std::string Vm::endpoint() const {
    return net::HostPort{impl_->cfg.listen, impl_->port}.to_string();
}
const VmConfig& Vm::config() const { return impl_->cfg; }
GuestMemory& Vm::memory() { return impl_->memory; }

int Vm::range_of(std::uint64_t addr, std::uint64_t size) const {
    const auto& ranges = impl_->cfg.ranges;
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        const RangeConfig& r = ranges[i];
        if (addr >= r.base && addr - r.base < r.size && size <= r.size - (addr - r.base)) return static_cast<int>(i);
    }
    return -1;
}

bool Vm::wait_for_client(std::chrono::milliseconds timeout) {
    return impl_->wait_event([&] { return client_count() > 0; }, timeout);
}

bool Vm::wait_for_claim(unsigned rid, std::chrono::milliseconds timeout) {
    if (rid >= kNumRanges) return false;
    return impl_->wait_event([&] { return claimed(rid); }, timeout);
}

bool Vm::claimed(unsigned rid) const { return rid < kNumRanges && impl_->owner_of(rid) != nullptr; }

std::size_t Vm::client_count() const {
    std::lock_guard lock(impl_->state_mu);
    return impl_->clients.size();
}

int Vm::read(std::uint64_t addr, unsigned size, void* out, unsigned flags) {
    if (size == 0 || size > kMaxAccessSize) return -EINVAL;
    const Impl::Target t = impl_->target(*this, std::span(&addr, 1), size);
    const int rc = t.rc;
    const unsigned rid = t.rid;
    const std::shared_ptr<Conn>& c = t.conn;
    if (rc != 0 || !c) {
        if (rc == 0) std::memset(out, kAaByte, size);
        return rc;
    }
    return impl_->transact(c, 1, 1, [&](std::size_t) {
        return Request{Frame::mmio_request(Op::Read, rid, addr, size, flags, 0),
                       static_cast<std::byte*>(out), nullptr};
    });
}

int Vm::write(std::uint64_t addr, unsigned size, const void* in, bool acknowledged, unsigned flags) {
    if (size == 0 || size > kMaxAccessSize) return -EINVAL;
    const Impl::Target t = impl_->target(*this, std::span(&addr, 1), size);
    const int rc = t.rc;
    const unsigned rid = t.rid;
    const std::shared_ptr<Conn>& c = t.conn;
    if (rc != 0 || !c) return rc;
    Frame f = Frame::mmio_request(acknowledged ? Op::WriteAck : Op::Write, rid, addr, size, flags, 0);
    std::memcpy(f.payload(), in, size);
    if (!acknowledged) return impl_->posted(c, f);
    return impl_->transact(c, 1, 1, [&](std::size_t) { return Request{f, nullptr, nullptr}; });
}

int Vm::read_pair(std::uint64_t addr, unsigned size, void* out1, void* out2, unsigned flags) {
    if (size == 0 || size > kMaxPairElement) return -EINVAL;
    const Impl::Target t = impl_->target(*this, std::span(&addr, 1), 2ull * size);
    const int rc = t.rc;
    const unsigned rid = t.rid;
    const std::shared_ptr<Conn>& c = t.conn;
    if (rc != 0 || !c) {
        if (rc == 0) {
            std::memset(out1, kAaByte, size);
            std::memset(out2, kAaByte, size);
        }
        return rc;
    }
    return impl_->transact(c, 1, 1, [&](std::size_t) {
        return Request{Frame::mmio_request(Op::ReadPair, rid, addr, size, flags, 0),
                       static_cast<std::byte*>(out1), static_cast<std::byte*>(out2)};
    });
}

int Vm::write_pair(std::uint64_t addr, unsigned size, const void* in1, const void* in2, bool acknowledged,
                   unsigned flags) {
    if (size == 0 || size > kMaxPairElement) return -EINVAL;
    const Impl::Target t = impl_->target(*this, std::span(&addr, 1), 2ull * size);
    const int rc = t.rc;
    const unsigned rid = t.rid;
    const std::shared_ptr<Conn>& c = t.conn;
    if (rc != 0 || !c) return rc;
    Frame f = Frame::mmio_request(acknowledged ? Op::WriteAckPair : Op::WritePair, rid, addr, size, flags, 0);
    std::memcpy(f.payload(), in1, size);
    std::memcpy(f.pair_second(), in2, size);
    if (!acknowledged) return impl_->posted(c, f);
    return impl_->transact(c, 1, 1, [&](std::size_t) { return Request{f, nullptr, nullptr}; });
}

namespace {
std::uint64_t load_le(const std::byte* p, unsigned size) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < size; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}
void store_le(std::byte* p, unsigned size, std::uint64_t v) {
    for (unsigned i = 0; i < size; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
}  // namespace

ReadResult Vm::read_value(std::uint64_t addr, unsigned size, unsigned flags) {
    if (size == 0 || size > 8) return {-EINVAL, 0};
    std::byte buf[8] = {};
    const int rc = read(addr, size, buf, flags);
    return {rc, rc == 0 ? load_le(buf, size) : 0};
}

int Vm::write_value(std::uint64_t addr, unsigned size, std::uint64_t value, bool acknowledged, unsigned flags) {
    if (size == 0 || size > 8) return -EINVAL;
    std::byte buf[8];
    store_le(buf, size, value);
    return write(addr, size, buf, acknowledged, flags);
}

int Vm::read_many(std::span<const std::uint64_t> addrs, unsigned size, std::span<std::uint64_t> out, unsigned window,
                  unsigned flags) {
    if (size == 0 || size > 8 || out.size() != addrs.size()) return -EINVAL;
    if (addrs.empty()) return 0;
    const Impl::Target t = impl_->target(*this, addrs, size);
    const int rc0 = t.rc;
    const unsigned rid = t.rid;
    const std::shared_ptr<Conn>& c = t.conn;
    if (rc0 != 0) return rc0;
    std::fill(out.begin(), out.end(), 0);
    if (!c) {
        const std::uint64_t aa = size == 8 ? ~0ull / 0xff * 0xaa : ((1ull << (8 * size)) - 1) / 0xff * 0xaa;
        std::fill(out.begin(), out.end(), aa);
        return 0;
    }
    // One request built, copied per address: building each from scratch was a
    // fifth of the driver's per-read instructions.
    const Frame read = Frame::mmio_request(Op::Read, rid, 0, size, flags, 0);
    const int rc = impl_->transact(c, addrs.size(), window, [&](std::size_t i) {
        Request r{read, reinterpret_cast<std::byte*>(&out[i]), nullptr};
        r.frame.set_address(addrs[i]);
        return r;
    });
    if constexpr (std::endian::native == std::endian::big)
        for (auto& v : out) v = load_le(reinterpret_cast<const std::byte*>(&v), size);
    return rc;
}

int Vm::write_many(std::span<const std::uint64_t> addrs, unsigned size, std::span<const std::uint64_t> values,
                   bool acknowledged, unsigned window, unsigned flags) {
    if (size == 0 || size > 8 || values.size() != addrs.size()) return -EINVAL;
    if (addrs.empty()) return 0;
    const Impl::Target t = impl_->target(*this, addrs, size);
    const int rc0 = t.rc;
    const unsigned rid = t.rid;
    const std::shared_ptr<Conn>& c = t.conn;
    if (rc0 != 0 || !c) return rc0;
    auto frame = [&](std::size_t i) {
        Frame f = Frame::mmio_request(acknowledged ? Op::WriteAck : Op::Write, rid, addrs[i], size, flags, 0);
        store_le(f.payload(), size, values[i]);
        return f;
    };
    if (acknowledged)
        return impl_->transact(c, addrs.size(), window, [&](std::size_t i) { return Request{frame(i), nullptr, nullptr}; });
    if (window == 0) window = 1;
    std::vector<Frame> batch;
    batch.reserve(std::min<std::size_t>(window, addrs.size()));
    for (std::size_t i = 0; i < addrs.size();) {
        batch.clear();
        for (; i < addrs.size() && batch.size() < window; ++i) {
            Frame f = frame(i);
            f.set_tag(kPostedTagBit | (impl_->posted_tag.fetch_add(1, std::memory_order_relaxed) & ~kPostedTagBit));
            batch.push_back(f);
        }
        const int rc = impl_->send_frames(*c, batch, Clock::now() + impl_->cfg.timeout);
        if (rc < 0) return rc;
    }
    return 0;
}

int Vm::ping() {
    const auto clients = impl_->clients_snapshot();
    if (clients.empty()) return -ENOTCONN;
    int result = 0;
    for (const auto& c : clients) {
        const int rc = impl_->transact(c, 1, 1, [](std::size_t) { return Request{Frame::ping(false), nullptr, nullptr}; });
        if (rc < 0 && result == 0) result = rc;
    }
    return result;
}

void Vm::reset() {
    for (const auto& c : impl_->clients_snapshot()) {
        const Frame f = Frame::reset();
        impl_->send_frames(*c, std::span<const Frame>(&f, 1), Clock::now() + impl_->cfg.timeout);
    }
}

bool Vm::irq_level(unsigned rid, unsigned line) const {
    if (rid >= kNumRanges || line >= kNumIrqLines) return false;
    return (impl_->irq_levels[rid].load(std::memory_order_acquire) >> line) & 1;
}

std::uint8_t Vm::irq_lines(unsigned rid) const {
    return rid < kNumRanges ? impl_->irq_levels[rid].load(std::memory_order_acquire) : 0;
}

bool Vm::wait_irq(unsigned rid, unsigned line, bool level, std::chrono::milliseconds timeout) {
    if (rid >= kNumRanges || line >= kNumIrqLines) return false;
    return impl_->wait_event([&] { return irq_level(rid, line) == level; }, timeout);
}

std::uint64_t Vm::irq_edges(unsigned rid, unsigned line) const {
    if (rid >= kNumRanges || line >= kNumIrqLines) return 0;
    return impl_->edges[rid][line].load(std::memory_order_relaxed);
}

std::uint64_t Vm::irq_falling_edges(unsigned rid, unsigned line) const {
    if (rid >= kNumRanges || line >= kNumIrqLines) return 0;
    return impl_->falling_edges[rid][line].load(std::memory_order_relaxed);
}

bool Vm::wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    return impl_->wait_event(pred, timeout);
}

void Vm::drop_clients() {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    asio::post(impl_->io, [this, done] {
        impl_->close_all();
        done->set_value();
    });
    f.wait_for(impl_->cfg.timeout);
}

VmCounters Vm::counters() const {
    std::lock_guard lock(impl_->state_mu);
    VmCounters t = impl_->closed_totals;
    for (const auto& c : impl_->clients) add_counts(t, c->session->counters());
    t.unclaimed_accesses = impl_->unclaimed_accesses.load(std::memory_order_relaxed);
    return t;
}

}  // namespace coreio::mockvm
