#include "cli.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <ostream>
#include <pthread.h>
#include <system_error>

#include "coreio/cli/conventions.hpp"
#include "coreio/mockvm/demo.hpp"
#include "coreio/net/host_port.hpp"
#include "coreio/mockvm/parse.hpp"
#include "coreio/mockvm/script.hpp"
#include "coreio/trace/output_file.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"
#ifdef COREIO_HAVE_GUEST
#include "coreio/mockvm/guest/guest.hpp"
#endif

namespace coreio::mockvm::cli {

namespace {

/// What parse() reads before checking it and turning it into Options.
struct RawArgs {
    std::string listen;
    unsigned port = net::kDefaultPort;
    std::vector<std::string> ranges, memory;
    std::uint64_t timeout_ms = 5000;
    bool serve = false, verbose = false;
};

void declare_options(CLI::App& app, Options& o, RawArgs& a) {
    coreio::cli::add_version(app, "coreio-mockvm");
    app.add_option("--listen", a.listen, "address to listen on")->capture_default_str();
    app.add_option("--port", a.port, "TCP port; 0 picks a free one (printed as 'listening on ADDR:PORT')")
        ->capture_default_str()
        ->check(CLI::Range(0u, 65535u));
    app.add_option("--range", a.ranges, "MMIO range BASE:SIZE (repeatable; rid = order given), e.g. 0xfef00000:0x1000")
        ->type_name("BASE:SIZE");
    app.add_option("--memory", a.memory, "guest memory region BASE:SIZE (repeatable), e.g. 0x80000000:16M")
        ->type_name("BASE:SIZE");
    auto* script = app.add_option("--script", o.script, "run a scenario script once range 0 is claimed")
        ->type_name("FILE");
    auto* serve_flag =
        app.add_flag("--serve", a.serve, "serve clients until interrupted (no demo, no script)")->excludes(script);
    auto* guest = app.add_option("--guest", o.guest,
                                 "run AArch64 firmware (ELF) once range 0 is claimed; its power-off value is the "
                                 "exit status")
                      ->type_name("FILE")
                      ->excludes(script)
                      ->excludes(serve_flag);
    app.add_option("--guest-max-instructions", o.guest_max_instructions,
                   "stop the guest with an error after N instructions (0: no limit)")
        ->needs(guest);
    app.add_option("--timeout-ms", a.timeout_ms, "timeout of every VM request, in milliseconds")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}));
    app.add_option("--wait-ms", o.wait_ms, "how long to wait for a client to claim range 0 (0: forever)")
        ->capture_default_str();
    app.add_flag("-v,--verbose", a.verbose, "log client connections, claims and disconnections");
    auto* record = app.add_option("--record", o.record, "record every frame of every client to a trace file")
                       ->type_name("FILE");
    app.add_flag("--record-raw", o.record_raw, "keep whole wire frames in the trace (byte-exact, larger)")
        ->needs(record);
}

/// Fills o.config from `a`; throws std::invalid_argument on a bad --range or --memory.
void apply_config(const RawArgs& a, Options& o) {
    o.config.listen = a.listen;
    o.config.port = static_cast<std::uint16_t>(a.port);
    o.config.timeout = std::chrono::milliseconds(a.timeout_ms);
    o.config.verbose = a.verbose;
    // Each default applies on its own: --range alone still gets the default memory.
    if (a.ranges.empty()) o.config.ranges = default_config().ranges;
    if (a.memory.empty()) o.config.memory = default_config().memory;
    for (const auto& r : a.ranges) o.config.ranges.push_back(parse_range(r));
    for (const auto& m : a.memory) {
        const RangeConfig r = parse_range(m);
        o.config.memory.push_back({r.base, r.size});
    }
}

/// Sets o.mode; false (the error printed) when --guest asks for a part this build lacks.
bool choose_mode(const RawArgs& a, Options& o, [[maybe_unused]] std::ostream& err) {
    o.mode = a.serve ? Options::Mode::Serve : !o.script.empty() ? Options::Mode::Script : Options::Mode::Demo;
    if (!o.guest.empty()) {
#ifdef COREIO_HAVE_GUEST
        o.mode = Options::Mode::Guest;
#else
        err << "coreio-mockvm: --guest: this coreio-mockvm was built without the guest CPU "
               "(COREIO_BUILD_GUEST=OFF or no unicorn-engine)" << std::endl;
        return false;
#endif
    }
    return true;
}

}  // namespace

std::optional<Options> parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err, int& exit_code) {
    CLI::App app{
        "coreio-mockvm: a mock VM for CoreIO device models.\n"
        "Listens for CoreIO clients (each opens a main then a DMA connection), routes MMIO to the\n"
        "client that claimed each range, serves DMA from guest memory and tracks IRQ lines.\n"
        "With --guest FILE it runs AArch64 bare-metal firmware whose MMIO goes to the devices; the\n"
        "firmware's power-off value is the exit status (see mockvm/README.md, 'The guest CPU').\n"
        "Without --script, --serve or --guest it runs the demo: waits for a client to claim range 0, writes\n"
        "a pattern at widths 1/2/4/8, reads it back and prints a table.\n"
        "Without --range: one range 0xfef00000:0x1000; without --memory: 16M of memory at 0x80000000.\n"
        "Exit status: 0 success, 1 a check failed, 2 bad command line or script.",
        "coreio-mockvm"};
    Options o;
    RawArgs a;
    a.listen = o.config.listen;
    declare_options(app, o, a);
    if (const auto code = coreio::cli::parse(app, argc, argv, out, err)) {
        exit_code = *code;
        return std::nullopt;
    }
    try {
        apply_config(a, o);
    } catch (const std::invalid_argument& e) {
        err << "coreio-mockvm: " << e.what() << std::endl;
        exit_code = kExitUsage;
        return std::nullopt;
    }
    if (!choose_mode(a, o, err)) {
        exit_code = kExitUsage;
        return std::nullopt;
    }
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

/// The trace a --record run writes: the header names this VM's ranges and memory.
/// Frames of every client go through one tap, so records carry client index 0.
/// The file is a temporary one until publish() (once the VM listens), so a
/// run that fails to start leaves an existing file at the path untouched.
struct Recording {
    trace::OutputFile file;
    trace::TraceWriter writer;
    std::optional<trace::TraceTap> tap;
    /// A guest run's time (see GuestConfig::time_ns): its recording's clock.
    std::atomic<std::uint64_t> guest_time_ns{0};

    /// Opens `path`; returns an empty string or the error naming the path.
    std::string open(const Options& o) {
        trace::TraceHeader h;
        h.tool = "coreio-mockvm";
        h.tool_version = std::string(coreio::cli::version());
        h.target = o.config.listen;
        h.observer = trace::Observer::Vm;
        h.raw_frames = o.record_raw;
        for (std::size_t i = 0; i < o.config.ranges.size(); ++i)
            h.ranges.push_back({static_cast<std::uint32_t>(i), o.config.ranges[i].base, o.config.ranges[i].size, {}});
        for (const auto& m : o.config.memory) h.memory.push_back({0, 0, m.base, m.size, {}});
        trace::WriterOptions options;
        if (o.mode == Options::Mode::Guest) {
            // Guest time and no timer-driven flushes: the same firmware and device give the same bytes.
            h.created_unix_ns = 1;  // no wall-clock start
            options.clock = [this] { return guest_time_ns.load(std::memory_order_relaxed); };
            options.background_flush = false;
            options.flush_interval = std::chrono::hours(24);
        }
        if (std::string e = file.open(o.record); !e.empty()) return e;
        if (std::string e = writer.open(file.fd(), o.record, h, options); !e.empty()) return e;
        tap.emplace(writer, trace::TapOptions{.observer = trace::Observer::Vm, .raw_frames = o.record_raw});
        return {};
    }
    /// Writes what is still pending and closes the file; returns the error, if any.
    std::string close() {
        if (!writer.is_open()) return {};
        if (tap) tap->finish();
        if (std::string e = writer.close(); !e.empty()) return e;
        return file.commit();
    }
};

#ifdef COREIO_HAVE_GUEST
/// Runs the guest once range 0 is claimed; its power-off value is the exit code
/// (values above 255 give 255, so a failure never reads as success).
int run_guest(Vm& vm, guest::Guest& g, const Options& o, std::ostream& err) {
    if (!wait_for_range0(vm, o, err)) return kExitFailed;
    const guest::GuestResult r = g.run();
    if (!r.exited) {
        err << "coreio-mockvm: guest: " << r.error << std::endl;
        return kExitFailed;
    }
    return static_cast<int>(std::min<std::uint32_t>(r.exit_value, 255));
}
#endif

/// Runs what the command line asked for on a started VM; returns the exit code.
int run_mode(Vm& vm, const Options& o, const std::optional<Script>& script, const sigset_t& stop_signals,
             std::ostream& out, std::ostream& err) {
    switch (o.mode) {
    case Options::Mode::Guest: return kExitUsage;  // not here: run() runs the Guest it loaded
    case Options::Mode::Serve: {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        return kExitOk;
    }
    case Options::Mode::Demo:
        if (!wait_for_range0(vm, o, err)) return kExitFailed;
        return run_demo(vm, out) ? kExitOk : kExitFailed;
    case Options::Mode::Script: {
        if (!wait_for_range0(vm, o, err)) return kExitFailed;
        const ScriptResult r = run_script(vm, *script, out);
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

/// Loads --script in Script mode into `script`; false (the error printed) when it is bad.
bool load_script_of(const Options& o, std::optional<Script>& script, std::ostream& err) {
    if (o.mode != Options::Mode::Script) return true;
    try {
        script = load_script(o.script);
    } catch (const ScriptError& e) {
        err << "coreio-mockvm: " << e.what() << std::endl;
        return false;
    }
    return true;
}

/// SIGINT and SIGTERM. In Serve mode they are blocked here, before the VM's
/// thread starts, so only sigwait() in run_mode() sees them.
sigset_t stop_signals_of(const Options& o) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (o.mode == Options::Mode::Serve) pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    return stop_signals;
}

/// Starts the VM in `vm`; false (the error printed) when it cannot listen or its config is bad.
bool start_vm(std::optional<Vm>& vm, const VmConfig& config, std::ostream& err) {
    try {
        vm.emplace(config);
    } catch (const std::system_error& e) {
        err << "coreio-mockvm: "
            << coreio::cli::listen_error(coreio::cli::endpoint(config.listen, config.port), e.code().value())
            << std::endl;
        return false;
    } catch (const std::exception& e) {
        err << "coreio-mockvm: " << e.what() << std::endl;
        return false;
    }
    return true;
}

#ifdef COREIO_HAVE_GUEST
/// Loads --guest's firmware (before "listening on": a bad file is a usage
/// error); false (the error printed) when it cannot be loaded.
bool load_guest(std::optional<guest::Guest>& firmware, Vm& vm, const Options& o, Recording& recording,
                std::ostream& out, std::ostream& err) {
    if (o.mode != Options::Mode::Guest) return true;
    try {
        firmware.emplace(vm, guest::GuestConfig{.firmware = o.guest,
                                                .max_instructions = o.guest_max_instructions,
                                                .console = &out,
                                                .time_ns = &recording.guest_time_ns});
    } catch (const guest::GuestError& e) {
        err << "coreio-mockvm: --guest: " << e.what() << std::endl;
        return false;
    }
    return true;
}
#endif

/// Starts the VM, says where it listens and runs the mode. The VM is gone when
/// this returns, so the recording can then close with every frame. nullopt
/// (the error printed) when the VM, the guest or the recording could not start.
std::optional<int> run_vm(const Options& o, const VmConfig& config, Recording& recording,
                          const std::optional<Script>& script, const sigset_t& stop_signals, std::ostream& out,
                          std::ostream& err) {
    std::optional<Vm> vm;
    if (!start_vm(vm, config, err)) return std::nullopt;
#ifdef COREIO_HAVE_GUEST
    std::optional<guest::Guest> firmware;
    if (!load_guest(firmware, *vm, o, recording, out, err)) return std::nullopt;
#endif
    if (const std::string e = recording.file.publish(); !o.record.empty() && !e.empty()) {
        err << "coreio-mockvm: --record: " << e << std::endl;
        return std::nullopt;
    }
    out << "listening on " << vm->endpoint() << std::endl;
#ifdef COREIO_HAVE_GUEST
    return firmware ? run_guest(*vm, *firmware, o, err) : run_mode(*vm, o, script, stop_signals, out, err);
#else
    return run_mode(*vm, o, script, stop_signals, out, err);
#endif
}

}  // namespace

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    int code = kExitOk;
    const auto o = parse(argc, argv, out, err, code);
    if (!o) return code;

    std::optional<Script> script;
    if (!load_script_of(*o, script, err)) return kExitUsage;
    const sigset_t stop_signals = stop_signals_of(*o);
    VmConfig config = o->config;
    config.log = [&err](std::string_view line) { err << "coreio-mockvm: " << line << std::endl; };
    Recording recording;
    if (!o->record.empty()) {
        if (const std::string e = recording.open(*o); !e.empty()) {
            err << "coreio-mockvm: --record: " << e << std::endl;
            return kExitUsage;
        }
        config.tap = &*recording.tap;
    }
    const std::optional<int> code_run = run_vm(*o, config, recording, script, stop_signals, out, err);
    if (!code_run) return kExitUsage;
    if (const std::string e = recording.close(); !e.empty()) {
        err << "coreio-mockvm: --record: " << e << std::endl;
        return kExitFailed;
    }
    return *code_run;
}

}  // namespace coreio::mockvm::cli
