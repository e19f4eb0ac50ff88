// The device stub against the mock VM, and the CLIs as processes.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <future>
#include <sys/wait.h>

#include "coreio/replayer/stub.hpp"
#include "replay_util.hpp"
#include "timer_regfile.hpp"

using namespace coreio;
using namespace coreio::replayer;
using namespace coreio::testing;
using coreio::examples::TimerRegfile;

namespace {

// A driver's scenario: program the timer, wait for its IRQ, acknowledge, read back.
void driver(mockvm::Vm& vm, std::uint32_t load) {
    vm.writel(kBase + 0x20, 0xcafe);
    vm.writel(kBase + TimerRegfile::kLoad, load);
    vm.writel(kBase + TimerRegfile::kCtrl, TimerRegfile::kCtrlEnable | TimerRegfile::kCtrlIrqEn, true);
    for (int i = 0; i < 3; ++i) vm.readl(kBase + TimerRegfile::kStatus);
    vm.writel(kBase + TimerRegfile::kStatus, 1, true);
    vm.readl(kBase + 0x20);
}

TEST(Stub, AnswersTheRecordedScenarioToAVm) {
    const std::string path = temp_path("stub");
    ASSERT_EQ(record_with_mockvm(path, examples::timer_regfile_factory(), [](mockvm::Vm& vm) { driver(vm, 2); }), "");
    Scenario sc;
    ASSERT_EQ(load_scenario(path, sc), "");

    mockvm::VmConfig c;
    c.ranges = {{kBase, 0x1000}};
    c.memory = {{kMem, kMemSize}};
    c.log = [](std::string_view) {};
    mockvm::Vm vm(c);
    DeviceStub stub(sc);
    ASSERT_EQ(stub.connect(vm.endpoint()), 0);
    auto done = std::async(std::launch::async, [&] { return stub.run(); });
    ASSERT_TRUE(vm.wait_for_claim(0, std::chrono::seconds(10)));
    // The same driver sees the device it was recorded with: values and IRQ.
    vm.writel(kBase + 0x20, 0xcafe);
    vm.writel(kBase + TimerRegfile::kLoad, 2);
    EXPECT_EQ(vm.writel(kBase + TimerRegfile::kCtrl, 3, true), 0);
    vm.readl(kBase + TimerRegfile::kStatus);
    EXPECT_EQ(vm.readl(kBase + TimerRegfile::kStatus).value, 1u);
    EXPECT_TRUE(vm.wait_irq(0, 0, true, std::chrono::seconds(10)));
    vm.readl(kBase + TimerRegfile::kStatus);
    vm.writel(kBase + TimerRegfile::kStatus, 1, true);
    EXPECT_TRUE(vm.wait_irq(0, 0, false, std::chrono::seconds(10)));
    EXPECT_EQ(vm.readl(kBase + 0x20).value, 0xcafeu);
    ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    ReplayReport rep = done.get();
    EXPECT_TRUE(rep.passed()) << rep.summary();
    EXPECT_EQ(rep.counts.irqs, 2u);
    std::remove(path.c_str());
}

TEST(Stub, ReportsWhereTheVmDiverges) {
    const std::string path = temp_path("stub2");
    ASSERT_EQ(record_with_mockvm(path, examples::timer_regfile_factory(), [](mockvm::Vm& vm) { driver(vm, 2); }), "");
    Scenario sc;
    ASSERT_EQ(load_scenario(path, sc), "");
    mockvm::VmConfig c;
    c.ranges = {{kBase, 0x1000}};
    c.log = [](std::string_view) {};
    mockvm::Vm vm(c);
    StubOptions so;
    so.idle = std::chrono::milliseconds(500);
    DeviceStub stub(sc, so);
    ASSERT_EQ(stub.connect(vm.endpoint()), 0);
    auto done = std::async(std::launch::async, [&] { return stub.run(); });
    ASSERT_TRUE(vm.wait_for_claim(0, std::chrono::seconds(10)));
    vm.writel(kBase + 0x20, 0xcafe);
    vm.writel(kBase + TimerRegfile::kLoad, 5);  // the driver changed: LOAD 5, not 2
    vm.ping();
    ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    ReplayReport rep = done.get();
    ASSERT_FALSE(rep.passed());
    EXPECT_EQ(rep.divergences[0].field, "mmio.data");
    EXPECT_EQ(rep.divergences[0].record, sc.steps[1].record);
    EXPECT_EQ(rep.divergences[0].expected, "0x00000002");
    EXPECT_EQ(rep.divergences[0].got, "0x00000005");
    std::remove(path.c_str());
}

// Runs a command, returns (exit code, stdout).
std::pair<int, std::string> run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr) return {-1, ""};
    std::array<char, 4096> buf;
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out += buf.data();
    const int st = ::pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(Cli, ReplayDeviceInProcessOverTcpAndFuzzReproducers) {
    const std::string bin = COREIO_REPLAY_BIN, fuzz = COREIO_FUZZ_BIN, timer = COREIO_TIMER_BIN;
    const std::string path = temp_path("cli");
    ASSERT_EQ(record_with_mockvm(path, examples::timer_regfile_factory(), [](mockvm::Vm& vm) { driver(vm, 2); }), "");
    auto [rc, out] = run(bin + " device " + path + " --model timer");
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("PASS"), std::string::npos);
    std::tie(rc, out) = run(bin + " device " + path + " --run '" + timer + "'");
    EXPECT_EQ(rc, 0) << out;
    // A bad argument names itself; a missing file names the file.
    std::tie(rc, out) = run(bin + " device " + path + " --model timer --ignore 9:0");
    EXPECT_EQ(rc, 2);
    EXPECT_NE(out.find("RID must be 0..7"), std::string::npos) << out;
    std::tie(rc, out) = run(bin + " device /nonexistent.ctrace --model timer");
    EXPECT_EQ(rc, 2);
    EXPECT_NE(out.find("/nonexistent.ctrace"), std::string::npos) << out;

    const std::string dir = std::string(::testing::TempDir()) + "cli-fuzz-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);  // left by a dead process with the same id
    std::tie(rc, out) = run(fuzz + " --model timer --seeded-bug --seed 7 --execs 50000 --out " + dir);
    EXPECT_EQ(rc, 1) << out;
    EXPECT_NE(out.find("irq-stuck-high:irq.after-reset"), std::string::npos) << out;
    std::string repro;
    for (const auto& e : std::filesystem::directory_iterator(dir)) repro = e.path();
    ASSERT_FALSE(repro.empty());
    for (int i = 0; i < 10; ++i) {
        std::tie(rc, out) = run(bin + " device " + repro + " --model timer --seeded-bug");
        EXPECT_EQ(rc, 1) << out;
        EXPECT_NE(out.find("irq-stuck-high irq.after-reset"), std::string::npos) << out;
    }
    // Out of process too: the example executable with its bug.
    std::tie(rc, out) = run(bin + " device " + repro + " --run '" + timer + " --seeded-bug'");
    EXPECT_EQ(rc, 1) << out;
    std::tie(rc, out) = run(bin + " device " + repro + " --run '" + timer + "'");
    EXPECT_EQ(rc, 0) << out;
    std::filesystem::remove_all(dir);
    std::remove(path.c_str());
}

// --record never overwrites the trace being replayed, and a write error fails the run.
TEST(Cli, ReplayRecordRefusesItsInputAndReportsWriteErrors) {
    const std::string bin = COREIO_REPLAY_BIN;
    const std::string path = temp_path("record-in");
    ASSERT_EQ(record_with_mockvm(path, examples::timer_regfile_factory(), [](mockvm::Vm& vm) { driver(vm, 2); }), "");
    const auto size = std::filesystem::file_size(path);
    auto [rc, out] = run(bin + " device " + path + " --model timer --record " + path);
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find("is also an input"), std::string::npos) << out;
    EXPECT_EQ(std::filesystem::file_size(path), size);
    std::tie(rc, out) = run(bin + " device " + path + " --model timer --record /dev/full");
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
    const std::string copy = temp_path("record-out");
    std::tie(rc, out) = run(bin + " device " + path + " --model timer --record " + copy);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_GT(std::filesystem::file_size(copy), 100u);
    std::remove(path.c_str());
    std::remove(copy.c_str());
}

}  // namespace
