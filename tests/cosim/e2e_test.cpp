// Each example device driven through the mock VM over TCP (127.0.0.1, an
// ephemeral port) as a guest driver would: program the timer and wait for its
// IRQ, clear it; DMA copies into guest memory; RESET mid-operation; error
// responses as bus errors; pair accesses; determinism; the real executable.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "coreio/cosim/bridge.hpp"
#include "coreio/mockvm/vm.hpp"
#include "dma-copy_model.hpp"
#include "timer-apb_model.hpp"
#include "timer-axil_model.hpp"
#include "timer-wb_model.hpp"

extern char** environ;

using namespace coreio::cosim;
using namespace std::chrono_literals;
namespace models = coreio::cosim::models;

namespace {

constexpr std::uint64_t kBase = 0x1000'0000ull;
constexpr std::uint64_t kMem = 0x8000'0000ull;
constexpr std::uint64_t kScratch0 = 0x04, kScratch1 = 0x08, kCtrl = 0x0c, kLoad = 0x10, kStatus = 0x18,
                        kCyclesLo = 0x1c;

coreio::mockvm::VmConfig vm_config() {
    coreio::mockvm::VmConfig c;
    c.ranges = {{kBase, 0x1000}};
    c.memory = {{kMem, 0x10000}};
    c.timeout = 5000ms;
    return c;
}

/// A device process in a thread: model, client, bridge and serve() loop.
class Device {
public:
    Device(coreio::mockvm::Vm& vm, std::unique_ptr<Model> m, std::uint64_t idle_rate,
           std::uint64_t idle_per_access = 0, bool pipelined = false)
        : model_(std::move(m)), dma_(client_, 0, 0), bridge_(*model_, options(idle_per_access, pipelined), irq_sink(), &dma_) {
        EXPECT_EQ(client_.connect(vm.endpoint()), 0);
        EXPECT_EQ(client_.register_range(0, bridge_), 0);
        EXPECT_TRUE(vm.wait_for_claim(0, 5000ms));
        ServeOptions so;
        so.idle_rate = idle_rate;
        thread_ = std::thread([this, so] { result_ = serve(client_, bridge_, so, stop_); });
    }
    ~Device() {
        stop_ = true;
        thread_.join();
        client_.disconnect();
    }
    Bridge& bridge() { return bridge_; }
    int result() const { return result_; }

private:
    static BridgeOptions options(std::uint64_t idle_per_access, bool pipelined) {
        BridgeOptions o;
        o.idle_per_access = idle_per_access;
        o.slave.wishbone_pipelined = pipelined;
        return o;
    }
    Bridge::IrqSink irq_sink() {
        return [this](unsigned line, bool level) { client_.irq_update(0, line, level); };
    }
    std::unique_ptr<Model> model_;
    coreio::Client client_;
    ClientDma dma_;
    Bridge bridge_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    int result_ = 0;
};

struct TimerCase {
    const char* name;
    std::unique_ptr<Model> (*make)(std::optional<TraceFormat>);
    bool pipelined;
};

/// Names the case in test listings instead of dumping its bytes.
[[maybe_unused]] void PrintTo(const TimerCase& c, std::ostream* os) { *os << c.name; }

class TimerE2e : public ::testing::TestWithParam<TimerCase> {};

}  // namespace

TEST_P(TimerE2e, ProgramTimerWaitForIrqAndClearIt) {
    coreio::mockvm::Vm vm(vm_config());
    Device dev(vm, GetParam().make(std::nullopt), 1'000'000, 0, GetParam().pipelined);
    const auto id = vm.readl(kBase);
    ASSERT_TRUE(id) << id.status;
    EXPECT_EQ(id.value, 0x434f5449u);
    ASSERT_EQ(vm.writel(kBase + kLoad, 2000, true), 0);
    ASSERT_EQ(vm.writel(kBase + kCtrl, 0x5, true), 0);  // enable, irq enable, one-shot
    ASSERT_TRUE(vm.wait_irq(0, 0, true, 5000ms));
    EXPECT_EQ(vm.readl(kBase + kStatus).value, 1u);
    ASSERT_EQ(vm.writel(kBase + kStatus, 1, true), 0);
    ASSERT_TRUE(vm.wait_irq(0, 0, false, 5000ms));
    EXPECT_EQ(vm.irq_edges(0, 0), 1u);
}

TEST_P(TimerE2e, ErrorResponseIsABusError) {
    coreio::mockvm::Vm vm(vm_config());
    Device dev(vm, GetParam().make(std::nullopt), 0);
    EXPECT_EQ(vm.readl(kBase + 0x40).status, -EIO);
    EXPECT_EQ(vm.writel(kBase + 0x80, 1, true), -EIO);
    EXPECT_TRUE(vm.readl(kBase));  // and the device still answers
    EXPECT_EQ(dev.bridge().bus_errors(), 2u);
}

TEST_P(TimerE2e, WideAndPairAccesses) {
    coreio::mockvm::Vm vm(vm_config());
    Device dev(vm, GetParam().make(std::nullopt), 0);
    ASSERT_EQ(vm.writeq(kBase + kScratch0, 0x1122334455667788ull, true), 0);
    EXPECT_EQ(vm.readl(kBase + kScratch1).value, 0x11223344u);
    EXPECT_EQ(vm.readq(kBase + kScratch0).value, 0x1122334455667788ull);
    const std::uint32_t a = 0xa1a2a3a4, b = 0xb1b2b3b4;
    ASSERT_EQ(vm.write_pair(kBase + kScratch0, 4, &a, &b, true), 0);
    std::uint32_t ra = 0, rb = 0;
    ASSERT_EQ(vm.read_pair(kBase + kScratch0, 4, &ra, &rb), 0);
    EXPECT_EQ(ra, a);
    EXPECT_EQ(rb, b);
    ASSERT_EQ(vm.writeb(kBase + kScratch0 + 2, 0x5e, true), 0);
    EXPECT_EQ(vm.readl(kBase + kScratch0).value, 0xa15ea3a4u);
}

TEST_P(TimerE2e, ResetFromTheVmResetsTheModel) {
    coreio::mockvm::Vm vm(vm_config());
    Device dev(vm, GetParam().make(std::nullopt), 1'000'000);
    ASSERT_EQ(vm.writel(kBase + kScratch0, 0x1234, true), 0);
    ASSERT_EQ(vm.writel(kBase + kLoad, 0, true), 0);
    ASSERT_EQ(vm.writel(kBase + kCtrl, 0x7, true), 0);  // periodic timer, IRQ up
    ASSERT_TRUE(vm.wait_irq(0, 0, true, 5000ms));
    vm.reset();
    ASSERT_TRUE(vm.wait_irq(0, 0, false, 5000ms));
    EXPECT_EQ(vm.readl(kBase + kScratch0).value, 0u);
    EXPECT_EQ(vm.readl(kBase + kCtrl).value, 0u);
}

TEST_P(TimerE2e, DeterministicModeGivesSameCycleCounts) {
    auto run = [&] {
        coreio::mockvm::Vm vm(vm_config());
        Device dev(vm, GetParam().make(std::nullopt), 0, 10);
        EXPECT_EQ(vm.writel(kBase + kLoad, 7, true), 0);
        EXPECT_EQ(vm.writel(kBase + kScratch0, 9), 0);
        std::uint64_t v = 0;
        for (int i = 0; i < 5; ++i) v = vm.readl(kBase + kScratch0).value;
        EXPECT_EQ(v, 9u);
        return vm.readl(kBase + kCyclesLo).value;
    };
    const auto a = run();
    std::this_thread::sleep_for(20ms);  // wall-clock time must not matter
    const auto b = run();
    EXPECT_EQ(a, b);
    EXPECT_GT(a, 0u);
}

INSTANTIATE_TEST_SUITE_P(Buses, TimerE2e,
                         ::testing::Values(TimerCase{"apb", &models::make_timer_apb, false},
                                           TimerCase{"axil", &models::make_timer_axil, false},
                                           TimerCase{"wb_classic", &models::make_timer_wb, false},
                                           TimerCase{"wb_pipelined", &models::make_timer_wb, true}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

namespace {
constexpr std::uint64_t kSrcLo = 0x04, kSrcHi = 0x08, kDstLo = 0x0c, kDstHi = 0x10, kLen = 0x14, kDCtrl = 0x18,
                        kDStatus = 0x1c, kConfig = 0x20;

void program_copy(coreio::mockvm::Vm& vm, std::uint64_t src, std::uint64_t dst, std::uint32_t len, unsigned size,
                  unsigned maxlen) {
    ASSERT_EQ(vm.writel(kBase + kSrcLo, src & 0xffffffff), 0);
    ASSERT_EQ(vm.writel(kBase + kSrcHi, src >> 32), 0);
    ASSERT_EQ(vm.writel(kBase + kDstLo, dst & 0xffffffff), 0);
    ASSERT_EQ(vm.writel(kBase + kDstHi, dst >> 32), 0);
    ASSERT_EQ(vm.writel(kBase + kLen, len), 0);
    ASSERT_EQ(vm.writel(kBase + kConfig, size | (maxlen << 8)), 0);
    ASSERT_EQ(vm.writel(kBase + kDCtrl, 0x3, true), 0);
}
}  // namespace

TEST(DmaE2e, CopyInGuestMemory) {
    coreio::mockvm::Vm vm(vm_config());
    Device dev(vm, models::make_dma_copy(std::nullopt), 1'000'000);
    std::vector<std::byte> src(3000);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::byte>(i * 13 + 1);
    ASSERT_TRUE(vm.memory().write(kMem + 0x103, src));
    program_copy(vm, kMem + 0x103, kMem + 0x8003, 3000, 3, 31);
    ASSERT_TRUE(vm.wait_irq(0, 0, true, 5000ms));
    EXPECT_EQ(vm.readl(kBase + kDStatus).value, 0x2u);
    std::vector<std::byte> dst(3002);
    ASSERT_TRUE(vm.memory().read(kMem + 0x8002, dst));
    EXPECT_EQ(dst[0], std::byte{0});
    EXPECT_EQ(dst[3001], std::byte{0});
    EXPECT_TRUE(std::equal(src.begin(), src.end(), dst.begin() + 1));
    ASSERT_EQ(vm.writel(kBase + kDStatus, 0x2, true), 0);
    ASSERT_TRUE(vm.wait_irq(0, 0, false, 5000ms));
    EXPECT_GE(vm.counters().dma_chunks, 2u * 3000 / 32);
}

TEST(DmaE2e, FaultInGuestMemoryBecomesEngineError) {
    coreio::mockvm::Vm vm(vm_config());
    Device dev(vm, models::make_dma_copy(std::nullopt), 1'000'000);
    program_copy(vm, kMem + 0x20000, kMem, 256, 3, 15);  // source outside guest memory
    ASSERT_TRUE(vm.wait_irq(0, 0, true, 5000ms));
    EXPECT_EQ(vm.readl(kBase + kDStatus).value, 0x4u);
    EXPECT_GE(dev.bridge().master()->faults(), 1u);
}

TEST(DmaE2e, ResetMidCopy) {
    coreio::mockvm::Vm vm(vm_config());
    Device dev(vm, models::make_dma_copy(std::nullopt), 5000);  // slow clock: the copy runs for seconds
    program_copy(vm, kMem, kMem + 0x8000, 0x8000, 3, 0);
    const auto busy = vm.readl(kBase + kDStatus);
    ASSERT_TRUE(busy);
    EXPECT_EQ(busy.value & 1u, 1u);
    vm.reset();
    EXPECT_EQ(vm.readl(kBase + kDStatus).value, 0u);
    EXPECT_EQ(vm.readl(kBase + kLen).value, 0u);
    // The engine works after the reset.
    std::vector<std::byte> src(64, std::byte{0x5c});
    ASSERT_TRUE(vm.memory().write(kMem + 0xf000, src));
    program_copy(vm, kMem + 0xf000, kMem + 0xf800, 64, 3, 7);
    ASSERT_TRUE(vm.wait_irq(0, 0, true, 5000ms));
    std::vector<std::byte> dst(64);
    ASSERT_TRUE(vm.memory().read(kMem + 0xf800, dst));
    EXPECT_EQ(dst, src);
}

TEST(Executable, ServesTheVmAndWritesATrace) {
    coreio::mockvm::Vm vm(vm_config());
    const auto trace = std::filesystem::temp_directory_path() / ("coreio-cosim-exe-" + std::to_string(::getpid()) + ".vcd");
    const std::string endpoint = vm.endpoint();
    const std::string path = trace.string();
    const std::string log = trace.string() + ".log";
    const char* argv[] = {COSIM_TIMER_APB_EXE, endpoint.c_str(), "--trace-vcd", path.c_str(), "--idle-rate", "100000",
                          "--check-protocol", nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, COSIM_TIMER_APB_EXE, &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(spawned, 0);
    const bool claimed = vm.wait_for_claim(0, 10000ms);
    if (claimed) {
        EXPECT_EQ(vm.readl(kBase).value, 0x434f5449u);
        ASSERT_EQ(vm.writel(kBase + kLoad, 100, true), 0);
        ASSERT_EQ(vm.writel(kBase + kCtrl, 0x5, true), 0);
        EXPECT_TRUE(vm.wait_irq(0, 0, true, 5000ms));
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(claimed);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    ASSERT_TRUE(std::filesystem::exists(trace));
    EXPECT_GT(std::filesystem::file_size(trace), 1000u);
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find(": 0 protocol violations"), std::string::npos) << text;
    std::filesystem::remove(trace);
    std::filesystem::remove(log);
}

TEST(Executable, BadOptionsAreReported) {
    for (const char* bad : {"--idle-rate=abc", "--trace-start-addr=zz", "--wb-mode=fast"}) {
        const char* argv[] = {COSIM_TIMER_APB_EXE, "127.0.0.1:1", bad, nullptr};
        pid_t pid = 0;
        ASSERT_EQ(posix_spawn(&pid, COSIM_TIMER_APB_EXE, nullptr, nullptr, const_cast<char**>(argv), environ), 0);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << bad;
    }
}

// The wire's byte mask becomes the bus strobes: only enabled bytes change.
TEST_P(TimerE2e, WriteByteMaskBecomesStrobes) {
    auto model = GetParam().make(std::nullopt);
    BridgeOptions o;
    o.base = kBase;
    o.slave.wishbone_pipelined = GetParam().pipelined;
    Bridge bridge(*model, o, [](unsigned, bool) {}, nullptr);
    const std::uint32_t all = 0x11223344, partial = 0xaabbccdd;
    ASSERT_EQ(bridge.write_masked(kBase + kScratch0, 4, &all, 0, 0xf), 0);
    ASSERT_EQ(bridge.write_masked(kBase + kScratch0, 4, &partial, 0, 0x5), 0);  // bytes 0 and 2
    std::uint32_t got = 0;
    ASSERT_EQ(bridge.read(kBase + kScratch0, 4, &got, 0), 0);
    EXPECT_EQ(got, 0x11bb33ddu);
    ASSERT_EQ(bridge.write_masked(kBase + kScratch0, 4, &partial, 0, 0), 0);  // mask 0: whole access
    ASSERT_EQ(bridge.read(kBase + kScratch0, 4, &got, 0), 0);
    EXPECT_EQ(got, partial);
}
