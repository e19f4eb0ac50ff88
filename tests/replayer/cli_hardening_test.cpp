// coreio-replay and coreio-fuzz run as processes against devices that
// misbehave (hang, fork helpers, never connect) and inputs that hold nothing:
// nothing is left running, nothing passes by checking nothing, every wait is
// bounded, and long runs say how they are doing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "child_process.hpp"
#include "coreio/replayer/scenario.hpp"
#include "progress_display.hpp"
#include "coreio/trace/writer.hpp"

using namespace coreio::testing;
using namespace std::chrono_literals;

namespace {

const std::string kReplay = COREIO_REPLAY_BIN, kFuzz = COREIO_FUZZ_BIN, kTimer = COREIO_TIMER_BIN;
const std::string kGolden = std::string(COREIO_GOLDEN_DIR) + "/v1-basic.ctrace";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string unique(const std::string& what) {
    static std::atomic<int> n{0};
    return what + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

std::string temp_dir(const std::string& what) {
    const std::string d = std::string(::testing::TempDir()) + unique(what);
    std::filesystem::create_directories(d);
    return d;
}

// Processes (other than this one) whose environment holds `entry` exactly.
// Zombies have no environment left, so only live processes count.
int count_with_env(const std::string& entry) {
    int n = 0;
    DIR* d = ::opendir("/proc");
    if (d == nullptr) return -1;
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        if (std::stoi(name) == ::getpid()) continue;
        std::ifstream in("/proc/" + name + "/environ", std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string env = std::string(1, '\0') + ss.str();
        if (env.find(std::string(1, '\0') + entry + std::string(1, '\0')) != std::string::npos) ++n;
    }
    ::closedir(d);
    return n;
}

// Waits (bounded) until no process carries the marker; returns how many are left.
int left_after(const std::string& entry, std::chrono::milliseconds bound = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    int n = count_with_env(entry);
    while (n != 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
        n = count_with_env(entry);
    }
    return n;
}

// The --run command of the forking device, every process of it marked by `entry`.
std::string forking_device(const std::string& entry, unsigned hang_after) {
    return entry + " exec '" + std::string(COREIO_FORKING_DEVICE_BIN) + "' " + std::to_string(hang_after);
}

std::string first_file_in(const std::string& dir) {
    for (const auto& e : std::filesystem::directory_iterator(dir)) return e.path();
    return "";
}

TEST(DeviceProcesses, FuzzingAndReplayingAHangingForkingDeviceLeaveNothingRunning) {
    const std::string mark = "COREIO_TEST_MARK=" + unique("fuzz");
    const std::string dir = temp_dir("orphans");
    // Every exec with more than 3 accesses hangs the device: a hang finding and a new device each time.
    // (--timeout also bounds the device's start and connect: generous, for loaded machines.)
    ProcessOutcome r = run_process({kFuzz, "--run", forking_device(mark, 3), "--range", "0:0x10000000:0x1000", "--seed",
                                    "3", "--execs", "4", "--max-ops", "8", "--timeout", "3000", "--no-minimise", "--out",
                                    dir},
                                   120s);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "4 execs")) << r.out;
    EXPECT_TRUE(contains(r.out, "hang")) << r.out;
    EXPECT_EQ(left_after(mark), 0) << r.out;

    const std::string repro = first_file_in(dir);
    ASSERT_FALSE(repro.empty());
    r = run_process({kReplay, "device", repro, "--run", forking_device(mark, 0), "--timeout", "3000"}, 60s);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(left_after(mark), 0) << r.out;
    std::filesystem::remove_all(dir);
}

// The tool is stopped while its device hangs: by Ctrl-C, by `kill`, or killed outright.
void stop_while_the_device_hangs(const std::vector<std::string>& argv_before_run, const std::string& mark, int sig) {
    std::vector<std::string> argv = argv_before_run;
    argv.push_back("--run");
    argv.push_back(forking_device(mark, 0));
    argv.push_back("--timeout");
    argv.push_back("60000");
    ChildProcess tool(argv);
    // The device and its helper are up (and the device hangs on the first access).
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (count_with_env(mark) < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    ASSERT_GE(count_with_env(mark), 2) << "the device never started";
    tool.signal(sig);
    const ProcessOutcome r = tool.finish(20s);
    EXPECT_FALSE(r.timed_out) << r.out;
    EXPECT_EQ(r.signal, sig) << r.out;
    EXPECT_EQ(left_after(mark), 0) << "signal " << sig << ": " << r.out;
}

TEST(DeviceProcesses, StoppingTheFuzzerBySignalLeavesNothingRunning) {
    const std::vector<std::string> fuzz = {kFuzz, "--range", "0:0x10000000:0x1000", "--execs", "5"};
    for (int sig : {SIGINT, SIGTERM, SIGKILL}) stop_while_the_device_hangs(fuzz, "COREIO_TEST_MARK=" + unique("sig"), sig);
}

TEST(DeviceProcesses, StoppingTheReplayerBySignalLeavesNothingRunning) {
    for (int sig : {SIGINT, SIGKILL})
        stop_while_the_device_hangs({kReplay, "device", kGolden}, "COREIO_TEST_MARK=" + unique("rsig"), sig);
}

TEST(ReplayInput, NothingToReplayIsAnErrorUnlessAllowed) {
    ProcessOutcome r = run_process({kReplay, "device", kGolden, "--client", "5", "--model", "timer"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "no client 5 in the trace (its clients: 0, 1)")) << r.out;
    r = run_process({kReplay, "stub", kGolden, "--client", "5", "--target", "127.0.0.1:1"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "no client 5")) << r.out;

    // A trace cut right after its header.
    const std::string path = std::string(::testing::TempDir()) + unique("header-only") + ".ctrace";
    coreio::trace::TraceWriter w;
    coreio::trace::TraceHeader h;
    h.tool = "replayer_cli_test";
    ASSERT_EQ(w.open(path, h), "");
    ASSERT_EQ(w.close(), "");
    r = run_process({kReplay, "device", path, "--model", "timer"});
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "holds no records")) << r.out;
    EXPECT_FALSE(contains(r.out, "PASS")) << r.out;
    r = run_process({kReplay, "device", path, "--model", "timer", "--allow-empty"});
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "PASS: 0 divergences; 0 steps")) << r.out;
    std::remove(path.c_str());
}

TEST(ReplayWait, TimeoutBoundsTheWaitForTheDeviceToConnect) {
    const auto t0 = std::chrono::steady_clock::now();
    const ProcessOutcome r = run_process({kReplay, "device", kGolden, "--timeout", "300"}, 30s);
    EXPECT_FALSE(r.timed_out) << "still waiting for a device after 30 s: " << r.out;
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "no device model connected to 127.0.0.1:")) << r.out;
    EXPECT_TRUE(contains(r.out, "within 300 ms")) << r.out;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
}

// A device command with a hard-coded address instead of $COREHDL_VM: the
// message says where the address was.
TEST(ReplayWait, ADeviceThatDoesNotConnectIsToldAboutCorehdlVm) {
    const ProcessOutcome r =
        run_process({kReplay, "device", kGolden, "--timeout", "300", "--run", "echo connecting to 127.0.0.1:1; exit 1"}, 30s);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "the device exited with code 1")) << r.out;
    EXPECT_TRUE(contains(r.out, "--run gives it the address in $COREHDL_VM")) << r.out;
}

// A --run device that exits before connecting ends the wait at once, not at
// --timeout (60 s here; the run is cut at 40 s and must not come near it).
TEST(ReplayWait, ADeviceThatExitsBeforeConnectingEndsTheWait) {
    const auto t0 = std::chrono::steady_clock::now();
    const ProcessOutcome r = run_process({kReplay, "device", kGolden, "--timeout", "60000", "--run", "exit 3"}, 40s);
    EXPECT_FALSE(r.timed_out) << "still waiting for a device that exited: " << r.out;
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "the device exited with code 3 before connecting to 127.0.0.1:")) << r.out;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << r.out;
}

TEST(FuzzRun, ATimeLimitAloneRunsThatLongWithSummaryLines) {
    const ProcessOutcome r = run_process({kFuzz, "--model", "timer", "--time", "11"}, 90s);
    EXPECT_EQ(r.code, 0) << r.out;
    double seconds = 0;
    const auto at = r.out.rfind(" execs (");
    ASSERT_NE(at, std::string::npos) << r.out;
    ASSERT_EQ(std::sscanf(r.out.c_str() + r.out.find(" in ", at), " in %lf s", &seconds), 1) << r.out;
    EXPECT_GE(seconds, 11.0) << r.out;
    // Not a terminal: a summary line every 10 s.
    EXPECT_TRUE(contains(r.out, "coreio-fuzz: ")) << r.out;
    EXPECT_TRUE(contains(r.out, " execs in 10 s, ")) << r.out;
    EXPECT_TRUE(contains(r.out, " execs/s, 0 findings\n")) << r.out;
}

// --memory takes sizes as coreio-mockvm's --memory does (K/M/G suffixes), and
// names what is wrong with a bad one.
TEST(FuzzRun, MemorySizesTakeTheMockVmsSuffixes) {
    ProcessOutcome r = run_process({kFuzz, "--model", "timer", "--memory", "0x80000000:16M", "--execs", "10"}, 60s);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "10 execs")) << r.out;
    r = run_process({kFuzz, "--model", "timer", "--memory", "0x80000000:16Q", "--execs", "10"}, 60s);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "--memory in '0x80000000:16Q'")) << r.out;
    r = run_process({kFuzz, "--model", "timer", "--memory", "0x80000000:8G", "--execs", "10"}, 60s);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_TRUE(contains(r.out, "SIZE must be 1 B..4 GiB")) << r.out;
}

TEST(FuzzRun, DeviceOutputIsOffUnlessAskedFor) {
    const std::string banner = unique("DEVICE-BANNER");
    const std::string cmd = "echo " + banner + "; exec '" + kTimer + "'";
    const std::vector<std::string> fuzz = {kFuzz, "--run", cmd, "--range", "0:0x10000000:0x1000", "--execs", "3",
                                           "--timeout", "20000"};
    ProcessOutcome r = run_process(fuzz, 60s);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_FALSE(contains(r.out, banner)) << r.out;
    std::vector<std::string> with_log = fuzz;
    with_log.push_back("--device-log");
    r = run_process(with_log, 60s);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(contains(r.out, banner)) << r.out;
}

TEST(FuzzRun, ReproducersDescribeTheirOwnStepsAtCleanPaths) {
    const std::string dir = temp_dir("slashes");
    const ProcessOutcome r =
        run_process({kFuzz, "--model", "timer", "--seeded-bug", "--seed", "7", "--execs", "50000", "--out", dir + "//"}, 90s);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(contains(r.out, "reproducer: " + dir + "/")) << r.out;
    EXPECT_FALSE(contains(r.out, "//")) << r.out;
    // The header's message is what replaying the minimised reproducer shows, record numbers included.
    const std::string repro = first_file_in(dir);
    ASSERT_FALSE(repro.empty());
    coreio::replayer::Scenario sc;
    ASSERT_EQ(coreio::replayer::load_scenario(repro, sc), "");
    const std::string message = sc.label("coreio.finding.message");
    ASSERT_FALSE(message.empty());
    const ProcessOutcome replay = run_process({kReplay, "device", repro, "--model", "timer", "--seeded-bug"}, 60s);
    EXPECT_EQ(replay.code, 1) << replay.out;
    EXPECT_TRUE(contains(replay.out, "  " + message + "\n")) << message << "\n" << replay.out;
    EXPECT_TRUE(contains(r.out, message)) << message << "\n" << r.out;
    std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

std::string read_back(std::FILE* f) {
    std::fflush(f);
    std::rewind(f);
    std::string s;
    for (int c; (c = std::fgetc(f)) != EOF;) s += static_cast<char>(c);
    return s;
}

TEST(FuzzProgressDisplay, ATerminalGetsOneStatusLineRedrawnInPlace) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    coreio::replayer::ProgressDisplay p(f, true, 0ms);
    p.update(10, 0);
    p.update(20, 1);
    p.line("coreio-fuzz: finding at exec 17");
    p.finish();
    const std::string s = read_back(f);
    std::fclose(f);
    EXPECT_TRUE(contains(s, "\r\033[Kcoreio-fuzz: 10 execs in 0 s, ")) << s;
    EXPECT_TRUE(contains(s, "\r\033[Kcoreio-fuzz: 20 execs in 0 s, ")) << s;
    EXPECT_TRUE(contains(s, " execs/s, 1 finding")) << s;
    EXPECT_TRUE(contains(s, "\r\033[Kcoreio-fuzz: finding at exec 17\n")) << s;
    EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1) << s;  // only the log line ends a line
    EXPECT_TRUE(s.ends_with("\r\033[K")) << s;                // cleared at the end
}

TEST(FuzzProgressDisplay, ALogGetsASummaryLinePerInterval) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    coreio::replayer::ProgressDisplay p(f, false, 3600s);
    p.update(10, 0);  // within the interval: nothing
    p.line("coreio-fuzz: reproducer: out/x.ctrace");
    p.finish();
    std::string s = read_back(f);
    EXPECT_EQ(s, "coreio-fuzz: reproducer: out/x.ctrace\n");
    std::fclose(f);
    f = std::tmpfile();
    coreio::replayer::ProgressDisplay q(f, false, 0ms);
    q.update(5, 2);
    s = read_back(f);
    std::fclose(f);
    EXPECT_TRUE(s.starts_with("coreio-fuzz: 5 execs in 0 s, ")) << s;
    EXPECT_TRUE(s.ends_with(" execs/s, 2 findings\n")) << s;
    EXPECT_EQ(s.find('\r'), std::string::npos) << s;
}

}  // namespace
