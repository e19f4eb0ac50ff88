// cosim_bench: how much the bridge costs over Verilator itself.
//  1. Idle clock: cycles/s of Bridge::run_idle() (IRQ sampled every cycle)
//     against a bare `clk=0; eval(); clk=1; eval();` loop of the same model
//     (timer-apb with its timer running). Goal: ratio >= 0.80.
//  2. The per-cycle path (a protocol checker attached), for reference.
//  3. MMIO transactions/s through each slave adapter in process, and through
//     the mock VM over TCP on 127.0.0.1 (one outstanding, and pipelined).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

#include "Vtimer_apb_fst.h"
#include "coreio/cosim/bridge.hpp"
#include "coreio/cosim/checkers.hpp"
#include "coreio/mockvm/vm.hpp"
#include "timer-apb_model.hpp"
#include "timer-axil_model.hpp"
#include "timer-wb_model.hpp"
#include "verilated.h"

using namespace coreio::cosim;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// CPU time of this thread: the machine may be shared, and the cycle loops
/// never block, so CPU time compares them fairly where wall time would not.
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The bare loop: Verilator's own eval, nothing else.
double bare_cycles_per_s(std::uint64_t cycles) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->traceEverOn(true);  // as the bridge's model has it
    auto top = std::make_unique<Vtimer_apb_fst>(ctx.get(), "top");
    top->PRESETn = 0;
    for (int i = 0; i < 4; ++i) top->PCLK = 0, top->eval(), top->PCLK = 1, top->eval();
    top->PRESETn = 1;
    // Start the periodic timer through the APB pins by hand (LOAD = 1000, CTRL = enable|periodic|irq).
    auto apb_write = [&](std::uint16_t addr, std::uint32_t data) {
        top->PSEL = 1, top->PENABLE = 0, top->PWRITE = 1, top->PADDR = addr, top->PWDATA = data, top->PSTRB = 0xf;
        top->PCLK = 0, top->eval(), top->PCLK = 1, top->eval();
        top->PENABLE = 1;
        do {
            top->PCLK = 0, top->eval();
            const bool ready = top->PREADY;
            top->PCLK = 1, top->eval();
            if (ready) break;
        } while (true);
        top->PSEL = 0, top->PENABLE = 0;
    };
    apb_write(0x10, 1000);
    apb_write(0x0c, 0x7);
    const double t0 = thread_cpu_seconds();
    std::uint64_t irq_changes = 0;
    std::uint8_t last = top->irq;
    for (std::uint64_t i = 0; i < cycles; ++i) {
        top->PCLK = 0;
        top->eval();
        top->PCLK = 1;
        top->eval();
        irq_changes += top->irq != last;  // keep the loop honest: the output is read too
        last = top->irq;
    }
    const double s = thread_cpu_seconds() - t0;
    top->final();
    if (irq_changes > cycles) std::puts("?");
    return static_cast<double>(cycles) / s;
}

std::unique_ptr<Bridge> make_bridge(Model& m, std::uint64_t& irq_changes) {
    BridgeOptions o;
    return std::make_unique<Bridge>(m, o, [&irq_changes](unsigned, bool) { ++irq_changes; }, nullptr);
}

double bridge_cycles_per_s(std::uint64_t cycles, bool with_checker) {
    auto model = models::make_timer_apb(TraceFormat::Fst);
    std::uint64_t irq_changes = 0;
    auto bridge = make_bridge(*model, irq_changes);
    std::uint32_t v = 1000;
    bridge->write(0x10, 4, &v, 0);
    v = 0x7;
    bridge->write(0x0c, 4, &v, 0);
    std::unique_ptr<ApbChecker> checker;
    if (with_checker) checker = std::make_unique<ApbChecker>(bridge->sim(), model->ports().apb);
    const double t0 = thread_cpu_seconds();
    bridge->run_idle(cycles);
    return static_cast<double>(cycles) / (thread_cpu_seconds() - t0);
}

double adapter_tps(std::unique_ptr<Model> (*make)(std::optional<TraceFormat>), int n) {
    auto model = make(std::nullopt);
    std::uint64_t irq_changes = 0;
    auto bridge = make_bridge(*model, irq_changes);
    const auto t0 = Clock::now();
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
        v = static_cast<std::uint32_t>(i);
        bridge->write(0x04, 4, &v, 0);
        bridge->read(0x04, 4, &v, 0);
    }
    return 2.0 * n / seconds_since(t0);
}

struct VmFigures {
    double serial_tps = 0;     // one read outstanding
    double pipelined_tps = 0;  // read_many, 64 outstanding
};

VmFigures vm_tps(std::unique_ptr<Model> (*make)(std::optional<TraceFormat>), int n) {
    coreio::mockvm::VmConfig c;
    c.ranges = {{0x10000000, 0x1000}};
    coreio::mockvm::Vm vm(c);
    auto model = make(std::nullopt);
    coreio::Client client;
    Bridge bridge(*model, BridgeOptions{}, [&client](unsigned line, bool level) { client.irq_update(0, line, level); },
                  nullptr);
    VmFigures f;
    if (client.connect(vm.endpoint()) != 0 || client.register_range(0, bridge) != 0 ||
        !vm.wait_for_claim(0, std::chrono::seconds(5))) {
        std::fprintf(stderr, "cannot connect the bridge to the mock VM\n");
        return f;
    }
    std::atomic<bool> stop{false};
    std::thread t([&] { serve(client, bridge, ServeOptions{0}, stop); });
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) (void)vm.readl(0x10000004);
    f.serial_tps = n / seconds_since(t0);
    std::vector<std::uint64_t> addrs(static_cast<std::size_t>(n), 0x10000004), out(addrs.size());
    t0 = Clock::now();
    if (vm.read_many(addrs, 4, out, 64) == 0) f.pipelined_tps = n / seconds_since(t0);
    stop = true;
    t.join();
    client.disconnect();
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    const std::uint64_t cycles = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 20'000'000;
    const int n = argc > 2 ? std::atoi(argv[2]) : 20000;

    // Interleaved rounds, best of each, so load changes hit both sides alike.
    double bare = 0, bridged = 0, checked = 0;
    for (int round = 0; round < 5; ++round) {
        bare = std::max(bare, bare_cycles_per_s(cycles));
        bridged = std::max(bridged, bridge_cycles_per_s(cycles, false));
        checked = std::max(checked, bridge_cycles_per_s(cycles / 4, true));
    }
    std::printf("cosim_bench: timer-apb, %llu cycles, best of 5 interleaved rounds, thread CPU time\n",
                static_cast<unsigned long long>(cycles));
    std::printf("  bare Verilator eval loop      %12.0f cycles/s\n", bare);
    std::printf("  bridge idle clock (run_idle)  %12.0f cycles/s   ratio bridge/bare = %.3f (goal >= 0.80)\n", bridged,
                bridged / bare);
    std::printf("  per-cycle path + APB checker  %12.0f cycles/s   ratio = %.3f\n", checked, checked / bare);

    std::printf("MMIO transactions/s (32-bit accesses to a register)\n");
    std::printf("  %-10s %14s %16s %18s\n", "adapter", "in-process", "mock VM serial", "mock VM pipelined");
    struct Row {
        const char* name;
        std::unique_ptr<Model> (*make)(std::optional<TraceFormat>);
    };
    for (const Row& r : {Row{"apb", &models::make_timer_apb}, Row{"axi-lite", &models::make_timer_axil},
                         Row{"wishbone", &models::make_timer_wb}}) {
        const double inproc = adapter_tps(r.make, n * 10);
        const VmFigures vf = vm_tps(r.make, n);
        std::printf("  %-10s %14.0f %16.0f %18.0f\n", r.name, inproc, vf.serial_tps, vf.pipelined_tps);
    }
    return 0;
}
