// What coreio-cosim-NAME says at start-up, run as a user runs it: the reset
// polarity check stops a device whose design sits in reset, and the address
// map line says where accesses become bus errors.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace {

struct Outcome {
    int exit_code = -1;
    std::string err;  // its stderr
};

/// Runs `exe` with `args` (no VM listens on 127.0.0.1:1, so a device that gets
/// that far fails to connect) and collects its exit code and stderr.
Outcome run_device(const char* exe, const std::vector<std::string>& args) {
    const auto log = std::filesystem::temp_directory_path() /
                     ("coreio-cosim-startup-" + std::to_string(::getpid()) + ".log");
    std::vector<char*> argv{const_cast<char*>(exe)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    Outcome r;
    const int spawned = posix_spawn(&pid, exe, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return r;
    int status = 0;
    if (::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    std::ifstream in(log);
    r.err.assign(std::istreambuf_iterator<char>(in), {});
    std::filesystem::remove(log);
    return r;
}

}  // namespace

TEST(Startup, WrongResetPolarityStopsTheDeviceWithTheFix) {
    const Outcome r = run_device(COSIM_WRONG_RESET_EXE, {"127.0.0.1:1"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("it sits in reset"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("set RESET rst ACTIVE_HIGH in coreio_add_cosim()"), std::string::npos) << r.err;
}

TEST(Startup, SaysWhereAccessesBecomeBusErrors) {
    Outcome r = run_device(COSIM_ZERO_WAIT_EXE, {"127.0.0.1:1", "--base", "0x10000000", "--range-size", "0x20000"});
    EXPECT_EQ(r.exit_code, 2) << r.err;  // nothing listens there: a connect error exits 2 (cli conventions)
    EXPECT_NE(r.err.find("the range (0x20000 bytes) is larger than the design's 16-bit address: accesses at "
                         "offsets 0x10000..0x1ffff answer a bus error"),
              std::string::npos)
        << r.err;
    r = run_device(COSIM_ZERO_WAIT_EXE, {"127.0.0.1:1"});
    EXPECT_NE(r.err.find("the design decodes 16 address bits"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("give --range-size"), std::string::npos) << r.err;
}
