// coreio-fuzz: deterministic, seeded fuzzing of a device model (in process or
// over TCP). Findings are minimised and written as reproducer traces that
// `coreio-replay device` runs alone. See replayer/README.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "coreio/cli/conventions.hpp"
#include "coreio/mockvm/parse.hpp"
#include "coreio/replayer/fuzz.hpp"
#include "coreio/replayer/process.hpp"
#include "models.hpp"
#include "progress_display.hpp"
#include "reproducer_message.hpp"

using namespace coreio::replayer;
using namespace coreio::replayer::tools;

namespace {

int fail(const std::string& msg) {
    std::fprintf(stderr, "coreio-fuzz: %s\n", msg.c_str());
    return coreio::cli::kExitUsage;
}

/// The directory as given, without doubled or trailing slashes ("out//" -> "out").
std::string clean_dir(const std::string& dir) {
    std::string s = std::filesystem::path(dir).lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s.empty() ? "." : s;
}

std::vector<std::uint64_t> numbers(const std::string& spec, std::size_t n, std::string& err) {
    std::vector<std::uint64_t> v;
    std::stringstream ss(spec);
    std::string part;
    while (std::getline(ss, part, ':')) {
        std::uint64_t x = 0;
        if (!parse_u64(part, x)) {
            err = "'" + spec + "': '" + part + "' is not a number";
            return {};
        }
        v.push_back(x);
    }
    if (v.size() != n) err = "'" + spec + "': expected " + std::to_string(n) + " numbers separated by ':'";
    return v;
}

std::string add_range(FuzzConfig& c, const std::string& spec) {
    std::string err;
    auto v = numbers(spec, 3, err);
    if (!err.empty()) return "--range " + err + " (RID:BASE:SIZE)";
    if (v[0] > 7 || v[2] == 0) return "--range '" + spec + "': RID must be 0..7 and SIZE > 0";
    c.ranges.push_back({static_cast<std::uint32_t>(v[0]), v[1], v[2], ""});
    return "";
}
std::string add_register(FuzzConfig& c, const std::string& spec) {
    std::string err;
    auto v = numbers(spec, 3, err);
    if (!err.empty()) return "--register " + err + " (RID:OFFSET:WIDTH)";
    if (v[0] > 7 || (v[2] != 1 && v[2] != 2 && v[2] != 4 && v[2] != 8))
        return "--register '" + spec + "': RID must be 0..7 and WIDTH 1, 2, 4 or 8";
    c.registers.push_back({static_cast<unsigned>(v[0]), v[1], static_cast<unsigned>(v[2])});
    return "";
}
std::string add_memory(FuzzConfig& c, const std::string& spec) {
    coreio::mockvm::RangeConfig m;
    try {
        m = coreio::mockvm::parse_range(spec);  // as coreio-mockvm --memory: sizes with K/M/G
    } catch (const std::invalid_argument& e) {
        return "--memory " + std::string(e.what());
    }
    if (m.size > (1ull << 32)) return "--memory '" + spec + "': SIZE must be 1 B..4 GiB";
    c.memory.push_back({0, 0, m.base, m.size, ""});
    return "";
}

/// Config file: "range RID:BASE:SIZE", "register RID:OFFSET:WIDTH", "memory BASE:SIZE", "trace FILE"; '#' comments.
std::string load_config(const std::string& path, FuzzConfig& c, std::string& trace) {
    std::ifstream in(path);
    if (!in) return "cannot read config file " + path;
    std::string line;
    for (unsigned n = 1; std::getline(in, line); ++n) {
        if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
        std::stringstream ss(line);
        std::string word, arg;
        if (!(ss >> word)) continue;
        ss >> arg;
        std::string err;
        if (word == "range") err = add_range(c, arg);
        else if (word == "register") err = add_register(c, arg);
        else if (word == "memory") err = add_memory(c, arg);
        else if (word == "trace") trace = arg;
        else err = "unknown key '" + word + "' (range, register, memory, trace)";
        if (!err.empty()) return path + ":" + std::to_string(n) + ": " + err;
    }
    return "";
}

/// Every command-line setting, as parsed.
struct FuzzArgs {
    std::string model, run, config_file, trace, out = ".";
    bool bug = false, guided = false, no_fork = false, no_min = false, no_irq_reset = false, no_dma_mmio = false,
         device_log = false;
    std::uint64_t seed = 1, execs = 1000000, first = 0;
    double seconds = 0;
    unsigned timeout_ms = 2000, max_ops = 32, irq_stuck = 0;
    std::size_t max_findings = 8;
    std::vector<std::string> ranges, registers, memory, expect_read;
    CLI::Option* execs_opt = nullptr;  // to tell "--time alone" from "--time with --execs"
    CLI::Option* time_opt = nullptr;
};

void declare_options(CLI::App& app, FuzzArgs& a) {
    app.add_option("--model", a.model, "fuzz a built-in example model in process: timer, dmacopy");
    app.add_flag("--seeded-bug", a.bug, "with --model: switch the model's seeded bug on");
    app.add_option("--run", a.run, "fuzz an out-of-process model over TCP: command (/bin/sh -c) that gets the address to connect to in "
                   "$COREHDL_VM (coreio_connect(NULL) reads it; else --run './dev $COREHDL_VM')");
    app.add_flag("--guided", a.guided,
                 "with --run: keep and mutate execs that reach new RTL coverage (the device shares its counters "
                 "through the file named by COREIO_COVERAGE_MAP; coreio-cosim devices built with COVERAGE do)");
    app.add_option("--seed", a.seed, "seed: the same seed gives the same execs on every machine");
    a.execs_opt = app.add_option(
        "--execs", a.execs, "execs to run at most (an exec = reset + up to --max-ops steps; default 1000000, or no cap with --time)");
    app.add_option("--first-exec", a.first, "exec number to start at (e.g. to re-run one exec)");
    a.time_opt = app.add_option("--time", a.seconds, "stop after this many seconds (alone: run for that long)");
    app.add_option("--max-ops", a.max_ops, "steps per exec at most");
    app.add_option("--range", a.ranges, "MMIO range RID:BASE:SIZE (repeatable)");
    app.add_option("--register", a.registers, "known register RID:OFFSET:WIDTH (repeatable)");
    app.add_option("--memory", a.memory, "guest memory for DMA BASE:SIZE (repeatable), e.g. 0x80000000:16M");
    app.add_option("--config", a.config_file, "config file with range/register/memory/trace lines");
    app.add_option("--trace", a.trace, "trace whose requests half of the execs mutate");
    app.add_option("--out", a.out, "directory for reproducer traces");
    app.add_option("--timeout", a.timeout_ms, "ms before an exec (in process) or a reply (TCP) counts as a hang");
    app.add_option("--max-findings", a.max_findings, "stop after this many distinct findings");
    app.add_flag("--no-fork", a.no_fork, "in process: run execs in this process (faster start; a crash ends the run)");
    app.add_flag("--no-minimise", a.no_min, "write reproducers as found, unshrunk");
    app.add_option("--expect-read", a.expect_read, "assertion RID:OFFSET:MASK:VALUE on reads (repeatable)");
    app.add_option("--irq-stuck-steps", a.irq_stuck, "an IRQ line high for more steps than this is a finding");
    app.add_flag("--no-irq-reset-check", a.no_irq_reset, "do not require IRQ lines low after a reset");
    app.add_flag("--no-dma-mmio-check", a.no_dma_mmio, "allow DMA into the MMIO ranges");
    app.add_flag("--device-log", a.device_log, "with --run: show the device processes' output (discarded by default)");
}

/// Checks which device is fuzzed and builds the fuzzer's view of it: the model's
/// config, then the config file's, then the options'. Returns an error or "".
std::string build_config(FuzzArgs& a, FuzzConfig& config, Model& m) {
    if (a.model.empty() == a.run.empty()) return "give exactly one of --model NAME or --run COMMAND";
    if (a.guided && a.run.empty())
        return "--guided needs a device that shares its coverage: --run a coreio-cosim device built with COVERAGE";
    if (!a.model.empty() && !find_model(a.model, a.bug, m)) return "unknown --model '" + a.model + "' (timer, dmacopy)";
    if (!a.model.empty()) config = m.config;
    if (!a.config_file.empty())
        if (std::string err = load_config(a.config_file, config, a.trace); !err.empty()) return err;
    for (const auto& s : a.ranges)
        if (std::string err = add_range(config, s); !err.empty()) return err;
    for (const auto& s : a.registers)
        if (std::string err = add_register(config, s); !err.empty()) return err;
    for (const auto& s : a.memory)
        if (std::string err = add_memory(config, s); !err.empty()) return err;
    if (config.ranges.empty()) return "no MMIO range: give --range RID:BASE:SIZE (or --model)";
    config.max_ops = a.max_ops;
    if (!a.trace.empty()) {
        auto sc = std::make_shared<Scenario>();
        if (std::string err = load_scenario(a.trace, *sc); !err.empty()) return err;
        config.start = sc;
    }
    return "";
}

/// The fuzzer's run options and assertions; creates the output directory. Returns an error or "".
std::string build_options(FuzzArgs& a, FuzzOptions& o) {
    o.seed = a.seed;
    o.first_exec = a.first;
    o.execs = a.execs;
    o.time_limit = std::chrono::milliseconds(static_cast<long long>(a.seconds * 1000));
    o.fork = !a.no_fork;
    o.guided = a.guided;
    o.timeout = std::chrono::milliseconds(a.timeout_ms);
    o.minimise = !a.no_min;
    o.max_findings = a.max_findings;
    o.assertions.irq_low_after_reset = !a.no_irq_reset;
    o.assertions.no_dma_into_mmio = !a.no_dma_mmio;
    o.assertions.irq_stuck_steps = a.irq_stuck;
    for (const auto& e : a.expect_read) {
        ReadExpectation x;
        if (std::string err = ReadExpectation::parse(e, x); !err.empty()) return err;
        o.assertions.reads.push_back(x);
    }
    a.out = clean_dir(a.out);
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    o.out_dir = a.out;
    return "";
}

/// The summary line and one entry per finding, on stdout.
void print_result(const FuzzResult& r, const FuzzArgs& a) {
    std::printf("%llu execs (%llu steps) in %.2f s: %.0f execs/s; %zu finding%s; seed %llu",
                static_cast<unsigned long long>(r.stats.execs), static_cast<unsigned long long>(r.stats.steps),
                r.stats.seconds, r.stats.seconds > 0 ? static_cast<double>(r.stats.execs) / r.stats.seconds : 0.0,
                r.findings.size(), r.findings.size() == 1 ? "" : "s", static_cast<unsigned long long>(a.seed));
    if (a.guided) std::printf("; %zu execs kept for new coverage", r.stats.kept);
    std::printf("\n");
    for (const auto& f : r.findings) {
        std::printf("  %s at exec %llu: %s\n    %zu of %zu steps after minimising%s; reproducer: %s\n", f.signature.c_str(),
                    static_cast<unsigned long long>(f.exec), f.divergence.describe().c_str(), f.scenario.steps.size(),
                    f.original_steps, f.reproduced ? "" : " (did NOT reproduce on a fresh device)",
                    f.reproducer.empty() ? "(none)" : f.reproducer.c_str());
    }
}

/// Fuzzes, then has each reproduced finding's reproducer describe its own (minimised) steps.
FuzzResult run_fuzzer(const FuzzArgs& a, const FuzzConfig& config, const Model& m, FuzzOptions& o) {
    ProgressDisplay progress(stderr);
    o.log = [&progress](const std::string& line) { progress.line("coreio-fuzz: " + line); };
    o.progress = [&progress](const FuzzProgress& p) { progress.update(p.execs, p.findings); };
    FuzzResult r = a.model.empty() ? fuzz_tcp(config, a.run, o) : fuzz_in_process(config, m.factory, o);
    progress.finish();
    o.log = nullptr;  // they refer to `progress`, which ends here
    o.progress = nullptr;
    for (Finding& f : r.findings) {
        if (!f.reproduced) continue;
        const std::string err = a.model.empty() ? describe_minimised_tcp(f, a.run, a.seed, o.assertions, o.timeout)
                                                : describe_minimised_in_process(f, m.factory, a.seed, o.assertions, o.timeout);
        if (!err.empty() && r.error.empty()) r.error = err;
    }
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"coreio-fuzz: seeded, reproducible fuzzing of a CoreIO device model.\n"
                 "Exit status: 0 no finding, 1 findings, 2 bad command line or the fuzzer could not run."};
    coreio::cli::add_version(app, "coreio-fuzz");
    FuzzArgs a;
    declare_options(app, a);
    if (const auto code = coreio::cli::parse(app, argc, argv)) return *code;
    coreio::replayer::kill_device_groups_on_signals();
    coreio::replayer::DeviceProcess::set_default_output(a.device_log ? DeviceProcess::Output::Inherit
                                                                     : DeviceProcess::Output::Discard);
    if (a.time_opt->count() > 0 && a.execs_opt->count() == 0) a.execs = UINT64_MAX - a.first;  // a time limit alone
    if (a.seconds < 0) return fail("--time must not be negative");

    FuzzConfig config;
    Model m;
    if (std::string err = build_config(a, config, m); !err.empty()) return fail(err);
    FuzzOptions o;
    if (std::string err = build_options(a, o); !err.empty()) return fail(err);
    const FuzzResult r = run_fuzzer(a, config, m, o);
    if (!r.error.empty()) std::fprintf(stderr, "coreio-fuzz: error: %s\n", r.error.c_str());
    print_result(r, a);
    if (!r.error.empty()) return coreio::cli::kExitUsage;
    return r.findings.empty() ? coreio::cli::kExitOk : coreio::cli::kExitFailed;
}
