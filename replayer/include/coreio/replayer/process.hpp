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
/// the VM's "host:port" (the example executables connect there).
///
/// Nothing it starts outlives it: the command runs in a process group of its
/// own, led by a small supervisor process (forked from this one) that waits for
/// the command and passes its wait status on through a pipe, then stays until
/// the group is killed (so the group id stays valid). The whole group (the command and
/// every process it forked, unless one moved to another group or session) is
/// SIGKILLed
///   - by kill(), on destruction, and when the command ends by itself
///     (running()/wait() reap it): helpers it left behind go too;
///   - by the supervisor when the thread that called start() ends, however it
///     ends (PR_SET_PDEATHSIG: a crash, SIGKILL or the OOM killer included);
///   - by kill_device_groups() (async-signal-safe), which the handler of
///     kill_device_groups_on_signals() calls on SIGINT/SIGTERM/SIGHUP before
///     the program ends as that signal would.
class DeviceProcess {
public:
    /// Where the command's stdout and stderr go.
    enum class Output : std::uint8_t { Inherit, Discard };

    DeviceProcess() = default;
    explicit DeviceProcess(Output output) : output_(output) {}
    ~DeviceProcess();
    DeviceProcess(const DeviceProcess&) = delete;
    DeviceProcess& operator=(const DeviceProcess&) = delete;

    /// Starts `command` with COREHDL_VM=`target`. Returns 0 or a negative errno.
    int start(const std::string& command, const std::string& target);
    /// True while started and not yet reaped.
    bool running();
    /// Waits up to `timeout` for it to exit; returns how it ended ("" while running).
    std::string wait(std::chrono::milliseconds timeout);
    /// SIGKILL to the whole group and reap; returns how it ended.
    std::string kill();
    /// Process id of the group's leader (the supervisor), 0 when none.
    int pid() const { return pid_; }
    /// Becomes readable when the command ends (for poll() beside other fds);
    /// -1 when none is running or its end was already read.
    int ended_fd() const { return status_fd_; }

    /// The output of every DeviceProcess constructed without one (default:
    /// Inherit). Tools that start many devices (the fuzzer) set Discard.
    static void set_default_output(Output output);

private:
    /// Reads the command's status when the supervisor sent it (waiting up to
    /// wait_ms); true once the command has ended.
    bool poll_status(int wait_ms);
    /// Kills the group and reaps the supervisor (which never ends on its own,
    /// so its process group id cannot have been reused).
    void end_group();

    int pid_ = 0;         // supervisor (= process group id), 0 when none
    int status_fd_ = -1;  // read end of the status pipe, -1 once read
    std::string status_;  // how the last child ended
    Output output_ = default_output();
    static Output default_output();
};

/// SIGKILLs every device process group still running. Async-signal-safe.
void kill_device_groups() noexcept;

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that kill every device
/// process group, then end the program with that signal (exit status 128+N).
void kill_device_groups_on_signals();

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
/// returns into the caller's code: it exits with _exit(), and it dies with the
/// calling thread (PR_SET_PDEATHSIG). Call it from a single-threaded point of
/// the program (fork copies one thread).
IsolatedResult run_isolated(const std::function<std::string()>& fn, std::chrono::milliseconds timeout);

}  // namespace coreio::replayer
