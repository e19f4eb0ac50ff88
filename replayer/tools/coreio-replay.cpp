// coreio-replay: replay a trace against a device model (device), or answer a
// VM from a trace as the device would (stub). See replayer/README.md.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <optional>
#include <system_error>

#include "coreio/cli/conventions.hpp"
#include "coreio/replayer/fuzz.hpp"
#include "coreio/replayer/process.hpp"
#include "coreio/replayer/replay.hpp"
#include "stub_cli.hpp"
#include "coreio/trace/output_file.hpp"
#include "coreio/trace/writer.hpp"
#include "models.hpp"
#include "replay_input.hpp"

using namespace coreio::replayer;
using namespace coreio::replayer::tools;

namespace {

struct DeviceArgs {
    std::string trace, listen = "127.0.0.1", run, model, record, rules, timing = "fast", check = "auto";
    std::uint16_t port = 0;
    bool seeded_bug = false, keep_going = false, no_irq_reset = false, no_dma_mmio = false, allow_empty = false;
    bool timeout_given = false;  // --timeout on the command line: it also bounds the wait for the device
    double scale = 1.0;
    unsigned timeout_ms = 5000, irq_stuck = 0;
    std::uint32_t client = 0;
    std::vector<std::string> ignore, expect_read;
};

int fail(const std::string& msg) {
    std::fprintf(stderr, "coreio-replay: %s\n", msg.c_str());
    return coreio::cli::kExitUsage;
}

/// The replay's options from the command line and the scenario's own assertions. Returns an error or "".
std::string replay_options(const DeviceArgs& a, const Scenario& sc, ReplayOptions& o) {
    o.keep_going = a.keep_going;
    o.timeout = std::chrono::milliseconds(a.timeout_ms);
    for (const auto& i : a.ignore)
        if (std::string err = o.ignore.add_mmio(i); !err.empty()) return err;
    if (!a.rules.empty())
        if (std::string err = o.ignore.load_file(a.rules); !err.empty()) return err;
    if (a.timing == "fast") o.timing = TimingMode::Fast;
    else if (a.timing == "recorded") o.timing = TimingMode::Recorded;
    else if (a.timing == "scaled") o.timing = TimingMode::Scaled;
    else return "--timing must be fast, recorded or scaled, not '" + a.timing + "'";
    o.time_scale = a.scale;
    if (a.check == "auto") o.check = CheckMode::Auto;
    else if (a.check == "replies") o.check = CheckMode::Replies;
    else if (a.check == "findings") o.check = CheckMode::Findings;
    else return "--check must be auto, replies or findings, not '" + a.check + "'";
    o.assertions = reproducer_assertions(sc);
    if (a.no_irq_reset) o.assertions.irq_low_after_reset = false;
    if (a.no_dma_mmio) o.assertions.no_dma_into_mmio = false;
    if (a.irq_stuck) o.assertions.irq_stuck_steps = a.irq_stuck;
    for (const auto& e : a.expect_read) {
        ReadExpectation x;
        if (std::string err = ReadExpectation::parse(e, x); !err.empty()) return err;
        o.assertions.reads.push_back(x);
    }
    return "";
}

/// Opens --record's trace (a temporary until the replay is done; never the input). Returns an error or "".
std::string open_recording(const DeviceArgs& a, const Scenario& sc, coreio::trace::OutputFile& file,
                           coreio::trace::TraceWriter& writer) {
    coreio::trace::WriterOptions wo;
    wo.background_flush = false;
    coreio::trace::TraceHeader h;
    h.tool = "coreio-replay";
    h.observer = coreio::trace::Observer::Vm;
    h.ranges = sc.ranges;
    h.memory = sc.memory;
    if (std::string err = file.open(a.record, {a.trace}); !err.empty()) return err;
    return writer.open(file.fd(), a.record, h, wo);
}

/// Replays in process against a built-in model into `rep`; or, when not recording, in a
/// child process (a model that crashes or hangs is reported, not suffered), printing the
/// outcome. Returns the exit code when the run ends here.
std::optional<int> replay_model(const DeviceArgs& a, const Scenario& sc, const ReplayOptions& o, ReplayReport& rep) {
    Model m;
    if (!find_model(a.model, a.seeded_bug, m)) return fail("unknown --model '" + a.model + "' (timer, dmacopy)");
    if (o.record != nullptr) {
        rep = replay_in_process(sc, m.factory, o);  // recording needs this process's writer
        return std::nullopt;
    }
    const IsolatedResult r = run_isolated(
        [&] {
            ReplayReport x = replay_in_process(sc, m.factory, o);
            return std::string(x.passed() ? "P" : "F") + x.summary();
        },
        o.timeout + std::chrono::milliseconds(static_cast<long long>(
                        static_cast<double>(sc.steps.empty() ? 0 : sc.steps.back().time_ns) * 1e-6 * a.scale)));
    if (r.end == IsolatedResult::End::Returned && !r.output.empty()) {
        std::fputs(r.output.c_str() + 1, stdout);
        return r.output[0] == 'P' ? 0 : 1;
    }
    std::printf("FAIL: the device model %s during the replay (%s)\n",
                r.end == IsolatedResult::End::TimedOut ? "hung" : "crashed", r.status.c_str());
    return 1;
}

/// Listens for the device model; returns the link, or null after saying why not.
std::unique_ptr<TcpLink> listen_for_device(const DeviceArgs& a, Player& player, const ReplayOptions& o) {
    TcpLinkOptions lo;
    lo.listen = a.listen;
    lo.port = a.port;
    lo.timeout = o.timeout;
    try {
        return std::make_unique<TcpLink>(player, lo);
    } catch (const std::system_error& e) {
        if (std::string(e.what()).starts_with("cannot listen"))
            fail(coreio::cli::listen_error(coreio::cli::endpoint(a.listen, a.port), e.code().value()));
        else
            fail(e.what());
    } catch (const std::exception& e) {
        fail(e.what());
    }
    return nullptr;
}

/// Replays over TCP to a device model started with --run or by hand, into `rep`.
/// Returns the exit code when the run ends here (no device).
std::optional<int> replay_tcp(const DeviceArgs& a, const Scenario& sc, const ReplayOptions& o, ReplayReport& rep) {
    Player player(o, sc.ranges, sc.memory);
    std::unique_ptr<TcpLink> link = listen_for_device(a, player, o);
    if (!link) return coreio::cli::kExitUsage;
    const std::string endpoint = coreio::cli::endpoint(a.listen, link->port());
    // The wait for the device: --timeout when given (or with --run), else a minute to start it by hand.
    const auto wait = a.run.empty() && !a.timeout_given ? std::chrono::milliseconds(60000) : o.timeout;
    std::fprintf(stderr, "coreio-replay: listening on %s for the device model (waiting %lld ms)\n",
                 endpoint.c_str(), static_cast<long long>(wait.count()));
    DeviceProcess proc;
    if (!a.run.empty() && proc.start(a.run, endpoint) != 0) return fail("cannot start '" + a.run + "'");
    if (const int rc = link->accept(wait, proc.ended_fd()); rc == -ECHILD) {
        return fail("the device " + proc.kill() + " before connecting to " + endpoint +
                    " (--run gives it the address in $COREHDL_VM: coreio_connect(NULL) reads it)");
    } else if (rc != 0) {
        return fail("no device model connected to " + endpoint + " within " + std::to_string(wait.count()) +
                    " ms" + (a.run.empty() ? "" : " (the device " + proc.kill() +
                               "; --run gives it the address in $COREHDL_VM: coreio_connect(NULL) reads it)"));
    }
    rep = player.run(sc, *link);
    link->disconnect();
    if (!a.run.empty()) {
        const std::string how = proc.wait(std::chrono::milliseconds(1000));
        for (auto& d : rep.divergences)
            if ((d.kind == DivergenceKind::Crash || d.kind == DivergenceKind::Hang) && !how.empty())
                d.got += " (device " + how + ")";
        proc.kill();
    }
    return std::nullopt;
}

int run_device(const DeviceArgs& a) {
    Scenario sc;
    if (std::string err = load_replay_input(a.trace, a.client, a.allow_empty, sc); !err.empty()) return fail(err);
    if (!sc.warning.empty()) std::fprintf(stderr, "coreio-replay: warning: %s\n", sc.warning.c_str());
    ReplayOptions o;
    if (std::string err = replay_options(a, sc, o); !err.empty()) return fail(err);
    coreio::trace::OutputFile record_file;
    coreio::trace::TraceWriter writer;
    if (!a.record.empty()) {
        if (std::string err = open_recording(a, sc, record_file, writer); !err.empty()) return fail(err);
        o.record = &writer;
    }
    ReplayReport rep;
    if (const std::optional<int> code = a.model.empty() ? replay_tcp(a, sc, o, rep) : replay_model(a, sc, o, rep))
        return *code;
    std::string record_error;  // a write error: reported, and the run fails
    if (o.record != nullptr) {
        record_error = writer.close();
        if (record_error.empty()) record_error = record_file.commit();
    }
    std::fputs(rep.summary().c_str(), stdout);
    if (!record_error.empty()) return fail("--record: " + record_error);
    return rep.passed() ? coreio::cli::kExitOk : coreio::cli::kExitFailed;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"coreio-replay: replay a CoreIO trace against a device model, or as the device.\n"
                 "Exit status: 0 pass, 1 a divergence (or finding), 2 bad command line or input, or no device."};
    coreio::cli::add_version(app, "coreio-replay");
    app.require_subcommand(1);

    DeviceArgs d;
    auto* dev = app.add_subcommand("device", "play the VM side of TRACE to a device model and check its replies");
    dev->add_option("trace", d.trace, "trace file")->required();
    dev->add_option("--port", d.port, "TCP port the device model connects to (0: any free one, printed)");
    dev->add_option("--listen", d.listen, "address to listen on");
    dev->add_option("--run", d.run,
                    "start this command (/bin/sh -c) as the device model; it gets the address to connect to in "
                    "$COREHDL_VM (coreio_connect(NULL) reads it; else --run './dev $COREHDL_VM')");
    dev->add_option("--model", d.model, "replay in process against a built-in example model: timer, dmacopy");
    dev->add_flag("--seeded-bug", d.seeded_bug, "with --model: switch the model's seeded bug on");
    dev->add_option("--ignore", d.ignore, "ignore bits of a register in reads: RID:OFFSET[:MASK] (repeatable)");
    dev->add_option("--rules", d.rules, "rule file (mmio RID:OFFSET[:MASK] / irq RID[:LINE] / dma ADDR[:SIZE])");
    dev->add_flag("--keep-going", d.keep_going, "report every divergence, not only the first");
    dev->add_option("--timing", d.timing, "fast (default), recorded or scaled");
    dev->add_option("--scale", d.scale, "with --timing scaled: time factor (2 = half speed)");
    dev->add_option("--check", d.check, "auto (default), replies or findings (reproducers: assertions only)");
    auto* timeout_opt = dev->add_option(
        "--timeout", d.timeout_ms, "ms without a reply before the device counts as hung; also bounds the wait for it to connect");
    dev->add_option("--client", d.client, "which device model of a multi-client trace");
    dev->add_flag("--allow-empty", d.allow_empty, "accept a trace (or client) with nothing to replay: PASS with 0 steps");
    dev->add_option("--record", d.record, "also write the replay as a trace");
    dev->add_option("--expect-read", d.expect_read, "assertion RID:OFFSET:MASK:VALUE on reads (repeatable)");
    dev->add_option("--irq-stuck-steps", d.irq_stuck, "an IRQ line high for more steps than this is a finding");
    dev->add_flag("--no-irq-reset-check", d.no_irq_reset, "do not require IRQ lines low after a reset");
    dev->add_flag("--no-dma-mmio-check", d.no_dma_mmio, "allow DMA into the MMIO ranges");

    StubArgs s;
    auto* stub = app.add_subcommand("stub", "connect to a VM as the device and answer it from TRACE");
    add_stub_options(*stub, s);

    if (const auto code = coreio::cli::parse(app, argc, argv)) return *code;
    kill_device_groups_on_signals();
    d.timeout_given = timeout_opt->count() > 0;
    if (dev->parsed()) return run_device(d);
    return run_stub(s);
}
