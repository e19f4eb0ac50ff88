// coreio-record: a recording proxy between device models and a VM.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <string>

#include "coreio/cli/conventions.hpp"
#include "coreio/net/host_port.hpp"
#include "coreio/recorder/proxy.hpp"

int main(int argc, char** argv) {
    CLI::App app{"coreio-record: device models connect here as if to the VM; every frame is forwarded\n"
                 "unchanged and recorded. Stops on SIGINT/SIGTERM. Exit status: 0 ok, 2 error."};
    coreio::cli::add_version(app, "coreio-record");
    coreio::recorder::ProxyOptions o;
    std::vector<std::string> labels;
    app.add_option("--listen", o.listen, "address device models connect to, host:port (port 0: any)")->required();
    app.add_option("--target", o.target,
                   "the VM, host[:port] or [v6addr]:port (default port " + std::to_string(coreio::net::kDefaultPort) + ")")
        ->required();
    app.add_option("-o,--output", o.output, "trace file to write")->required();
    app.add_flag("--raw", o.raw_frames, "keep whole wire frames in the trace (byte-exact)");
    app.add_option("--label", labels, "key=value note for the trace header (repeatable)");
    if (const auto code = coreio::cli::parse(app, argc, argv)) return *code;
    for (const auto& l : labels) {
        const auto eq = l.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::fprintf(stderr, "coreio-record: --label \"%s\" is not key=value\n", l.c_str());
            return coreio::cli::kExitUsage;
        }
        o.labels.emplace_back(l.substr(0, eq), l.substr(eq + 1));
    }
    // SIGINT/SIGTERM blocked before any thread exists (start() starts the trace
    // writer's), so they reach only run()'s signalfd and the trace is closed
    // cleanly; a thread with them unblocked would be killed by the default action.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    coreio::recorder::RecordingProxy proxy;
    if (const std::string e = proxy.start(o); !e.empty()) {
        std::fprintf(stderr, "coreio-record: %s\n", e.c_str());
        return coreio::cli::kExitUsage;
    }
    std::fprintf(stderr, "coreio-record: listening on port %u, forwarding to %s, recording to %s\n", proxy.port(),
                 o.target.c_str(), o.output.c_str());
    proxy.run(true);
    proxy.stop();
    const std::string error = proxy.close_trace();  // a write error: the count is what the file holds
    std::fprintf(stderr, "coreio-record: %u device model(s), %llu records in %s\n", proxy.clients(),
                 static_cast<unsigned long long>(proxy.records_written()), o.output.c_str());
    if (!error.empty()) {
        std::fprintf(stderr, "coreio-record: %s\n", error.c_str());
        return 2;
    }
    return 0;
}
