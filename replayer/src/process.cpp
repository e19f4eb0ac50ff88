#include "coreio/replayer/process.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace coreio::replayer {

namespace {

// Process groups of running device processes, readable from a signal handler
// (lock-free atomics; 0 = free slot). More devices at once than slots are
// still covered by their supervisors, just not by kill_device_groups().
std::array<std::atomic<int>, 64> g_groups{};
std::atomic<DeviceProcess::Output> g_default_output{DeviceProcess::Output::Inherit};

void track_group(int pgid) {
    for (auto& slot : g_groups) {
        int free = 0;
        if (slot.compare_exchange_strong(free, pgid)) return;
    }
}

void untrack_group(int pgid) {
    for (auto& slot : g_groups) {
        int expected = pgid;
        if (slot.compare_exchange_strong(expected, 0)) return;
    }
}

// The signals the supervisor waits for: its child's end, or the order to stop
// (SIGTERM is also what it gets when the parent dies).
sigset_t supervisor_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
    return set;
}

// The supervisor's end of the status pipe (see supervise()).
constexpr int kStatusFd = 3;

// The supervisor, in the forked child: leads a new process group, starts the
// command in it, sends the command's wait status down the status pipe when it
// ends, and stays until it is killed with its group: by the parent, or by
// itself when the parent dies. It never ends on its own, so the group id stays
// valid (and the group killable) until the parent reaps it. Only
// async-signal-safe calls (the parent may have threads); everything it needs
// was prepared before fork().
[[noreturn]] void supervise(char* const* argv, char* const* envp, pid_t parent, int devnull, int status_fd) {
    // A new group first: from here on a group kill reaches everything started below.
    ::setpgid(0, 0);
    for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) ::signal(s, SIG_DFL);
    if (devnull >= 0) {
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
    }
    // The status pipe on fd 3 (closed in the command by exec), and no other
    // copies of the parent's descriptors (its sockets would stay open in here).
    if (status_fd != kStatusFd) ::dup2(status_fd, kStatusFd);
    ::fcntl(kStatusFd, F_SETFD, FD_CLOEXEC);
    if (::close_range(kStatusFd + 1, ~0u, 0) != 0)
        for (int fd = kStatusFd + 1; fd < 1024; ++fd) ::close(fd);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent is already gone: start nothing
    const pid_t device = ::fork();
    if (device < 0) ::_exit(127);
    if (device == 0) {
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execve("/bin/sh", argv, envp);
        ::_exit(127);
    }
    const sigset_t wanted = supervisor_signals();
    for (;;) {
        const int sig = ::sigwaitinfo(&wanted, nullptr);
        if (sig == SIGCHLD) {
            int st = 0;
            if (::waitpid(device, &st, WNOHANG) == device) {
                while (::write(kStatusFd, &st, sizeof st) < 0 && errno == EINTR) {
                }
            }
        } else if (sig > 0) {
            ::kill(0, SIGKILL);  // the whole group, this process included
            ::_exit(128 + SIGKILL);
        }
    }
}

}  // namespace

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = sigabbrev_np(sig);
        return "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
    }
    return "ended with status " + std::to_string(status);
}

void DeviceProcess::set_default_output(Output output) { g_default_output.store(output); }
DeviceProcess::Output DeviceProcess::default_output() { return g_default_output.load(); }

DeviceProcess::~DeviceProcess() {
    if (pid_ > 0) kill();
}

int DeviceProcess::start(const std::string& command, const std::string& target) {
    if (pid_ > 0) kill();
    status_.clear();
    // Built before fork(): the children only make async-signal-safe calls.
    const std::string vm = "COREHDL_VM=" + target;
    std::vector<char*> envp;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e)
        if (std::strncmp(*e, "COREHDL_VM=", 11) != 0) envp.push_back(*e);
    envp.push_back(const_cast<char*>(vm.c_str()));
    envp.push_back(nullptr);
    const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
    int status_pipe[2];
    if (::pipe2(status_pipe, O_CLOEXEC) != 0) return -errno;
    const int devnull = output_ == Output::Discard ? ::open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
    // Blocked across fork() so no handler of ours runs in the supervisor; it waits for them.
    const sigset_t blocked = supervisor_signals();
    sigset_t old;
    ::pthread_sigmask(SIG_BLOCK, &blocked, &old);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) supervise(const_cast<char* const*>(argv), envp.data(), parent, devnull, status_pipe[1]);
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (devnull >= 0) ::close(devnull);
    ::close(status_pipe[1]);
    if (pid < 0) {
        ::close(status_pipe[0]);
        return -fork_errno;
    }
    status_fd_ = status_pipe[0];
    ::setpgid(pid, pid);  // also here, so the group exists before start() returns
    pid_ = pid;
    track_group(pid);
    return 0;
}

bool DeviceProcess::poll_status(int wait_ms) {
    if (status_fd_ < 0) return true;
    pollfd p{status_fd_, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0) return false;
    int st = 0;
    const ssize_t n = ::read(status_fd_, &st, sizeof st);
    if (n < 0 && errno == EINTR) return false;
    // The command's status, or EOF: the supervisor itself is gone (killed from outside).
    status_ = n == static_cast<ssize_t>(sizeof st) ? describe_wait_status(st) : "ended with its supervisor";
    ::close(status_fd_);
    status_fd_ = -1;
    return true;
}

void DeviceProcess::end_group() {
    ::kill(-pid_, SIGKILL);  // the supervisor is not reaped yet: the group id is still ours
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    if (status_fd_ >= 0) {  // killed while the command ran
        ::close(status_fd_);
        status_fd_ = -1;
        status_ = "killed by signal 9 (SIGKILL)";
    }
    untrack_group(pid_);
    pid_ = 0;
}

bool DeviceProcess::running() {
    if (pid_ <= 0) return false;
    if (!poll_status(0)) return true;
    end_group();  // the command ended: whatever it left in its group goes too
    return false;
}

std::string DeviceProcess::wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() >= deadline) return "";
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return status_;
}

std::string DeviceProcess::kill() {
    if (pid_ > 0) {
        poll_status(0);  // it may have ended by itself already
        end_group();
    }
    return status_;
}

void kill_device_groups() noexcept {
    for (auto& slot : g_groups)
        if (const int pgid = slot.load(); pgid > 0) ::kill(-pgid, SIGKILL);
}

namespace {
void on_stop_signal(int sig) {
    kill_device_groups();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}
}  // namespace

void kill_device_groups_on_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
}

namespace {

/// The child of run_isolated(): dies with the parent, runs `fn` and writes its result to the pipe.
[[noreturn]] void run_isolated_child(pid_t parent, const int fds[2], const std::function<std::string()>& fn) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::close(fds[0]);
    const std::string out = fn();
    std::size_t off = 0;
    while (off < out.size()) {
        const ssize_t n = ::write(fds[1], out.data() + off, out.size() - off);
        if (n <= 0 && errno != EINTR) break;
        if (n > 0) off += static_cast<std::size_t>(n);
    }
    ::_exit(0);
}

/// Appends what arrives on `fd` to `out` until end of file (or a poll error);
/// false when `deadline` passed first.
bool read_output(int fd, std::chrono::steady_clock::time_point deadline, std::string& out) {
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR) return true;
        if (n <= 0) continue;
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return true;
        out.append(buf, static_cast<std::size_t>(r));
    }
}

}  // namespace

IsolatedResult run_isolated(const std::function<std::string()>& fn, std::chrono::milliseconds timeout) {
    IsolatedResult result;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        result.end = IsolatedResult::End::Crashed;
        result.status = std::string("pipe: ") + std::strerror(errno);
        return result;
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        result.end = IsolatedResult::End::Crashed;
        result.status = std::string("fork: ") + std::strerror(errno);
        return result;
    }
    if (pid == 0) run_isolated_child(parent, fds, fn);
    ::close(fds[1]);
    const bool timed_out = !read_output(fds[0], std::chrono::steady_clock::now() + timeout, result.output);
    ::close(fds[0]);
    if (timed_out) ::kill(pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        result.end = IsolatedResult::End::TimedOut;
        result.status = "timed out after " + std::to_string(timeout.count()) + " ms";
    } else if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        result.end = IsolatedResult::End::Crashed;
        result.status = describe_wait_status(st);
    } else {
        result.status = "returned";
    }
    return result;
}

}  // namespace coreio::replayer
