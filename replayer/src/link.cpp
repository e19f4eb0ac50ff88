#include "coreio/replayer/link.hpp"

#include "coreio/net/outbound.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace coreio::replayer {

namespace {

VmSessionOptions strict_options() {
    VmSessionOptions o;
    o.max_frame_blocks = 1;  // a client's frames are one block; longer ones are violations
    return o;
}

}  // namespace

// ---- LinkCore ----------------------------------------------------------------

LinkCore::LinkCore(LinkObserver& observer, bool fence_posted)
    : observer_(observer), fence_posted_(fence_posted), session_(*this, *this, strict_options()) {}

// The fifo is full: drops the completed entries before the head when they are
// at least half of it (moving the rest to the front), else doubles it. An
// emptied fifo starts again at the front (complete()), so in process, where
// one request is in flight at a time, this runs once.
void LinkCore::make_room() {
    if (head_ > 0 && head_ * 2 >= fifo_.size()) {
        fifo_.erase(fifo_.begin(), fifo_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    } else {
        fifo_.reserve(std::max<std::size_t>(64, 2 * fifo_.capacity()));
    }
}

void LinkCore::push(std::uint64_t seq, const Frame& request) {
    enqueue(seq, request);
    session_.request(request, seq);
    if (fence_posted_ && !expects_reply(request)) {
        Frame f = Frame::ping(false);
        f.set_tag(kFenceTag | (fences_++ & 0xffffff));
        session_.request(f, seq);
    }
}

void LinkCore::push_delivered(std::uint64_t seq, const Frame& request) {
    enqueue(seq, request);
    session_.request_delivered(request, seq);
}

void LinkCore::clear() {
    fifo_.clear();
    early_.clear();
    head_ = 0;
    session_.cancel_all();
    session_.reset_streams();
}

void LinkCore::complete_ready() {
    while (head_done()) {
        const Pending& p = fifo_[head_];
        if (!p.early_reply) {
            complete(p, nullptr);
            continue;
        }
        const auto it = std::find_if(early_.begin(), early_.end(), [&](const auto& e) { return e.first == p.seq; });
        const Frame reply = it->second;  // a copy: early_ may change while the observer runs
        early_.erase(it);
        complete(p, &reply);
    }
}

void LinkCore::finish_head() {
    Pending& p = fifo_[head_];
    if (!p.done) {
        if (expects_reply(*p.request)) {
            observer_.on_violation(p.seq, "no reply to " + describe(*p.request));
            session_.cancel(p.seq);
        }
        p.done = true;
    }
    complete_ready();
}

void LinkCore::on_reply(VmSession&, std::uint64_t cookie, const Frame& reply) {
    for (std::size_t i = head_; i < fifo_.size(); ++i) {
        Pending& p = fifo_[i];
        if (p.seq != cookie || p.done) continue;
        p.done = true;
        const bool answer = expects_reply(*p.request);  // else the reply is the fence's echo
        if (i == head_) {
            complete(p, answer ? &reply : nullptr);  // the usual case: no copy of the reply
        } else if (answer) {
            p.early_reply = true;
            early_.emplace_back(p.seq, reply);
        }
        break;
    }
    if (head_done()) complete_ready();  // answers that waited for this one
}

void LinkCore::on_claim(VmSession&, unsigned rid) { observer_.on_claim(rid); }

void LinkCore::on_irq(VmSession&, unsigned rid, unsigned line, bool level, bool) {
    observer_.on_irq(cause(), rid, line, level);
}

void LinkCore::on_protocol_error(VmSession&, Channel channel, std::string_view what, const Frame&) {
    observer_.on_violation(cause(), std::string(channel == Channel::Main ? "main connection: " : "DMA connection: ") +
                                        std::string(what));
}

Frame LinkCore::dma_reply(DmaDirection direction, const Frame& request) {
    Frame reply = request;
    reply.set_extra_blocks(0);
    observer_.on_dma(cause(), direction, request, reply);
    return reply;
}

bool LinkCore::dma_read(const Frame& request, std::span<std::byte> out) {
    const Frame reply = dma_reply(DmaDirection::Read, request);
    std::memcpy(out.data(), reply.payload(), out.size());
    return !reply.error();
}

bool LinkCore::dma_write(const Frame& request) { return !dma_reply(DmaDirection::Write, request).error(); }

// ---- InProcessLink -------------------------------------------------------------

InProcessLink::InProcessLink(const DeviceFactory& factory, LinkObserver& observer)
    : core_(observer, false),
      session_(SessionOptions{[this](std::string_view line) { core_.observer().on_device_log(core_.cause(), line); },
                              kMaxBlocks, nullptr}) {
    device_ = factory(*this);
    for (const DeviceRange& r : device_->ranges()) {
        if (r.handler != nullptr) session_.claim(r.rid, *r.handler);
    }
    pump_main();
}

InProcessLink::~InProcessLink() = default;

int InProcessLink::submit(std::uint64_t seq, const Frame& request) {
    // The request goes from the caller's frame straight into the device's
    // session; the VM session only tracks it (no copy through its outbound bytes).
    core_.push_delivered(seq, request);
    session_.receive(Channel::Main, request.bytes());
    if (!session_.pending(Channel::Dma).empty()) pump_dma();  // DMA the handler started (rarely any)
    pump_main();
    core_.finish_front();
    return 0;
}

void InProcessLink::pump_main() {
    const std::span<const std::byte> out = session_.pending(Channel::Main);
    if (out.empty()) return;
    core_.session().receive(Channel::Main, out);
    session_.consume(Channel::Main, out.size());
}

void InProcessLink::pump_dma() {
    for (;;) {
        const std::span<const std::byte> out = session_.pending(Channel::Dma);
        if (out.empty()) return;
        core_.session().receive(Channel::Dma, out);
        session_.consume(Channel::Dma, out.size());
        core_.session().take_outbound(Channel::Dma, dma_replies_);
        if (!dma_replies_.empty()) session_.receive(Channel::Dma, dma_replies_);
    }
}

int InProcessLink::irq_update(unsigned rid, unsigned line, bool level) {
    return session_.irq_update(rid, line, level);
}

int InProcessLink::dma(Op op, unsigned mid, unsigned sid, std::uint64_t addr, std::byte* buf, std::size_t len,
                       unsigned flags) {
    int result = 1;
    const int rc = session_.dma_start(op, mid, sid, addr, buf, len, flags, [&result](int r) { result = r; });
    if (rc != 0) return rc;
    pump_dma();  // replies are immediate: the transfer completes here
    if (result == 1) return -ETIMEDOUT;  // unreachable unless the observer dropped a chunk
    return result;
}

int InProcessLink::dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags) {
    return dma(Op::Read, mid, sid, addr, buf.data(), buf.size(), flags);
}

int InProcessLink::dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf,
                             unsigned flags) {
    // The session only reads a write's buffer; its API takes one pointer type for both directions.
    return dma(Op::WriteAck, mid, sid, addr, const_cast<std::byte*>(buf.data()), buf.size(), flags);
}

// ---- TcpLink -------------------------------------------------------------------

TcpLink::TcpLink(LinkObserver& observer, TcpLinkOptions options)
    : core_(observer, true), options_(std::move(options)) {
    in_.resize(64 * 1024);
    std::string error;
    if (const int rc = listener_.open(net::HostPort{options_.listen, options_.port}, &error); rc < 0)
        throw std::system_error(-rc, std::generic_category(), error);
    port_ = listener_.port();
}

TcpLink::~TcpLink() { disconnect(); }

void TcpLink::close_fds() {
    if (main_fd_ >= 0) ::close(main_fd_);
    if (dma_fd_ >= 0) ::close(dma_fd_);
    main_fd_ = dma_fd_ = -1;
}

void TcpLink::disconnect() {
    close_fds();
    core_.clear();
}

namespace {
// One connection from `listener` by `deadline`: its fd, -ETIMEDOUT, -ECHILD
// when `give_up_fd` (>= 0) becomes readable first, or an accept error.
int accept_one(net::Listener& listener, std::chrono::steady_clock::time_point deadline, int give_up_fd) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return -ETIMEDOUT;
        if (const auto backoff = listener.backoff(); backoff.count() > 0) {  // out of descriptors: wait, then retry
            ::poll(nullptr, 0, static_cast<int>(std::min(backoff, left).count()));
            continue;
        }
        pollfd p[2] = {{listener.fd(), POLLIN, 0}, {give_up_fd, POLLIN, 0}};
        const int n = ::poll(p, give_up_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR) return -errno;
        if (n <= 0) continue;
        if (p[0].revents == 0) return -ECHILD;  // only give_up_fd: nobody is coming
        const int fd = listener.accept();
        if (fd != -EAGAIN) return fd;
    }
}

// The VM session's outbound bytes of one channel, for net::send_from().
class SessionBytes final : public net::ByteSource {
public:
    SessionBytes(VmSession& session, Channel channel) : session_(session), channel_(channel) {}
    std::size_t gather(iovec* out, std::size_t max) const override {
        const auto bytes = session_.outbound(channel_);
        if (bytes.empty() || max == 0) return 0;
        out[0] = iovec{const_cast<std::byte*>(bytes.data()), bytes.size()};
        return 1;
    }
    void consume(std::size_t n) override { session_.consume(channel_, n); }

private:
    VmSession& session_;
    Channel channel_;
};
}  // namespace

int TcpLink::accept(std::chrono::milliseconds timeout, int give_up_fd) {
    disconnect();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // PROTOCOL.md: a client opens its main connection, then its DMA connection.
    const int m = accept_one(listener_, deadline, give_up_fd);
    if (m < 0) return m;
    const int d = accept_one(listener_, deadline, give_up_fd);
    if (d < 0) {
        ::close(m);
        return d;
    }
    main_fd_ = m;
    dma_fd_ = d;
    return 0;
}

int TcpLink::submit(std::uint64_t seq, const Frame& request) {
    if (!connected()) return -ECONNRESET;
    core_.push(seq, request);
    if (core_.outstanding() < options_.window) return 0;
    // Window full: send, then wait until half of it has come back.
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    while (core_.outstanding() > options_.window / 2) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return -ETIMEDOUT;
        if (const int rc = poll_once(static_cast<int>(left.count())); rc < 0) return rc;
    }
    return 0;
}

int TcpLink::drain(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    VmSession& vm = core_.session();
    while (core_.outstanding() > 0 || !vm.outbound(Channel::Main).empty() || !vm.outbound(Channel::Dma).empty()) {
        if (!connected()) return -ECONNRESET;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return -ETIMEDOUT;
        if (const int rc = poll_once(static_cast<int>(left.count())); rc < 0) return rc;
    }
    return 0;
}

int TcpLink::pump(std::chrono::milliseconds max_wait) {
    if (!connected()) return -ECONNRESET;
    return poll_once(static_cast<int>(max_wait.count()));
}

int TcpLink::wait_claims(std::uint8_t mask, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while ((core_.claimed() & mask) != mask) {
        if (!connected()) return -ECONNRESET;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return -ETIMEDOUT;
        if (const int rc = poll_once(static_cast<int>(left.count())); rc < 0) return rc;
    }
    return 0;
}

int TcpLink::flush_out() {
    const int fds[2] = {main_fd_, dma_fd_};
    const Channel channels[2] = {Channel::Main, Channel::Dma};
    for (int i = 0; i < 2; ++i) {
        SessionBytes bytes(core_.session(), channels[i]);
        const int rc = net::send_from(fds[i], bytes);
        if (rc < 0 && rc != -EAGAIN) return -ECONNRESET;
    }
    return 0;
}

int TcpLink::read_channel(Channel ch) {
    const int fd = ch == Channel::Main ? main_fd_ : dma_fd_;
    for (;;) {
        const ssize_t n = ::recv(fd, in_.data(), in_.size(), 0);
        if (n == 0) return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -ECONNRESET;
        }
        if (!core_.session().receive(ch, std::span<const std::byte>(in_.data(), static_cast<std::size_t>(n))))
            return -EPROTO;
        if (static_cast<std::size_t>(n) < in_.size()) return 0;
    }
}

int TcpLink::poll_once(int timeout_ms) {
    if (!connected()) return -ECONNRESET;
    if (const int rc = flush_out(); rc < 0) {
        close_fds();
        return rc;
    }
    pollfd p[2] = {{main_fd_, POLLIN, 0}, {dma_fd_, POLLIN, 0}};
    if (!core_.session().outbound(Channel::Main).empty()) p[0].events |= POLLOUT;
    if (!core_.session().outbound(Channel::Dma).empty()) p[1].events |= POLLOUT;
    const int n = ::poll(p, 2, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    if (n == 0) return 0;
    for (int i = 0; i < 2; ++i) {
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            const int rc = read_channel(i == 0 ? Channel::Main : Channel::Dma);
            if (rc < 0) {
                close_fds();
                return rc;
            }
        }
    }
    // Send the DMA replies (and anything else queued) in one go.
    if (const int rc = flush_out(); rc < 0) {
        close_fds();
        return rc;
    }
    return 0;
}

}  // namespace coreio::replayer
