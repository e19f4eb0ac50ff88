// cosim_bench: how much the bridge costs over Verilator itself.
//  1. Idle clock: cycles/s of Bridge::run_idle() (IRQ sampled every cycle)
//     against a bare `clk=0; eval(); clk=1; eval();` loop of the same model
//     (timer-apb with its timer running). Goal: ratio >= 0.80.
//  2. The per-cycle path (a protocol checker attached), for reference.
//  3. MMIO transactions/s through each slave adapter in process, and through
//     the mock VM over TCP on 127.0.0.1 (one outstanding, and pipelined).
//  4. The cosim overhead per transaction: one read at a time through the mock
//     VM, the bridge (clock frozen between accesses, and idling at 1 M
//     cycles/s as coreio-cosim-NAME does by default) against a bare libcoreio
//     register file through the same VM: µs per access, cycles simulated per
//     access, ratio. Goal: ratio <= 1.2.
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
#include "../best_of.hpp"
#include "../register_file.hpp"
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

/// Wall seconds for `n` serial 32-bit reads at `addr` through `vm`.
double serial_reads_s(coreio::mockvm::Vm& vm, std::uint64_t addr, int n) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i)
        if (!vm.readl(addr)) return 1e99;
    return seconds_since(t0);
}

/// A device on its own thread, served by `loop` until destroyed: a bare
/// register file, or a model through the bridge.
class ServedDevice {
public:
    using Loop = std::function<void(coreio::Client&, std::atomic<bool>&)>;
    ServedDevice(coreio::mockvm::Vm& vm, coreio::Client& client, coreio::MmioHandler& handler, Loop loop)
        : vm_(vm), client_(client) {
        if (client.connect(vm.endpoint()) != 0 || client.register_range(0, handler) != 0 ||
            !vm.wait_for_claim(0, std::chrono::seconds(5)))
            std::fprintf(stderr, "cannot connect a device to the mock VM\n");
        thread_ = std::thread([this, loop = std::move(loop)] { loop(client_, stop_); });
    }
    ~ServedDevice() {
        stop_ = true;
        thread_.join();
        client_.disconnect();
        (void)vm_.wait_until([this] { return !vm_.claimed(0); }, std::chrono::seconds(5));
    }

private:
    coreio::mockvm::Vm& vm_;
    coreio::Client& client_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

void overhead_table(int n) {
    constexpr std::uint64_t kBase = 0x10000000;
    coreio::mockvm::VmConfig c;
    c.ranges = {{kBase, 0x1000}};
    c.log = [](std::string_view) {};
    coreio::mockvm::Vm vm(c);
    std::uint64_t cycles = 0, accesses = 0;
    auto bridged = [&](std::uint64_t idle_rate) {
        return [&, idle_rate] {
            auto model = models::make_timer_apb(std::nullopt);
            coreio::Client client;
            Bridge bridge(*model, BridgeOptions{}, [&client](unsigned line, bool level) { client.irq_update(0, line, level); },
                          nullptr);
            ServedDevice dev(vm, client, bridge, [&bridge, idle_rate](coreio::Client& cl, std::atomic<bool>& stop) {
                serve(cl, bridge, ServeOptions{idle_rate}, stop);
            });
            const std::uint64_t c0 = bridge.sim().cycles(), a0 = bridge.accesses();
            const double s = serial_reads_s(vm, kBase + 4, n);
            if (idle_rate == 0) cycles = bridge.sim().cycles() - c0, accesses = bridge.accesses() - a0;
            return s;
        };
    };
    const auto bare = [&] {
        coreio::bench::RegisterFile regs(kBase);
        coreio::Client client;
        ServedDevice dev(vm, client, regs, [](coreio::Client& cl, std::atomic<bool>& stop) {
            while (!stop.load() && cl.run_for(20000) == 0) {
            }
        });
        return serial_reads_s(vm, kBase + 4, n);
    };
    const std::vector<double> best = coreio::bench::best_of(5, {bare, bridged(0), bridged(1000000)});
    const auto us = [n](double s) { return s * 1e6 / n; };
    std::printf("cosim overhead per transaction: %d serial 32-bit reads through the mock VM, best of 5 interleaved\n", n);
    std::printf("  bare libcoreio register file      %7.2f us/access\n", us(best[0]));
    std::printf("  timer-apb, clock frozen           %7.2f us/access  %.2f cycles/access  ratio %.3f (goal <= 1.2)\n",
                us(best[1]), accesses ? static_cast<double>(cycles) / static_cast<double>(accesses) : 0.0,
                best[1] / best[0]);
    std::printf("  timer-apb, idling at 1 M cycles/s %7.2f us/access                     ratio %.3f (goal <= 1.2)\n",
                us(best[2]), best[2] / best[0]);
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
    overhead_table(n);
    return 0;
}
