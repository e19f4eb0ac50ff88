// coreio::AsioDriver: drives a coreio::Client from an Asio io_context instead
// of a select()/poll() loop.
//
// Header-only on purpose: it is compiled into the program that uses Asio, and
// talks to the Client only through event_fd() and process_events(), so no
// Asio type crosses libcoreio's shared-library ABI and libcoreio does not
// depend on the Asio version the program uses.
#pragma once

#include <poll.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <functional>
#include <memory>
#include <utility>

#include "coreio/client.hpp"

namespace coreio {

class AsioDriver {
public:
    /// Starts driving `client` (connected now or later) on `io`. When its
    /// connection is lost, `on_close(error)` runs once on the io thread and
    /// the driver stops waiting (so io.run() can return); call start() after
    /// a new connect() to drive that connection. disconnect() from the
    /// program does not call on_close. The client must outlive the driver.
    AsioDriver(asio::io_context& io, Client& client, std::function<void(int)> on_close = {})
        : state_(std::make_shared<State>(io, client, std::move(on_close))) {
        start();
    }
    /// Stops waiting. Destroy it on the io thread, or while io is not running.
    ~AsioDriver() { stop(); }
    AsioDriver(const AsioDriver&) = delete;
    AsioDriver& operator=(const AsioDriver&) = delete;

    /// (Re)starts waiting on the client's event fd; a no-op while waiting.
    void start() {
        if (state_->waiting) return;
        if (!state_->fd.is_open()) state_->fd.assign(state_->client.event_fd());
        arm(state_);
    }
    /// Stops waiting (the client's fd stays open: the client owns it).
    void stop() {
        state_->waiting = false;
        if (state_->fd.is_open()) state_->fd.release();  // cancels the pending wait
    }

private:
    struct State {
        State(asio::io_context& io, Client& c, std::function<void(int)> cb)
            : fd(io), client(c), on_close(std::move(cb)) {}
        asio::posix::stream_descriptor fd;
        Client& client;
        std::function<void(int)> on_close;
        bool waiting = false;
    };

    static void arm(const std::shared_ptr<State>& s) {
        s->waiting = true;
        s->fd.async_wait(asio::posix::stream_descriptor::wait_read, [s](const asio::error_code& ec) {
            if (ec || !s->waiting) return;  // stopped (or the driver is gone: s keeps the state alive)
            run(s);
        });
    }

    static void run(const std::shared_ptr<State>& s) {
        const int rc = s->client.process_events();
        if (!s->waiting) return;  // a handler stopped the driver
        if (rc != 0 && rc != -ENOTCONN) {
            s->waiting = false;
            if (s->on_close) s->on_close(rc);
            return;
        }
        // Asio watches the fd edge-triggered: when work is left (a batch read
        // only part of what waits), run again instead of waiting for an edge.
        pollfd p{s->client.event_fd(), POLLIN, 0};
        if (::poll(&p, 1, 0) > 0)
            asio::post(s->fd.get_executor(), [s] {
                if (s->waiting) run(s);
            });
        else
            arm(s);
    }

    std::shared_ptr<State> state_;
};

}  // namespace coreio
