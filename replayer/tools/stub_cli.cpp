#include "stub_cli.hpp"

#include <cstdio>
#include <cstring>

#include "coreio/replayer/stub.hpp"
#include "replay_input.hpp"

namespace coreio::replayer {

void add_stub_options(CLI::App& cmd, StubArgs& a) {
    cmd.add_option("trace", a.trace, "trace file")->required();
    cmd.add_option("--target", a.target, "VM to connect to, HOST:PORT")->required();
    cmd.add_option("--ignore", a.ignore, "ignore bits of written data: RID:OFFSET[:MASK] (repeatable)");
    cmd.add_option("--rules", a.rules, "rule file");
    cmd.add_option("--idle", a.idle_ms, "ms without a request before the VM counts as stopped");
    cmd.add_flag("--keep-going", a.keep_going, "report every divergence");
    cmd.add_option("--client", a.client, "which device model of a multi-client trace to play");
    cmd.add_flag("--allow-empty", a.allow_empty, "accept a trace (or client) with nothing to play");
}

int run_stub(const StubArgs& a) {
    Scenario sc;
    if (std::string err = load_replay_input(a.trace, a.client, a.allow_empty, sc); !err.empty()) {
        std::fprintf(stderr, "coreio-replay: %s\n", err.c_str());
        return 2;
    }
    StubOptions o;
    o.keep_going = a.keep_going;
    o.idle = std::chrono::milliseconds(a.idle_ms);
    for (const auto& i : a.ignore)
        if (std::string err = o.ignore.add_mmio(i); !err.empty()) {
            std::fprintf(stderr, "coreio-replay: %s\n", err.c_str());
            return 2;
        }
    if (!a.rules.empty())
        if (std::string err = o.ignore.load_file(a.rules); !err.empty()) {
            std::fprintf(stderr, "coreio-replay: %s\n", err.c_str());
            return 2;
        }
    DeviceStub stub(sc, o);
    if (const int rc = stub.connect(a.target); rc != 0) {
        std::fprintf(stderr, "coreio-replay: cannot connect to %s: %s\n", a.target.c_str(), std::strerror(-rc));
        return 2;
    }
    const ReplayReport rep = stub.run();
    std::fputs(rep.summary().c_str(), stdout);
    return rep.passed() ? 0 : 1;
}

}  // namespace coreio::replayer
