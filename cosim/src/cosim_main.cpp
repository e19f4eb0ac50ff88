#include "coreio/cosim/cosim_main.hpp"

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "coreio/cli/conventions.hpp"
#include "coreio/client.hpp"
#include "coreio/cosim/bridge.hpp"
#include "coreio/cosim/checkers.hpp"
#include "coreio/cosim/coverage_map.hpp"
#include "coreio/cosim/reset_check.hpp"

namespace coreio::cosim {

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

/// Parses a decimal or 0x-prefixed number, naming the option on error.
std::optional<std::uint64_t> parse_number(const std::string& text, const char* option) {
    if (text.empty()) return std::nullopt;
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text.c_str(), &end, 0);
    if (errno != 0 || end == text.c_str() || *end != '\0' || text[0] == '-')
        throw CLI::ValidationError(option, "'" + text + "' is not a number (decimal or 0x hex)");
    return v;
}

/// The start-up line on how MMIO addresses reach the design's address port.
void print_address_map(const char* program, const BridgeOptions& o) {
    if (o.addr_bits >= 64) return;
    const auto span = std::uint64_t{1} << o.addr_bits;
    const auto hex = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    if (o.range_size == 0)
        std::fprintf(stderr,
                     "%s: the design decodes %u address bits; the bus address is the low %u bits of (address - "
                     "0x%llx); give --range-size to have accesses beyond 0x%llx answered as bus errors\n",
                     program, o.addr_bits, o.addr_bits, hex(o.base), hex(span - 1));
    else if (o.range_size > span)
        std::fprintf(stderr,
                     "%s: the range (0x%llx bytes) is larger than the design's %u-bit address: accesses at offsets "
                     "0x%llx..0x%llx answer a bus error\n",
                     program, hex(o.range_size), o.addr_bits, hex(span), hex(o.range_size - 1));
}

/// Writes the model's coverage data to `path` (when given) and says so on failure.
bool write_coverage(const char* program, Model& model, const std::string& path) {
    if (path.empty()) return true;
    std::string error;
    if (model.coverage_write(path, error)) return true;
    std::fprintf(stderr, "%s: %s\n", program, error.c_str());
    return false;
}

/// Every command-line setting of a co-simulation device, as parsed.
struct CosimArgs {
    std::string target;
    std::string fst, vcd, start_addr, stop_addr, base = "0", coverage;
    std::uint64_t range_size = 0;
    std::uint64_t start_cycle = 0, idle_rate = 1000000, idle_per_access = 0, timeout_cycles = 100000;
    std::optional<std::uint64_t> stop_cycle;
    bool deterministic = false, verbose = false, check = false;
    unsigned rid = 0, mid = 0, sid = 0, addr_bits = 0, reset_cycles = 4;
    std::string wb_mode;
    TraceOptions trace;           // from the --trace-* options, after parsing
    std::uint64_t base_addr = 0;  // --base as a number
};

/// Declares the command line's options, bound to `a` (defaults from the model's).
void declare_options(CLI::App& app, CosimArgs& a, const ModelDefaults& defaults) {
    a.addr_bits = defaults.addr_bits;
    a.wb_mode = defaults.wishbone_pipelined ? "pipelined" : "classic";
    app.add_option("target", a.target,
                   "VM to connect to, HOST[:PORT] (port 4800 by default); default $COREHDL_VM, as "
                   "coreio-replay --run and coreio-fuzz --run set it");
    auto* o_fst = app.add_option("--trace-fst", a.fst, "write an FST waveform to FILE");
    auto* o_vcd = app.add_option("--trace-vcd", a.vcd, "write a VCD waveform to FILE");
    o_fst->excludes(o_vcd);
    app.add_option("--coverage", a.coverage,
                   "write Verilator coverage data to FILE when the run ends (verilator_coverage reads it)");
    app.add_option("--trace-start-cycle", a.start_cycle, "start the waveform at this cycle");
    app.add_option("--trace-stop-cycle", a.stop_cycle, "stop the waveform after this cycle");
    app.add_option("--trace-start-addr", a.start_addr, "start the waveform at the first access to this address");
    app.add_option("--trace-stop-addr", a.stop_addr, "stop the waveform at the first access to this address");
    app.add_option("--idle-rate", a.idle_rate, "idle clock cycles per wall-clock second between accesses (0 = frozen)")
        ->capture_default_str();
    app.add_option("--idle-per-access", a.idle_per_access, "extra cycles clocked after every MMIO access")
        ->capture_default_str();
    app.add_flag("--deterministic", a.deterministic,
                 "never clock by wall-clock time (only accesses and --idle-per-access): same MMIO, same cycles");
    app.add_option("--rid", a.rid, "MMIO range id to claim (0..7)")->check(CLI::Range(0, 7))->capture_default_str();
    app.add_option("--mid", a.mid, "IOMMU id of the model's DMA")->check(CLI::Range(0, 255))->capture_default_str();
    app.add_option("--sid", a.sid, "IOMMU region id of the model's DMA")->check(CLI::Range(0, 15))->capture_default_str();
    app.add_option("--base", a.base, "guest-physical base of the range (subtracted from MMIO addresses)")
        ->capture_default_str();
    app.add_option("--range-size", a.range_size,
                   "size of the range: accesses outside it or beyond the design's address width are bus errors "
                   "(default 0: unknown, the bus address is the offset's low --addr-bits bits)")
        ->capture_default_str();
    app.add_option("--addr-bits", a.addr_bits, "bus address width")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--reset-cycles", a.reset_cycles, "cycles reset is held")->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--timeout-cycles", a.timeout_cycles, "a bus beat unanswered this long is a bus error")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40))
        ->capture_default_str();
    app.add_option("--wb-mode", a.wb_mode, "Wishbone mode")->check(CLI::IsMember({"classic", "pipelined"}))
        ->capture_default_str();
    app.add_flag("--verbose,-v", a.verbose, "log bus errors and a summary");
    app.add_flag("--check-protocol", a.check,
                 "watch the model's bus ports with the protocol checkers and list violations at exit (slower clock)");
}

/// Turns the parsed option text into the waveform settings and the base address
/// (throws CLI::ValidationError naming the option that is not a number).
void resolve_numbers(CosimArgs& a) {
    if (!a.fst.empty()) a.trace.format = TraceFormat::Fst, a.trace.path = a.fst;
    if (!a.vcd.empty()) a.trace.format = TraceFormat::Vcd, a.trace.path = a.vcd;
    a.trace.start_cycle = a.start_cycle;
    a.trace.stop_cycle = a.stop_cycle;
    a.trace.start_addr = parse_number(a.start_addr, "--trace-start-addr");
    a.trace.stop_addr = parse_number(a.stop_addr, "--trace-stop-addr");
    a.base_addr = parse_number(a.base, "--base").value_or(0);
}

/// The model, with the waveform support asked for and --coverage writable; null after saying why not.
std::unique_ptr<Model> make_model(const char* program, const ModelFactory& factory, const CosimArgs& a) {
    std::unique_ptr<Model> model = factory(a.trace.format);
    if (!model) {
        std::fprintf(stderr, "%s: this build has no %s waveform support (coreio_add_cosim TRACE option)\n", program,
                     trace_format_name(*a.trace.format));
        return nullptr;
    }
    if (!a.coverage.empty()) {
        std::string error;
        if (!model->coverage_write(a.coverage, error)) {  // the file can be written, and there is coverage
            std::fprintf(stderr, "%s: --coverage: %s\n", program, error.c_str());
            return nullptr;
        }
    }
    return model;
}

/// Opens the shared coverage map a fuzzer asks for through the environment.
/// Without any counters, says so and serves anyway: the fuzzer sees an empty map and names the problem.
void open_coverage_map(const char* program, CoverageMap& map, Model& model) {
    if (const char* map_path = std::getenv(kCoverageMapEnv); map_path != nullptr && *map_path != '\0') {
        if (std::string error = map.open(map_path, model.coverage().size()); !error.empty())
            std::fprintf(stderr, "%s: %s: %s\n", program, kCoverageMapEnv, error.c_str());
    }
}

/// The bridge's settings from the command line (callbacks are added by the caller).
BridgeOptions bridge_options(const CosimArgs& a, const ModelDefaults& defaults) {
    BridgeOptions bopt;
    bopt.rid = a.rid;
    bopt.mid = a.mid;
    bopt.sid = a.sid;
    bopt.base = a.base_addr;
    bopt.range_size = a.range_size;
    bopt.addr_bits = a.addr_bits;
    bopt.reset_cycles = a.reset_cycles;
    bopt.idle_per_access = a.idle_per_access;
    bopt.slave.timeout_cycles = a.timeout_cycles;
    bopt.slave.addr_shift = defaults.addr_shift;
    bopt.slave.wishbone_pipelined = a.wb_mode == "pipelined";
    bopt.trace = a.trace;
    return bopt;
}

/// The protocol checkers watching the model's bus ports (--check-protocol).
struct Checkers {
    std::unique_ptr<ProtocolChecker> slave, master;
};

Checkers make_checkers(Model& model, Bridge& bridge, bool wishbone_pipelined) {
    Checkers c;
    const Ports& p = model.ports();
    switch (p.bus) {
    case BusKind::Apb: c.slave = std::make_unique<ApbChecker>(bridge.sim(), p.apb); break;
    case BusKind::AxiLite: c.slave = std::make_unique<AxiLiteChecker>(bridge.sim(), p.axil); break;
    case BusKind::Wishbone: c.slave = std::make_unique<WishboneChecker>(bridge.sim(), p.wb, wishbone_pipelined); break;
    case BusKind::None: break;
    }
    if (p.has_master) c.master = std::make_unique<Axi4Checker>(bridge.sim(), p.axi);
    return c;
}

/// Lists every violation the checkers found and returns their number.
std::size_t report_violations(const char* program, const Checkers& checkers) {
    std::size_t violations = 0;
    for (const ProtocolChecker* c : {checkers.slave.get(), checkers.master.get()}) {
        if (!c) continue;
        for (const std::string& v : c->violations()) std::fprintf(stderr, "%s: protocol: %s\n", program, v.c_str());
        violations += c->violations().size();
    }
    return violations;
}

/// Connects to the VM (the target, else $COREHDL_VM, as coreio_connect(NULL))
/// and claims the range; on failure says why and returns false.
bool connect_and_claim(const char* program, Client& client, std::string target, unsigned rid, Bridge& bridge) {
    if (target.empty()) {  // the tools that start devices give the address here
        const char* env = std::getenv("COREHDL_VM");
        if (env == nullptr || *env == '\0') {
            std::fprintf(stderr, "%s: no VM address: give HOST:PORT or set $COREHDL_VM\n", program);
            return false;
        }
        target = env;
    }
    int rc = client.connect(target);
    if (rc != 0) {
        std::fprintf(stderr, "%s: cannot connect to '%s': %s\n", program, target.c_str(), std::strerror(-rc));
        return false;
    }
    rc = client.register_range(rid, bridge);
    if (rc != 0) {
        std::fprintf(stderr, "%s: cannot claim range %u: %s\n", program, rid, std::strerror(-rc));
        return false;
    }
    return true;
}

/// After serving: stops the waveform, writes coverage, reports violations and the
/// summary, and returns the exit code for the serve loop's result `rc`.
int finish(const char* program, const CosimArgs& a, Model& model, Bridge& bridge, const Checkers& checkers, int rc) {
    bridge.sim().stop_trace();
    const bool coverage_written = write_coverage(program, model, a.coverage);
    const std::size_t violations = report_violations(program, checkers);
    if (a.check) std::fprintf(stderr, "%s: %zu protocol violations\n", program, violations);
    if (a.verbose)
        std::fprintf(stderr, "%s: %llu cycles, %llu accesses, %llu bus errors\n", program,
                     static_cast<unsigned long long>(bridge.sim().cycles()),
                     static_cast<unsigned long long>(bridge.accesses()),
                     static_cast<unsigned long long>(bridge.bus_errors()));
    if (rc != 0 && rc != -ECONNRESET && rc != -ENOTCONN) {
        std::fprintf(stderr, "%s: connection error: %s\n", program, std::strerror(-rc));
        return coreio::cli::kExitUsage;
    }
    if (!coverage_written) return coreio::cli::kExitUsage;
    return violations > 0 ? coreio::cli::kExitFailed : coreio::cli::kExitOk;  // --check-protocol found some
}

}  // namespace

int cosim_main(int argc, char** argv, const char* program, ModelFactory factory, ModelDefaults defaults) {
    CLI::App app{std::string("CoreIO co-simulation device: the RTL model answers the VM's MMIO, raises its "
                             "IRQs and does its DMA"),
                 program};
    coreio::cli::add_version(app, program);
    CosimArgs a;
    declare_options(app, a, defaults);
    try {
        app.parse(argc, argv);
        resolve_numbers(a);
    } catch (const CLI::ParseError& e) {
        return coreio::cli::exit_code_for(app, e, std::cout, std::cerr);
    }

    std::unique_ptr<Model> model = make_model(program, factory, a);
    if (!model) return coreio::cli::kExitUsage;
    CoverageMap coverage_map;
    open_coverage_map(program, coverage_map, *model);

    ClientOptions copt;
    Client client(copt);
    ClientDma dma(client, a.mid, a.sid);
    BridgeOptions bopt = bridge_options(a, defaults);
    if (coverage_map.is_open())
        bopt.after_access = [&coverage_map, &model] { coverage_map.publish(model->coverage()); };
    if (a.verbose) bopt.log = [program](std::string_view m) { std::fprintf(stderr, "%s: %.*s\n", program, int(m.size()), m.data()); };

    const std::string reset_advice = check_reset_polarity(factory, bopt.slave, a.reset_cycles);
    if (!reset_advice.empty()) {
        std::fprintf(stderr, "%s: %s\n", program, reset_advice.c_str());
        return 2;
    }
    print_address_map(program, bopt);

    std::unique_ptr<Bridge> bridge;
    try {
        const unsigned rid = a.rid;
        bridge = std::make_unique<Bridge>(
            *model, bopt, [&client, rid](unsigned line, bool level) { client.irq_update(rid, line, level); }, &dma);
    } catch (const std::runtime_error& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 2;
    }
    Checkers checkers;
    if (a.check) checkers = make_checkers(*model, *bridge, bopt.slave.wishbone_pipelined);

    if (!connect_and_claim(program, client, a.target, a.rid, *bridge)) return coreio::cli::kExitUsage;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    ServeOptions sopt;
    sopt.idle_rate = a.deterministic ? 0 : a.idle_rate;
    const int rc = serve(client, *bridge, sopt, g_stop);
    return finish(program, a, *model, *bridge, checkers, rc);
}

}  // namespace coreio::cosim
