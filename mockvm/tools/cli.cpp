#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <ostream>
#include <pthread.h>

#include "coreio/mockvm/demo.hpp"
#include "coreio/mockvm/parse.hpp"
#include "coreio/mockvm/script.hpp"

namespace coreio::mockvm::cli {

std::optional<Options> parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err, int& exit_code) {
    CLI::App app{
        "coreio-mockvm: a mock VM for CoreIO device models.\n"
        "Listens for CoreIO clients (each opens a main then a DMA connection), routes MMIO to the\n"
        "client that claimed each range, serves DMA from guest memory and tracks IRQ lines.\n"
        "Without --script or --serve it runs the demo: waits for a client to claim range 0, writes\n"
        "a pattern at widths 1/2/4/8, reads it back and prints a table.\n"
        "Without --range: one range 0xfef00000:0x1000; without --memory: 16M of memory at 0x80000000.\n"
        "Exit status: 0 success, 1 a check failed, 2 bad command line or script.",
        "coreio-mockvm"};
    Options o;
    std::string listen = o.config.listen;
    unsigned port = 4800;
    std::vector<std::string> ranges, memory;
    std::uint64_t timeout_ms = 5000;
    bool serve = false, verbose = false;
    app.add_option("--listen", listen, "address to listen on")->capture_default_str();
    app.add_option("--port", port, "TCP port; 0 picks a free one (printed as 'listening on ADDR:PORT')")
        ->capture_default_str()
        ->check(CLI::Range(0u, 65535u));
    app.add_option("--range", ranges, "MMIO range BASE:SIZE (repeatable; rid = order given), e.g. 0xfef00000:0x1000")
        ->type_name("BASE:SIZE");
    app.add_option("--memory", memory, "guest memory region BASE:SIZE (repeatable), e.g. 0x80000000:16M")
        ->type_name("BASE:SIZE");
    auto* script = app.add_option("--script", o.script, "run a scenario script once range 0 is claimed")
        ->type_name("FILE");
    app.add_flag("--serve", serve, "serve clients until interrupted (no demo, no script)")->excludes(script);
    app.add_option("--timeout-ms", timeout_ms, "timeout of every VM request, in milliseconds")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}));
    app.add_option("--wait-ms", o.wait_ms, "how long to wait for a client to claim range 0 (0: forever)")
        ->capture_default_str();
    app.add_flag("-v,--verbose", verbose, "log client connections, claims and disconnections");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        exit_code = app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
        return std::nullopt;
    }
    try {
        o.config.listen = listen;
        o.config.port = static_cast<std::uint16_t>(port);
        o.config.timeout = std::chrono::milliseconds(timeout_ms);
        o.config.verbose = verbose;
        // Each default applies on its own: --range alone still gets the default memory.
        if (ranges.empty()) o.config.ranges = default_config().ranges;
        if (memory.empty()) o.config.memory = default_config().memory;
        for (const auto& r : ranges) o.config.ranges.push_back(parse_range(r));
        for (const auto& m : memory) {
            const RangeConfig r = parse_range(m);
            o.config.memory.push_back({r.base, r.size});
        }
    } catch (const std::invalid_argument& e) {
        err << "coreio-mockvm: " << e.what() << std::endl;
        exit_code = kExitUsage;
        return std::nullopt;
    }
    o.mode = serve ? Options::Mode::Serve : o.script.empty() ? Options::Mode::Demo : Options::Mode::Script;
    exit_code = kExitOk;
    return o;
}

namespace {

bool wait_for_range0(Vm& vm, const Options& o, std::ostream& err) {
    const auto wait = o.wait_ms == 0 ? std::chrono::milliseconds(std::chrono::hours(24 * 365))
                                     : std::chrono::milliseconds(o.wait_ms);
    if (vm.wait_for_claim(0, wait)) return true;
    err << "coreio-mockvm: no client claimed range 0 within " << o.wait_ms << " ms" << std::endl;
    return false;
}

}  // namespace

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    int code = kExitOk;
    const auto o = parse(argc, argv, out, err, code);
    if (!o) return code;

    std::optional<Script> script;
    if (o->mode == Options::Mode::Script) {
        try {
            script = load_script(o->script);
        } catch (const ScriptError& e) {
            err << "coreio-mockvm: " << e.what() << std::endl;
            return kExitUsage;
        }
    }
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (o->mode == Options::Mode::Serve) {
        // Blocked before the VM's thread starts, so only sigwait() below sees them.
        pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    }
    VmConfig config = o->config;
    config.log = [&err](std::string_view line) { err << "coreio-mockvm: " << line << std::endl; };
    std::optional<Vm> vm;
    try {
        vm.emplace(config);
    } catch (const std::exception& e) {
        err << "coreio-mockvm: " << e.what() << std::endl;
        return kExitUsage;
    }
    out << "listening on " << vm->endpoint() << std::endl;

    switch (o->mode) {
    case Options::Mode::Serve: {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        return kExitOk;
    }
    case Options::Mode::Demo:
        if (!wait_for_range0(*vm, *o, err)) return kExitFailed;
        return run_demo(*vm, out) ? kExitOk : kExitFailed;
    case Options::Mode::Script: {
        if (!wait_for_range0(*vm, *o, err)) return kExitFailed;
        const ScriptResult r = run_script(*vm, *script, out);
        if (!r.error.empty()) {
            err << "coreio-mockvm: " << r.error << std::endl;
            return kExitFailed;
        }
        if (r.failures > 0) {
            err << "coreio-mockvm: " << script->name << ": " << r.failures << " expectation(s) failed" << std::endl;
            return kExitFailed;
        }
        out << script->name << ": " << r.executed << " command(s), every expectation held" << std::endl;
        return kExitOk;
    }
    }
    return kExitOk;
}

}  // namespace coreio::mockvm::cli
