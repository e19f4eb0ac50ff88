#include "coreio/recorder/proxy.hpp"

#include <asio.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "coreio/frame.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"

namespace coreio::recorder {

using asio::ip::tcp;

bool split_host_port(std::string_view text, std::uint16_t default_port, std::string& host, std::uint16_t& port) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        if (default_port == 0 || text.empty()) return false;
        host = std::string(text);
        port = default_port;
        return true;
    }
    host = std::string(text.substr(0, colon));
    const std::string_view p = text.substr(colon + 1);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (host.empty() || p.empty() || ec != std::errc() || end != p.data() + p.size() || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
    return true;
}

namespace {

constexpr std::size_t kBufferBytes = 64 * 1024;

// One device model: its tap and its (up to) two links.
struct ClientRec;

// One accepted connection and the one opened to the VM for it.
struct Link : std::enable_shared_from_this<Link> {
    tcp::socket down;  // to the device model
    tcp::socket up;    // to the VM
    Channel channel;
    ClientRec* client;
    bool closed = false;
    // One buffer and frame splitter per direction: [0] device -> VM, [1] VM -> device.
    std::array<std::vector<std::byte>, 2> buf{std::vector<std::byte>(kBufferBytes), std::vector<std::byte>(kBufferBytes)};
    std::array<FrameReader, 2> frames;
    // The frames one read completed, handed to the tap together (one lock, one clock reading).
    std::array<std::vector<Frame>, 2> batch;

    Link(tcp::socket d, asio::io_context& io, Channel ch, ClientRec* c)
        : down(std::move(d)), up(io), channel(ch), client(c) {
        for (auto& b : batch) b.reserve(kBufferBytes / kBlockSize + 1);  // a read's worth: no allocation later
    }
};

struct ClientRec {
    std::unique_ptr<trace::TraceTap> tap;
    std::weak_ptr<Link> links[2];
};

}  // namespace

// Handlers capture a plain pointer: the io_context lives inside Impl and its
// pending handlers die with it, so they must not own it (that was a cycle).
struct RecordingProxy::Impl {
    asio::io_context io;
    tcp::acceptor acceptor{io};
    tcp::resolver::results_type target;
    std::string target_text;
    ProxyOptions options;
    trace::TraceWriter writer;
    std::map<std::uint32_t, std::unique_ptr<ClientRec>> clients;
    std::vector<tcp::socket> waiting;  // accepted, VM connection not opened yet (kept in order)
    bool connecting = false;
    std::uint32_t accepted = 0;  // connections taken, in order: even = main, odd = DMA
    std::atomic<std::uint32_t> client_count{0};
    std::thread thread;
    std::once_flag stopped;
    std::atomic<bool> running{false};

    void log(const std::string& s) {
        if (options.log)
            options.log(s);
        else
            std::fprintf(stderr, "coreio-record: %s\n", s.c_str());
    }

    void accept() {
        acceptor.async_accept([self = this](const asio::error_code& ec, tcp::socket s) {
            if (ec) {
                if (ec != asio::error::operation_aborted) self->log("accept failed: " + ec.message());
                if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
            } else {
                self->waiting.push_back(std::move(s));
                self->connect_next();
            }
            self->accept();
        });
    }

    // Opens the VM connection for the oldest waiting one; one at a time so the VM sees our order.
    void connect_next() {
        if (connecting || waiting.empty()) return;
        connecting = true;
        const std::uint32_t n = accepted++;
        const Channel ch = n % 2 == 0 ? Channel::Main : Channel::Dma;
        const std::uint32_t index = n / 2;
        auto& rec = clients[index];
        if (!rec) {
            rec = std::make_unique<ClientRec>();
            trace::TapOptions o;
            o.observer = trace::Observer::Client;  // "Sent" = device model -> VM
            o.client = index;
            o.raw_frames = options.raw_frames;
            rec->tap = std::make_unique<trace::TraceTap>(writer, o);
            client_count = index + 1;
        }
        auto link = std::make_shared<Link>(std::move(waiting.front()), io, ch, rec.get());
        waiting.erase(waiting.begin());
        rec->links[static_cast<int>(ch)] = link;
        asio::async_connect(link->up, target,
                            [self = this, link, index](const asio::error_code& ec, const tcp::endpoint&) {
                                self->connecting = false;
                                if (ec) {
                                    self->log("client " + std::to_string(index) + ": cannot connect to " +
                                              self->target_text + ": " + ec.message());
                                    self->close(link);
                                } else {
                                    asio::error_code ignore;
                                    link->up.set_option(tcp::no_delay(true), ignore);
                                    link->down.set_option(tcp::no_delay(true), ignore);
                                    link->client->tap->on_connection(link->channel, true);
                                    self->pump(link, 0);
                                    self->pump(link, 1);
                                }
                                self->connect_next();
                            });
    }

    // Moves bytes one way: read what is there, record its frames, write it all, repeat.
    void pump(const std::shared_ptr<Link>& link, int dir) {
        tcp::socket& from = dir == 0 ? link->down : link->up;
        from.async_read_some(
            asio::buffer(link->buf[dir]), [self = this, link, dir](const asio::error_code& ec, std::size_t n) {
                if (ec || link->closed) {
                    self->close(link);
                    return;
                }
                const Direction d = dir == 0 ? Direction::Sent : Direction::Received;
                trace::TraceTap& tap = *link->client->tap;
                const Channel ch = link->channel;
                std::vector<Frame>& batch = link->batch[dir];
                batch.clear();
                link->frames[dir].feed(
                    std::span<const std::byte>(link->buf[dir].data(), n),
                    [&](const Frame& f) { batch.push_back(f); },
                    [](FrameError, const Frame&) {});
                if (!batch.empty()) tap.on_frames(ch, d, batch);
                tcp::socket& to = dir == 0 ? link->up : link->down;
                asio::async_write(to, asio::buffer(link->buf[dir].data(), n),
                                  [self, link, dir](const asio::error_code& wec, std::size_t) {
                                      if (wec || link->closed) {
                                          self->close(link);
                                          return;
                                      }
                                      self->pump(link, dir);
                                  });
            });
    }

    // Closes a link and the other link of its device model (a VM drops a client whose connection closed).
    void close(const std::shared_ptr<Link>& link) {
        if (link->closed) return;
        link->closed = true;
        asio::error_code ignore;
        link->down.close(ignore);
        if (link->up.is_open()) {
            link->up.close(ignore);
            link->client->tap->on_connection(link->channel, false);
        }
        for (auto& w : link->client->links)
            if (auto other = w.lock(); other && other != link) close(other);
    }

    void shutdown() {
        asio::error_code ignore;
        acceptor.close(ignore);
        for (auto& s : waiting) s.close(ignore);
        waiting.clear();
        for (auto& [i, rec] : clients)
            for (auto& w : rec->links)
                if (auto l = w.lock()) close(l);
        for (auto& [i, rec] : clients) rec->tap.reset();  // writes what still waits for a reply
        io.stop();
    }
};

RecordingProxy::RecordingProxy() : impl_(std::make_shared<Impl>()) {}

RecordingProxy::~RecordingProxy() {
    stop();
    if (impl_->thread.joinable()) impl_->thread.join();
    impl_->writer.close();
}

std::string RecordingProxy::start(const ProxyOptions& options) {
    Impl& m = *impl_;
    m.options = options;
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(options.target, 4800, host, port))
        return "bad target \"" + options.target + "\" (expected host[:port])";
    asio::error_code ec;
    tcp::resolver resolver(m.io);
    m.target = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return "cannot resolve target " + host + ": " + ec.message();
    m.target_text = host + ":" + std::to_string(port);
    std::string lhost;
    std::uint16_t lport = 0;
    if (!split_host_port(options.listen, 0, lhost, lport))
        return "bad listen address \"" + options.listen + "\" (expected host:port)";
    const auto addr = asio::ip::make_address(lhost, ec);
    if (ec) return "bad listen address \"" + lhost + "\": " + ec.message();
    const tcp::endpoint ep(addr, lport);
    m.acceptor.open(ep.protocol(), ec);
    if (!ec) m.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) m.acceptor.bind(ep, ec);
    if (!ec) m.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return "cannot listen on " + options.listen + ": " + ec.message();
    trace::TraceHeader h;
    h.tool = "coreio-record";
    h.tool_version = COREIO_VERSION;
    h.target = m.target_text;
    h.observer = trace::Observer::Proxy;
    h.raw_frames = options.raw_frames;
    h.labels = options.labels;
    if (std::string e = m.writer.open(options.output, h); !e.empty()) return e;
    m.accept();
    return {};
}

std::uint16_t RecordingProxy::port() const {
    asio::error_code ec;
    const auto ep = impl_->acceptor.local_endpoint(ec);
    return ec ? 0 : ep.port();
}

void RecordingProxy::run(bool handle_signals) {
    Impl& m = *impl_;
    std::unique_ptr<asio::signal_set> signals;
    if (handle_signals) {
        signals = std::make_unique<asio::signal_set>(m.io, SIGINT, SIGTERM);
        signals->async_wait([this](const asio::error_code& ec, int) {
            if (!ec) stop();
        });
    }
    m.running = true;
    m.io.run();
    m.running = false;
}

void RecordingProxy::run_in_thread() {
    impl_->thread = std::thread([this] { run(false); });
}

void RecordingProxy::stop() {
    std::call_once(impl_->stopped, [this] {
        Impl* self = impl_.get();
        asio::post(self->io, [self] { self->shutdown(); });
        if (!self->running && !self->thread.joinable()) self->io.run();  // nobody runs the loop: do it here
    });
    if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) impl_->thread.join();
    impl_->writer.flush();
}

std::uint32_t RecordingProxy::clients() const { return impl_->client_count; }
std::uint64_t RecordingProxy::records() const { return impl_->writer.records(); }
std::string RecordingProxy::close_trace() { return impl_->writer.close(); }
std::uint64_t RecordingProxy::records_written() const { return impl_->writer.records_written(); }

}  // namespace coreio::recorder
