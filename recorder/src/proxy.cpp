// RecordingProxy on the transport kit: one thread, one epoll set (net::Poller)
// holding the listener, a wake eventfd (stop()), optionally a signalfd, and
// both sockets of every link. Each direction of a link has an outbound queue;
// a side whose peer's queue is over kHighWater is not read until that queue
// drains (back-pressure instead of unbounded buffering).
//
// Ownership: links_ owns the links; a Device (one device model: its trace tap)
// is shared by its links and freed with the last one, so a proxy that serves
// device models one after another holds no memory for those that left.
#include "coreio/recorder/proxy.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "coreio/frame.hpp"
#include "coreio/net/host_port.hpp"
#include "coreio/net/listener.hpp"
#include "coreio/net/outbound.hpp"
#include "coreio/net/pairing.hpp"
#include "coreio/net/poller.hpp"
#include "coreio/net/socket.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"

namespace coreio::recorder {

namespace {

constexpr std::size_t kReadBytes = 64 * 1024;
constexpr std::size_t kHighWater = 1024 * 1024;  // stop reading a side while its peer has this much queued
constexpr std::uint64_t kListenKey = ~std::uint64_t{0};
constexpr std::uint64_t kWakeKey = kListenKey - 1;
constexpr std::uint64_t kSignalKey = kListenKey - 2;
constexpr int kDown = 0;  // the device model's side of a link
constexpr int kUp = 1;    // the VM's side

/// One device model: its trace tap and its (up to) two links.
struct Device {
    std::unique_ptr<trace::TraceTap> tap;
    std::uint32_t index = 0;
    std::uint64_t links[2] = {0, 0};  // link ids by channel; 0 = none
};

/// One accepted connection and the one opened to the VM for it.
struct Link {
    std::uint64_t id = 0;
    Channel channel = Channel::Main;
    std::shared_ptr<Device> device;
    net::UniqueFd fd[2];              // [kDown], [kUp]
    net::OutboundQueue out[2];        // bytes waiting to be written to fd[i]
    FrameReader frames[2];            // frames read from fd[i]
    unsigned interest[2] = {0, 0};    // what the poller watches fd[i] for
    bool connected = false;           // the VM connection is up
};

std::uint64_t key_of(std::uint64_t link, int side) { return (link << 1) | static_cast<std::uint64_t>(side); }

}  // namespace

struct RecordingProxy::Impl {
    ProxyOptions options;
    trace::TraceWriter writer;
    net::Listener listener{net::ListenerOptions{[this](std::string_view s) { log(std::string(s)); }}};
    net::Poller poller;
    net::UniqueFd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    std::vector<net::SocketAddress> target;
    std::string target_text;
    std::unordered_map<std::uint64_t, std::unique_ptr<Link>> links;
    std::deque<std::uint64_t> to_connect;  // links waiting for their VM connection, in accept order
    std::uint64_t connecting = 0;          // the link whose VM connection is being opened (one at a time)
    net::ConnectionPairing pairing;
    std::uint64_t next_link = 1;
    std::uint32_t next_device = 0;
    bool listening = false;
    std::vector<std::byte> rbuf = std::vector<std::byte>(kReadBytes);
    std::vector<Frame> batch;
    std::atomic<std::uint32_t> device_count{0};
    std::atomic<bool> stop_requested{false};
    std::atomic<bool> running{false};
    std::thread thread;
    std::once_flag stopped;

    void log(const std::string& s) {
        if (options.log)
            options.log(s);
        else
            std::fprintf(stderr, "coreio-record: %s\n", s.c_str());
    }

    std::string start(const ProxyOptions& o);
    void loop(int signal_fd);
    void resume_listening();
    void on_event(const net::Poller::Event& ev);
    void accept_all();
    void adopt(net::UniqueFd down);
    void connect_next();
    void on_connected(Link& l);
    void settle_connect();
    void on_readable(Link& l, int side);
    void flush(Link& l, int side);
    void update(Link& l);
    void close_device(Link& l, bool reset);
    void close_link(std::uint64_t id, bool reset);
    void shutdown();
};

std::string RecordingProxy::Impl::start(const ProxyOptions& o) {
    options = o;
    net::HostPort vm;
    if (const std::string e = net::parse_host_port(options.target, vm); !e.empty())
        return "bad target \"" + options.target + "\": " + e;
    std::string why;
    if (net::resolve(vm, false, target, &why) != 0 || target.empty()) return "target: " + why;
    target_text = vm.to_string();
    net::HostPort at;
    if (const std::string e = net::parse_host_port(options.listen, at, {std::nullopt, true}); !e.empty())
        return "bad listen address \"" + options.listen + "\": " + e;
    if (!poller.valid() || !wake) return std::string("cannot set up the event loop: ") + std::strerror(errno);
    if (listener.open(at, &why) != 0) return why;
    trace::TraceHeader h;
    h.tool = "coreio-record";
    h.tool_version = COREIO_VERSION;
    h.target = target_text;
    h.observer = trace::Observer::Proxy;
    h.raw_frames = options.raw_frames;
    h.labels = options.labels;
    if (std::string e = writer.open(options.output, h); !e.empty()) return e;
    poller.watch(wake.get(), kWakeKey, net::Poller::Read);
    resume_listening();
    batch.reserve(kReadBytes / kBlockSize + 1);  // a read's worth of frames: no allocation later
    return {};
}

void RecordingProxy::Impl::loop(int signal_fd) {
    if (signal_fd >= 0) poller.watch(signal_fd, kSignalKey, net::Poller::Read);
    net::Poller::Event events[64];
    while (!stop_requested) {
        int timeout = -1;
        if (!listening && listener.is_open()) {
            const auto left = listener.backoff();
            if (left.count() == 0)
                resume_listening();
            else
                timeout = static_cast<int>(left.count());
        }
        const int n = poller.wait(events, timeout);
        for (int i = 0; i < n && !stop_requested; ++i) on_event(events[i]);
        connect_next();  // a link whose VM connection was being opened may have closed
    }
    if (signal_fd >= 0) poller.forget(signal_fd);
}

void RecordingProxy::Impl::resume_listening() {
    listening = poller.watch(listener.fd(), kListenKey, net::Poller::Read) == 0;
}

void RecordingProxy::Impl::on_event(const net::Poller::Event& ev) {
    if (ev.key == kListenKey) return accept_all();
    if (ev.key == kWakeKey || ev.key == kSignalKey) {
        stop_requested = true;  // stop() or SIGINT/SIGTERM
        return;
    }
    const auto it = links.find(ev.key >> 1);
    if (it == links.end()) return;  // closed earlier in this batch
    Link& l = *it->second;
    const int side = static_cast<int>(ev.key & 1);
    if (side == kUp && !l.connected) {
        if (ev.writable || ev.readable) on_connected(l);
        return;
    }
    const std::uint64_t id = l.id;
    if (ev.writable) flush(l, side);
    if (ev.readable && links.count(id)) on_readable(l, side);  // flush() may have closed it
}

void RecordingProxy::Impl::accept_all() {
    for (;;) {
        const int fd = listener.accept();
        if (fd >= 0) {
            adopt(net::UniqueFd(fd));
            continue;
        }
        if (listener.backoff().count() > 0) {  // out of descriptors: stop watching for a while
            poller.forget(listener.fd());
            listening = false;
        }
        return;
    }
}

// A new connection from a device model: paired by accept order (the proxy
// records a connection as it opens, before its traffic could show its role),
// then queued for its own connection to the VM.
void RecordingProxy::Impl::adopt(net::UniqueFd down) {
    auto link = std::make_unique<Link>();
    link->id = next_link++;
    link->fd[kDown] = std::move(down);
    pairing.accepted(link->id);
    const auto partner = pairing.role(link->id) == net::ConnectionRole::Dma ? pairing.pair(link->id) : std::nullopt;
    const auto p = partner ? links.find(*partner) : links.end();
    if (p != links.end()) {
        link->channel = Channel::Dma;
        link->device = p->second->device;
    } else {
        link->channel = Channel::Main;
        link->device = std::make_shared<Device>();
        link->device->index = next_device++;
        trace::TapOptions o;
        o.observer = trace::Observer::Client;  // "Sent" = device model -> VM
        o.client = link->device->index;
        o.raw_frames = options.raw_frames;
        link->device->tap = std::make_unique<trace::TraceTap>(writer, o);
        device_count = next_device;
    }
    link->device->links[static_cast<int>(link->channel)] = link->id;
    to_connect.push_back(link->id);
    links.emplace(link->id, std::move(link));
    connect_next();
}

// Opens the VM connection of the oldest waiting link; one at a time, so the VM sees our accept order.
void RecordingProxy::Impl::connect_next() {
    while (connecting == 0 && !to_connect.empty()) {
        const std::uint64_t id = to_connect.front();
        to_connect.pop_front();
        const auto it = links.find(id);
        if (it == links.end()) continue;
        Link& l = *it->second;
        const int fd = net::start_connect(target.front());
        if (fd < 0) {
            log("client " + std::to_string(l.device->index) + ": cannot connect to " + target_text + ": " +
                std::strerror(-fd));
            close_device(l, false);
            continue;
        }
        l.fd[kUp].reset(fd);
        l.interest[kUp] = net::Poller::Write;
        poller.watch(fd, key_of(id, kUp), net::Poller::Write);
        connecting = id;
    }
}

void RecordingProxy::Impl::on_connected(Link& l) {
    connecting = 0;
    if (const int rc = net::finish_connect(l.fd[kUp].get()); rc != 0) {
        log("client " + std::to_string(l.device->index) + ": cannot connect to " + target_text + ": " +
            std::strerror(-rc));
        close_device(l, false);
    } else {
        l.connected = true;
        l.device->tap->on_connection(l.channel, true);
        poller.watch(l.fd[kDown].get(), key_of(l.id, kDown), net::Poller::Read);
        l.interest[kDown] = net::Poller::Read;
        update(l);
    }
    connect_next();
}

// Completes the VM connection being opened if it is already up, so that the
// trace shows a connection as up before frames that crossed after it was.
void RecordingProxy::Impl::settle_connect() {
    const auto it = connecting != 0 ? links.find(connecting) : links.end();
    if (it == links.end()) return;
    pollfd p{it->second->fd[kUp].get(), POLLOUT, 0};
    if (::poll(&p, 1, 0) == 1) on_connected(*it->second);
}

// Moves what one read returned: forwards it whole in one send straight from
// the read buffer (when nothing waits before it), then records its frames, so
// that recording is off the forwarding path; what the send left is queued.
void RecordingProxy::Impl::on_readable(Link& l, int side) {
    if (connecting != 0 && connecting != l.id) {
        const std::uint64_t id = l.id;
        settle_connect();
        if (!links.count(id)) return;  // that connection failed and took its device model, ours, along
    }
    ssize_t n;
    do {
        n = ::recv(l.fd[side].get(), rbuf.data(), rbuf.size(), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // EOF, or a reset that the other side should see as a reset too
        close_device(l, n < 0 && errno == ECONNRESET);
        return;
    }
    const std::span<const std::byte> bytes(rbuf.data(), static_cast<std::size_t>(n));
    std::span<const std::byte> rest = bytes;
    if (l.out[1 - side].empty()) {  // a send error shows in flush() below, after the frames are recorded
        const ssize_t k = ::send(l.fd[1 - side].get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) rest = bytes.subspan(static_cast<std::size_t>(k));
    }
    batch.clear();
    l.frames[side].feed(bytes, [&](const Frame& f) { batch.push_back(f); }, [](FrameError, const Frame&) {});
    if (!batch.empty())
        l.device->tap->on_frames(l.channel, side == kDown ? Direction::Sent : Direction::Received, batch);
    l.out[1 - side].append(rest);
    flush(l, 1 - side);
}

void RecordingProxy::Impl::flush(Link& l, int side) {
    const int rc = net::send_from(l.fd[side].get(), l.out[side]);
    if (rc != 0 && rc != -EAGAIN) {
        close_device(l, false);
        return;
    }
    update(l);
}

// Watches each side for reading unless its peer's queue is over the limit, and for writing while it has a queue.
void RecordingProxy::Impl::update(Link& l) {
    for (int side = 0; side < 2; ++side) {
        unsigned want = l.out[1 - side].size() < kHighWater ? net::Poller::Read : 0u;
        if (!l.out[side].empty()) want |= net::Poller::Write;
        if (want != l.interest[side]) {
            poller.change(l.fd[side].get(), key_of(l.id, side), want);
            l.interest[side] = want;
        }
    }
}

// A VM drops a client whose connection closed: close both links of the device model.
void RecordingProxy::Impl::close_device(Link& l, bool reset) {
    const std::shared_ptr<Device> d = l.device;
    for (const std::uint64_t id : d->links)
        if (id != 0) close_link(id, reset);
}

void RecordingProxy::Impl::close_link(std::uint64_t id, bool reset) {
    const auto it = links.find(id);
    if (it == links.end()) return;
    std::unique_ptr<Link> l = std::move(it->second);
    links.erase(it);
    pairing.closed(id);
    if (connecting == id) connecting = 0;
    for (int side = 0; side < 2; ++side) {
        if (!l->fd[side]) continue;
        poller.forget(l->fd[side].get());
        if (side == kDown || !reset)
            l->fd[side].reset();
        else
            net::close_with_reset(l->fd[side]);  // mirror the device model's reset towards the VM
    }
    if (l->connected) l->device->tap->on_connection(l->channel, false);
    l->device->links[static_cast<int>(l->channel)] = 0;
}  // the device (and its tap, which writes what still waits for a reply) goes with its last link

void RecordingProxy::Impl::shutdown() {
    listener.close();
    std::vector<std::uint64_t> ids;
    for (const auto& [id, l] : links) ids.push_back(id);
    for (const std::uint64_t id : ids) close_link(id, false);
    to_connect.clear();
}

RecordingProxy::RecordingProxy() : impl_(std::make_shared<Impl>()) {}

RecordingProxy::~RecordingProxy() {
    stop();
    impl_->writer.close();
}

std::string RecordingProxy::start(const ProxyOptions& options) { return impl_->start(options); }

std::uint16_t RecordingProxy::port() const { return impl_->listener.port(); }

void RecordingProxy::run(bool handle_signals) {
    Impl& m = *impl_;
    int sfd = -1;
    sigset_t mask, old;
    if (handle_signals) {  // SIGINT/SIGTERM arrive as a readable fd in the loop
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &mask, &old);
        sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    }
    m.running = true;
    m.loop(sfd);
    m.shutdown();
    m.running = false;
    if (handle_signals) {
        if (sfd >= 0) ::close(sfd);
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
}

void RecordingProxy::run_in_thread() {
    impl_->thread = std::thread([this] {
        pthread_setname_np(pthread_self(), "coreio-proxy");  // tells it apart in top and perf
        run(false);
    });
}

void RecordingProxy::stop() {
    Impl& m = *impl_;
    std::call_once(m.stopped, [&m] {
        m.stop_requested = true;
        const std::uint64_t one = 1;
        if (m.wake && ::write(m.wake.get(), &one, sizeof one) < 0) {
        }
    });
    if (m.thread.joinable() && m.thread.get_id() != std::this_thread::get_id()) m.thread.join();
    if (!m.running) m.shutdown();  // nobody runs the loop (or it has ended): close here
    m.writer.flush();
}

std::uint32_t RecordingProxy::clients() const { return impl_->device_count; }
std::uint64_t RecordingProxy::records() const { return impl_->writer.records(); }
std::string RecordingProxy::close_trace() { return impl_->writer.close(); }
std::uint64_t RecordingProxy::records_written() const { return impl_->writer.records_written(); }

}  // namespace coreio::recorder
