// coreio-bench-guest: what the guest CPU costs.
//   - guest instructions/s in a loop with no MMIO (subs/b.ne);
//   - MMIO round trips/s to a bare device (bench/bare_responder: POSIX sockets,
//     nothing else) from guest loads, from the Vm driver API (readl) and from a
//     scenario script (readl lines), side by side in one run, best of rounds.
// The ratio script/guest says what a guest access costs beyond a script's.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "bare_responder.hpp"
#include "best_of.hpp"
#include "coreio/mockvm/guest/guest.hpp"
#include "coreio/mockvm/script.hpp"

namespace {

using namespace coreio;
using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kBase = 0xfef00000;

std::uint32_t movz_x(unsigned rd, std::uint32_t imm16) { return 0xd2800000u | (imm16 << 5) | rd; }
std::uint32_t movk_x_16(unsigned rd, std::uint32_t imm16) { return 0xf2a00000u | (imm16 << 5) | rd; }

/// x0 = n; loop { [ldr w1, [x22]]; subs x0, x0, #1; b.ne loop }; power off with 0.
std::vector<std::uint32_t> loop_program(std::uint32_t n, bool mmio) {
    std::vector<std::uint32_t> p = {0xd2bfde16};  // mov x22, #0xfef00000
    p.push_back(movz_x(0, n & 0xffff));
    p.push_back(movk_x_16(0, n >> 16));
    if (mmio) p.push_back(0xb94002c1);  // ldr w1, [x22]
    p.push_back(0xf1000400);             // subs x0, x0, #1
    p.push_back(mmio ? 0x54ffffc1 : 0x54ffffe1);  // b.ne back to the loop start
    p.insert(p.end(), {0xd2a12034, 0xb900029f, 0x14000000});  // mov x20, #0x9010000; str wzr, [x20]; b .
    return p;
}

/// A minimal ELF64 image of `words` at 0x80000000, written to `path`.
void write_elf(const std::string& path, const std::vector<std::uint32_t>& words) {
    std::vector<unsigned char> f(64 + 56 + words.size() * 4, 0);
    auto put = [&f](std::size_t at, std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) f[at + i] = static_cast<unsigned char>(v >> (8 * i));
    };
    const unsigned char ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    std::copy(std::begin(ident), std::end(ident), f.begin());
    put(16, 2, 2), put(18, 183, 2), put(20, 1, 4), put(24, 0x80000000, 8), put(32, 64, 8);
    put(52, 64, 2), put(54, 56, 2), put(56, 1, 2);                   // ehsize, phentsize, phnum
    put(64, 1, 4), put(68, 5, 4), put(72, 120, 8), put(80, 0x80000000, 8), put(88, 0x80000000, 8);
    put(96, words.size() * 4, 8), put(104, words.size() * 4, 8);     // filesz, memsz
    for (std::size_t i = 0; i < words.size(); ++i) put(120 + 4 * i, words[i], 4);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
}

/// Seconds of one guest run of `path`; exits on failure.
double run_guest(mockvm::Vm& vm, const std::string& path, std::uint64_t* instructions = nullptr) {
    mockvm::guest::Guest g(vm, {.firmware = path});
    const auto t0 = Clock::now();
    const auto r = g.run();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!r.exited || r.exit_value != 0) {
        std::fprintf(stderr, "coreio-bench-guest: guest failed: %s\n", r.error.c_str());
        std::exit(1);
    }
    if (instructions) *instructions = r.instructions;
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"coreio-bench-guest: guest CPU instructions/s and guest MMIO round trips beside a script's"};
    std::uint32_t loop = 20'000'000, accesses = 20'000;
    int rounds = 5;
    app.add_option("--loop", loop, "loop iterations of the no-MMIO guest")->capture_default_str();
    app.add_option("--accesses", accesses, "MMIO reads per run")->capture_default_str();
    app.add_option("--rounds", rounds, "rounds (best of)")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    mockvm::VmConfig cfg;
    cfg.ranges = {{kBase, 0x1000}};
    cfg.memory = {{0x80000000, 16 << 20}};
    mockvm::Vm vm(cfg);
    bench::BareResponder device(vm.port(), kBase);
    device.start();
    if (!vm.wait_for_claim(0, std::chrono::seconds(5))) return 1;

    const std::string dir = "/tmp/coreio-bench-guest-" + std::to_string(::getpid());
    const std::string loop_elf = dir + "-loop.elf", mmio_elf = dir + "-mmio.elf";
    write_elf(loop_elf, loop_program(loop, false));
    write_elf(mmio_elf, loop_program(accesses, true));
    std::ostringstream text;
    for (std::uint32_t i = 0; i < accesses; ++i) text << "readl " << kBase << "\n";
    const mockvm::Script script = mockvm::parse_script(text.str(), "bench");

    std::uint64_t instructions = 0;
    const auto best = bench::best_of(rounds, {
        [&] { return run_guest(vm, loop_elf, &instructions); },
        [&] { return run_guest(vm, mmio_elf); },
        [&] {
            const auto t0 = Clock::now();
            for (std::uint32_t i = 0; i < accesses; ++i)
                if (!vm.readl(kBase)) std::exit(1);
            return std::chrono::duration<double>(Clock::now() - t0).count();
        },
        [&] {
            std::ostringstream sink;
            const auto t0 = Clock::now();
            if (!mockvm::run_script(vm, script, sink).error.empty()) std::exit(1);
            return std::chrono::duration<double>(Clock::now() - t0).count();
        },
    });
    std::remove(loop_elf.c_str());
    std::remove(mmio_elf.c_str());
    std::printf("guest loop, no MMIO:        %.1f M guest instructions/s (%llu instructions)\n",
                static_cast<double>(instructions) / best[0] / 1e6, static_cast<unsigned long long>(instructions));
    std::printf("MMIO round trips, guest ldr: %.0f /s\n", accesses / best[1]);
    std::printf("MMIO round trips, Vm::readl: %.0f /s\n", accesses / best[2]);
    std::printf("MMIO round trips, script:    %.0f /s\n", accesses / best[3]);
    std::printf("guest round trip cost / script's: %.2fx (goal <= 1.2x)\n", best[1] / best[3]);
    return 0;
}
