// RecordingProxy: sits between device models and a VM and records what they say.
// A device model connects to the proxy as if it were the VM; for every
// accepted connection the proxy opens one to the VM, in the same order (so the
// VM pairs main and DMA connections as it would without the proxy), forwards
// the bytes both ways unchanged and feeds every frame to a TraceTap per device
// model. Connections are paired into device models by accept order
// (net::ConnectionPairing, fixed at accept: a connection is recorded as it
// opens, before its traffic could show its role). A device model's tap is
// freed when both its connections have closed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coreio::recorder {

struct ProxyOptions {
    /// Where device models connect: "host:port" (port 0 = any free port).
    std::string listen = "127.0.0.1:0";
    /// The VM: "host[:port]" or "[v6addr]:port" (port 4800 by default).
    std::string target;
    /// Trace file to write.
    std::string output;
    /// Keep whole wire frames in the trace.
    bool raw_frames = false;
    /// Free-form labels for the trace header ("key=value" pairs).
    std::vector<std::pair<std::string, std::string>> labels;
    /// One line per notable event (connections, errors); default: stderr.
    std::function<void(std::string_view)> log;
};

class RecordingProxy {
public:
    RecordingProxy();
    /// Stops (see stop()) and closes the trace.
    ~RecordingProxy();
    RecordingProxy(const RecordingProxy&) = delete;
    RecordingProxy& operator=(const RecordingProxy&) = delete;

    /// Resolves the target, binds the listening socket and creates the trace
    /// file. Returns an empty string or an error naming what failed.
    std::string start(const ProxyOptions& options);
    /// The port device models connect to (after start()).
    std::uint16_t port() const;
    /// Runs the proxy in the calling thread until stop() (or SIGINT/SIGTERM
    /// when `handle_signals`: they are taken through a signalfd, so block them
    /// in the process before start(), whose trace writer starts a thread).
    void run(bool handle_signals = false);
    /// Runs the proxy on a background thread (for tests and embedding).
    void run_in_thread();
    /// Closes every connection, writes pending transactions, flushes the
    /// trace and ends run(). Thread-safe; idempotent.
    void stop();
    /// Device models seen so far (pairs of connections started).
    std::uint32_t clients() const;
    /// Records recorded so far (appended to the trace writer).
    std::uint64_t records() const;
    /// After stop(): closes the trace file. Returns an empty string, or the
    /// first write error (naming the file, the cause and how many records the
    /// file holds).
    std::string close_trace();
    /// Records the trace file holds: after close_trace(), exactly its contents.
    std::uint64_t records_written() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace coreio::recorder
