// Child processes: a device model started from a command line (TCP replay and
// fuzzing of out-of-process models), and a function run in a forked child so a
// crash or a hang of an in-process model is observed instead of suffered.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace coreio::replayer {

/// A device process started with `/bin/sh -c COMMAND`, with COREHDL_VM set to
/// the VM's "host:port" (the example executables connect there). Killed
/// (SIGKILL) and reaped on destruction if still running.
class DeviceProcess {
public:
    DeviceProcess() = default;
    ~DeviceProcess();
    DeviceProcess(const DeviceProcess&) = delete;
    DeviceProcess& operator=(const DeviceProcess&) = delete;

    /// Starts `command` with COREHDL_VM=`target`. Returns 0 or a negative errno.
    int start(const std::string& command, const std::string& target);
    /// True while started and not yet reaped.
    bool running();
    /// Waits up to `timeout` for it to exit; returns how it ended ("" while running).
    std::string wait(std::chrono::milliseconds timeout);
    /// SIGKILL and reap; returns how it ended.
    std::string kill();
    /// Process id (0 when none).
    int pid() const { return pid_; }

private:
    int pid_ = 0;         // running child, 0 when none
    std::string status_;  // how the last child ended
};

/// "exited with code N" / "killed by signal N (SIGNAME)" for a wait status.
std::string describe_wait_status(int status);

/// How a function run in a child process ended.
struct IsolatedResult {
    enum class End : std::uint8_t { Returned, Crashed, TimedOut };
    End end = End::Returned;
    std::string output;  // what the function returned (Returned)
    std::string status;  // "killed by signal 6 (SIGABRT)", "timed out after 1000 ms", ...
};

/// Runs `fn` in a forked child and returns its result string, or how the
/// child crashed, or TimedOut (child killed) after `timeout`. The child never
/// returns into the caller's code: it exits with _exit(). Call it from a
/// single-threaded point of the program (fork copies one thread).
IsolatedResult run_isolated(const std::function<std::string()>& fn, std::chrono::milliseconds timeout);

}  // namespace coreio::replayer
