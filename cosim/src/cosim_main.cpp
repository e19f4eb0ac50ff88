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

}  // namespace

int cosim_main(int argc, char** argv, const char* program, ModelFactory factory, ModelDefaults defaults) {
    CLI::App app{std::string("CoreIO co-simulation device: the RTL model answers the VM's MMIO, raises its "
                             "IRQs and does its DMA"),
                 program};
    coreio::cli::add_version(app, program);
    std::string target;
    std::string fst, vcd, start_addr, stop_addr, base = "0", coverage;
    std::uint64_t range_size = 0;
    std::uint64_t start_cycle = 0, idle_rate = 1000000, idle_per_access = 0, timeout_cycles = 100000;
    std::optional<std::uint64_t> stop_cycle;
    bool deterministic = false, verbose = false, check = false;
    unsigned rid = 0, mid = 0, sid = 0, addr_bits = defaults.addr_bits, reset_cycles = 4;
    std::string wb_mode = defaults.wishbone_pipelined ? "pipelined" : "classic";

    app.add_option("target", target,
                   "VM to connect to, HOST[:PORT] (port 4800 by default); default $COREHDL_VM, as "
                   "coreio-replay --run and coreio-fuzz --run set it");
    auto* o_fst = app.add_option("--trace-fst", fst, "write an FST waveform to FILE");
    auto* o_vcd = app.add_option("--trace-vcd", vcd, "write a VCD waveform to FILE");
    o_fst->excludes(o_vcd);
    app.add_option("--coverage", coverage,
                   "write Verilator coverage data to FILE when the run ends (verilator_coverage reads it)");
    app.add_option("--trace-start-cycle", start_cycle, "start the waveform at this cycle");
    app.add_option("--trace-stop-cycle", stop_cycle, "stop the waveform after this cycle");
    app.add_option("--trace-start-addr", start_addr, "start the waveform at the first access to this address");
    app.add_option("--trace-stop-addr", stop_addr, "stop the waveform at the first access to this address");
    app.add_option("--idle-rate", idle_rate, "idle clock cycles per wall-clock second between accesses (0 = frozen)")
        ->capture_default_str();
    app.add_option("--idle-per-access", idle_per_access, "extra cycles clocked after every MMIO access")
        ->capture_default_str();
    app.add_flag("--deterministic", deterministic,
                 "never clock by wall-clock time (only accesses and --idle-per-access): same MMIO, same cycles");
    app.add_option("--rid", rid, "MMIO range id to claim (0..7)")->check(CLI::Range(0, 7))->capture_default_str();
    app.add_option("--mid", mid, "IOMMU id of the model's DMA")->check(CLI::Range(0, 255))->capture_default_str();
    app.add_option("--sid", sid, "IOMMU region id of the model's DMA")->check(CLI::Range(0, 15))->capture_default_str();
    app.add_option("--base", base, "guest-physical base of the range (subtracted from MMIO addresses)")
        ->capture_default_str();
    app.add_option("--range-size", range_size,
                   "size of the range: accesses outside it or beyond the design's address width are bus errors "
                   "(default 0: unknown, the bus address is the offset's low --addr-bits bits)")
        ->capture_default_str();
    app.add_option("--addr-bits", addr_bits, "bus address width")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--reset-cycles", reset_cycles, "cycles reset is held")->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    app.add_option("--timeout-cycles", timeout_cycles, "a bus beat unanswered this long is a bus error")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40))
        ->capture_default_str();
    app.add_option("--wb-mode", wb_mode, "Wishbone mode")->check(CLI::IsMember({"classic", "pipelined"}))
        ->capture_default_str();
    app.add_flag("--verbose,-v", verbose, "log bus errors and a summary");
    app.add_flag("--check-protocol", check,
                 "watch the model's bus ports with the protocol checkers and list violations at exit (slower clock)");

    TraceOptions trace;
    std::uint64_t base_addr = 0;
    try {
        app.parse(argc, argv);
        if (!fst.empty()) trace.format = TraceFormat::Fst, trace.path = fst;
        if (!vcd.empty()) trace.format = TraceFormat::Vcd, trace.path = vcd;
        trace.start_cycle = start_cycle;
        trace.stop_cycle = stop_cycle;
        trace.start_addr = parse_number(start_addr, "--trace-start-addr");
        trace.stop_addr = parse_number(stop_addr, "--trace-stop-addr");
        base_addr = parse_number(base, "--base").value_or(0);
    } catch (const CLI::ParseError& e) {
        return coreio::cli::exit_code_for(app, e, std::cout, std::cerr);
    }

    std::unique_ptr<Model> model = factory(trace.format);
    if (!model) {
        std::fprintf(stderr, "%s: this build has no %s waveform support (coreio_add_cosim TRACE option)\n", program,
                     trace_format_name(*trace.format));
        return coreio::cli::kExitUsage;
    }

    if (!coverage.empty()) {
        std::string error;
        if (!model->coverage_write(coverage, error)) {  // the file can be written, and there is coverage
            std::fprintf(stderr, "%s: --coverage: %s\n", program, error.c_str());
            return coreio::cli::kExitUsage;
        }
    }
    CoverageMap coverage_map;
    // A fuzzer asks for the counters. Without any, say so and serve anyway:
    // the fuzzer sees an empty map and names the problem.
    if (const char* map_path = std::getenv(kCoverageMapEnv); map_path != nullptr && *map_path != '\0') {
        if (std::string error = coverage_map.open(map_path, model->coverage().size()); !error.empty())
            std::fprintf(stderr, "%s: %s: %s\n", program, kCoverageMapEnv, error.c_str());
    }

    ClientOptions copt;
    Client client(copt);
    ClientDma dma(client, mid, sid);
    BridgeOptions bopt;
    bopt.rid = rid;
    bopt.mid = mid;
    bopt.sid = sid;
    bopt.base = base_addr;
    bopt.range_size = range_size;
    bopt.addr_bits = addr_bits;
    bopt.reset_cycles = reset_cycles;
    bopt.idle_per_access = idle_per_access;
    bopt.slave.timeout_cycles = timeout_cycles;
    bopt.slave.addr_shift = defaults.addr_shift;
    bopt.slave.wishbone_pipelined = wb_mode == "pipelined";
    bopt.trace = trace;
    if (coverage_map.is_open())
        bopt.after_access = [&coverage_map, &model] { coverage_map.publish(model->coverage()); };
    if (verbose) bopt.log = [program](std::string_view m) { std::fprintf(stderr, "%s: %.*s\n", program, int(m.size()), m.data()); };

    const std::string reset_advice = check_reset_polarity(factory, bopt.slave, reset_cycles);
    if (!reset_advice.empty()) {
        std::fprintf(stderr, "%s: %s\n", program, reset_advice.c_str());
        return 2;
    }
    print_address_map(program, bopt);

    std::unique_ptr<Bridge> bridge_owner;
    try {
        bridge_owner = std::make_unique<Bridge>(
            *model, bopt, [&client, rid](unsigned line, bool level) { client.irq_update(rid, line, level); }, &dma);
    } catch (const std::runtime_error& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 2;
    }
    Bridge& bridge = *bridge_owner;
    std::unique_ptr<ProtocolChecker> slave_checker, master_checker;
    if (check) {
        const Ports& p = model->ports();
        switch (p.bus) {
        case BusKind::Apb: slave_checker = std::make_unique<ApbChecker>(bridge.sim(), p.apb); break;
        case BusKind::AxiLite: slave_checker = std::make_unique<AxiLiteChecker>(bridge.sim(), p.axil); break;
        case BusKind::Wishbone:
            slave_checker = std::make_unique<WishboneChecker>(bridge.sim(), p.wb, bopt.slave.wishbone_pipelined);
            break;
        case BusKind::None: break;
        }
        if (p.has_master) master_checker = std::make_unique<Axi4Checker>(bridge.sim(), p.axi);
    }

    if (target.empty()) {  // as coreio_connect(NULL): the tools that start devices give the address here
        const char* env = std::getenv("COREHDL_VM");
        if (env == nullptr || *env == '\0') {
            std::fprintf(stderr, "%s: no VM address: give HOST:PORT or set $COREHDL_VM\n", program);
            return coreio::cli::kExitUsage;
        }
        target = env;
    }
    int rc = client.connect(target);
    if (rc != 0) {
        std::fprintf(stderr, "%s: cannot connect to '%s': %s\n", program, target.c_str(), std::strerror(-rc));
        return coreio::cli::kExitUsage;
    }
    rc = client.register_range(rid, bridge);
    if (rc != 0) {
        std::fprintf(stderr, "%s: cannot claim range %u: %s\n", program, rid, std::strerror(-rc));
        return coreio::cli::kExitUsage;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    ServeOptions sopt;
    sopt.idle_rate = deterministic ? 0 : idle_rate;
    rc = serve(client, bridge, sopt, g_stop);
    bridge.sim().stop_trace();
    const bool coverage_written = write_coverage(program, *model, coverage);
    std::size_t violations = 0;
    for (const ProtocolChecker* c : {slave_checker.get(), master_checker.get()}) {
        if (!c) continue;
        for (const std::string& v : c->violations()) std::fprintf(stderr, "%s: protocol: %s\n", program, v.c_str());
        violations += c->violations().size();
    }
    if (check) std::fprintf(stderr, "%s: %zu protocol violations\n", program, violations);
    if (verbose)
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

}  // namespace coreio::cosim
