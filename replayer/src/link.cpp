#include "coreio/replayer/link.hpp"

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

bool needs_fence(const Frame& f) { return f.op() == Op::Reset || !access_wants_reply(f.op()); }

std::string what_frame(const Frame& f) { return describe(f); }

}  // namespace

// ---- LinkCore ----------------------------------------------------------------

bool LinkCore::push(std::uint64_t seq, const Frame& request) {
    if (head_ > 0 && head_ == fifo_.size()) {  // empty: reuse the storage from the start
        fifo_.clear();
        head_ = 0;
    } else if (head_ > 4096 && head_ * 2 > fifo_.size()) {
        fifo_.erase(fifo_.begin(), fifo_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
    fifo_.push_back(Pending{seq, request});
    last_seq_ = seq;
    return needs_fence(request);
}

Frame LinkCore::fence() const {
    Frame f = Frame::ping(false);
    f.set_tag(kFenceTag | (fences_ & 0xffffff));
    return f;
}

void LinkCore::complete_front(const Frame* reply) {
    const Pending p = fifo_[head_++];
    observer_.on_complete(p.seq, p.request, reply);
}

void LinkCore::finish_front() {
    if (head_ >= fifo_.size()) return;
    const Frame& req = fifo_[head_].request;
    if (!needs_fence(req)) {
        observer_.on_violation(fifo_[head_].seq, "no reply to " + what_frame(req));
    }
    complete_front(nullptr);
}

void LinkCore::on_main_frame(const Frame& f) {
    const FrameError e = f.validate(1);
    if (e != FrameError::Ok) {
        observer_.on_violation(cause(), "main connection: " + describe_error(e, f, 1));
        return;
    }
    const Op op = f.op();
    if (f.from_client()) {
        switch (op) {
        case Op::IrqUpdate:
            observer_.on_irq(cause(), f.rid(), static_cast<unsigned>(f.irq_line()), f.irq_level() != 0);
            return;
        case Op::Claim:
            claimed_ = static_cast<std::uint8_t>(claimed_ | (1u << f.rid()));
            observer_.on_claim(f.rid());
            return;
        default:
            observer_.on_violation(cause(), "main connection: unexpected client frame " + what_frame(f));
            return;
        }
    }
    if (op == Op::Ping) {
        if ((f.tag() & 0xff000000u) == kFenceTag && head_ < fifo_.size() && needs_fence(fifo_[head_].request)) {
            ++fences_;
            complete_front(nullptr);
        } else {
            observer_.on_violation(cause(), "main connection: PING echo that answers nothing " + what_frame(f));
        }
        return;
    }
    if (op == Op::Write || op == Op::WritePair) return;  // a posted write echoed: range not claimed
    if (access_wants_reply(op)) {
        if (head_ >= fifo_.size() || needs_fence(fifo_[head_].request)) {
            observer_.on_violation(cause(), "main connection: reply that answers nothing " + what_frame(f));
            return;
        }
        const Frame& req = fifo_[head_].request;
        Frame masked = f;
        masked.set_error(false);
        if (masked.word(0) != req.word(0) || f.word(1) != req.word(1) || f.address() != req.address()) {
            observer_.on_violation(cause(), "main connection: reply " + what_frame(f) +
                                                " does not match the request in flight " + what_frame(req));
        }
        complete_front(&f);
        return;
    }
    observer_.on_violation(cause(), "main connection: unexpected frame " + what_frame(f));
}

bool LinkCore::on_dma_frame(const Frame& f, Frame& reply) {
    const FrameError e = f.validate(1);
    if (e != FrameError::Ok) {
        observer_.on_violation(cause(), "DMA connection: " + describe_error(e, f, 1));
        return false;
    }
    if (!f.from_client() || (f.op() != Op::Read && f.op() != Op::WriteAck)) {
        observer_.on_violation(cause(), "DMA connection: unexpected frame " + what_frame(f));
        return false;
    }
    reply = f;
    reply.set_extra_blocks(0);
    observer_.on_dma(cause(), f, reply);
    return true;
}

// ---- InProcessLink -------------------------------------------------------------

InProcessLink::InProcessLink(const DeviceFactory& factory, LinkObserver& observer)
    : core_(observer),
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
    core_.push(seq, request);
    session_.receive(Channel::Main, request.bytes());
    pump_dma();
    pump_main();
    core_.finish_front();  // a no-op when the reply already completed it
    return 0;
}

void InProcessLink::pump_main() {
    const std::span<const std::byte> out = session_.pending(Channel::Main);
    if (out.empty()) return;
    const std::size_t n = out.size() - out.size() % kBlockSize;  // a client's frames are one block
    for (std::size_t off = 0; off < n; off += kBlockSize) core_.on_main_frame(Frame::from_bytes(out.data() + off));
    session_.consume(Channel::Main, n);
}

void InProcessLink::pump_dma() {
    for (;;) {
        const std::span<const std::byte> out = session_.pending(Channel::Dma);
        if (out.size() < kBlockSize) return;
        const std::size_t n = out.size() - out.size() % kBlockSize;
        dma_replies_.clear();
        Frame reply;
        for (std::size_t off = 0; off < n; off += kBlockSize) {
            if (core_.on_dma_frame(Frame::from_bytes(out.data() + off), reply))
                dma_replies_.insert(dma_replies_.end(), reply.data(), reply.data() + kBlockSize);
        }
        session_.consume(Channel::Dma, n);
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

TcpLink::TcpLink(LinkObserver& observer, TcpLinkOptions options) : core_(observer), options_(std::move(options)) {
    in_.resize(64 * 1024);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(options_.port);
    if (::inet_pton(AF_INET, options_.listen.c_str(), &sa.sin_addr) != 1) {
        ::close(listen_fd_);
        throw std::system_error(EINVAL, std::generic_category(), "bad listen address '" + options_.listen + "'");
    }
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(listen_fd_, 8) != 0) {
        const int err = errno;
        ::close(listen_fd_);
        throw std::system_error(err, std::generic_category(),
                                "cannot listen on " + options_.listen + ":" + std::to_string(options_.port));
    }
    socklen_t len = sizeof sa;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
}

TcpLink::~TcpLink() {
    disconnect();
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

void TcpLink::close_fds() {
    if (main_fd_ >= 0) ::close(main_fd_);
    if (dma_fd_ >= 0) ::close(dma_fd_);
    main_fd_ = dma_fd_ = -1;
}

void TcpLink::disconnect() {
    close_fds();
    for (int i = 0; i < 2; ++i) {
        reader_[i].reset();
        out_[i].clear();
        out_head_[i] = 0;
    }
    core_.clear();
}

namespace {
int accept_one(int listen_fd, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return -ETIMEDOUT;
        pollfd p{listen_fd, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR) return -errno;
        if (n <= 0) continue;
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -errno;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }
}
}  // namespace

int TcpLink::accept(std::chrono::milliseconds timeout) {
    disconnect();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const int m = accept_one(listen_fd_, deadline);
    if (m < 0) return m;
    const int d = accept_one(listen_fd_, deadline);
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
    const bool fence = core_.push(seq, request);
    out_[0].insert(out_[0].end(), request.data(), request.data() + kBlockSize);
    if (fence) {
        const Frame f = core_.fence();
        out_[0].insert(out_[0].end(), f.data(), f.data() + kBlockSize);
    }
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
    while (core_.outstanding() > 0 || out_head_[0] < out_[0].size() || out_head_[1] < out_[1].size()) {
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
    for (int i = 0; i < 2; ++i) {
        while (out_head_[i] < out_[i].size()) {
            const ssize_t n = ::send(fds[i], out_[i].data() + out_head_[i], out_[i].size() - out_head_[i], MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return -ECONNRESET;
            }
            out_head_[i] += static_cast<std::size_t>(n);
        }
        if (out_head_[i] == out_[i].size()) {
            out_[i].clear();
            out_head_[i] = 0;
        }
    }
    return 0;
}

int TcpLink::read_channel(Channel ch) {
    const int i = ch == Channel::Main ? 0 : 1;
    const int fd = i == 0 ? main_fd_ : dma_fd_;
    for (;;) {
        const ssize_t n = ::recv(fd, in_.data(), in_.size(), 0);
        if (n == 0) return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -ECONNRESET;
        }
        bool ok = true;
        const std::span<const std::byte> bytes(in_.data(), static_cast<std::size_t>(n));
        if (ch == Channel::Main) {
            ok = reader_[0].feed(bytes, [&](const Frame& f) { core_.on_main_frame(f); },
                                 [&](FrameError e, const Frame& f) {
                                     core_.observer().on_violation(core_.cause(), "main connection: " +
                                                                                      describe_error(e, f));
                                 });
        } else {
            Frame reply;
            ok = reader_[1].feed(bytes,
                                 [&](const Frame& f) {
                                     if (core_.on_dma_frame(f, reply))
                                         out_[1].insert(out_[1].end(), reply.data(), reply.data() + kBlockSize);
                                 },
                                 [&](FrameError e, const Frame& f) {
                                     core_.observer().on_violation(core_.cause(),
                                                                   "DMA connection: " + describe_error(e, f));
                                 });
        }
        if (!ok) return -EPROTO;
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
    if (out_head_[0] < out_[0].size()) p[0].events |= POLLOUT;
    if (out_head_[1] < out_[1].size()) p[1].events |= POLLOUT;
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
