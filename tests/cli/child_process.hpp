// Runs a program as a child process for the CLI tests: argv (no shell), both
// streams captured, bounded by a timeout (then SIGKILL), signals deliverable.
#pragma once

#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace coreio::testing {

struct ProcessOutcome {
    int code = -1;      // exit code; -1 when killed by a signal or timed out
    int signal = 0;     // the terminating signal, if any
    bool timed_out = false;
    std::string out;    // stdout and stderr, interleaved
};

/// A started child whose output is collected by finish().
class ChildProcess {
public:
    explicit ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) return;
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            ::dup2(fds[1], 2);
            for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        fd_ = fds[0];
    }
    ~ChildProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (fd_ >= 0) ::close(fd_);
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    int pid() const { return pid_; }
    void signal(int sig) const {
        if (pid_ > 0) ::kill(pid_, sig);
    }
    /// Reads output until `needle` appears or the timeout passes; true if it appeared.
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (out_.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) read_some(50);
        return out_.find(needle) != std::string::npos;
    }
    /// Waits for the child to exit (SIGKILL after `timeout`) and returns how it
    /// went. Ends at the child's exit, not at EOF: a process the child left
    /// behind may still hold the output open.
    ProcessOutcome finish(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        ProcessOutcome r;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        int st = 0;
        while (pid_ > 0) {
            const pid_t w = ::waitpid(pid_, &st, WNOHANG);
            if (w == pid_) break;
            if (std::chrono::steady_clock::now() >= deadline) {
                r.timed_out = true;
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &st, 0);
                break;
            }
            read_some(20);
        }
        pid_ = 0;
        while (read_some(0)) {
        }
        r.code = WIFEXITED(st) && !r.timed_out ? WEXITSTATUS(st) : -1;
        r.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        r.out = out_;
        return r;
    }

private:
    // One poll (up to ms) and read; false when nothing was read.
    bool read_some(int ms) {
        if (fd_ < 0) return false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) return false;
        char buf[4096];
        const ssize_t got = ::read(fd_, buf, sizeof buf);
        if (got <= 0) {
            if (got == 0) {
                ::close(fd_);
                fd_ = -1;
            }
            return false;
        }
        out_.append(buf, static_cast<std::size_t>(got));
        return true;
    }

    int pid_ = -1;
    int fd_ = -1;
    std::string out_;
};

/// Runs argv to the end (bounded) and returns its outcome.
inline ProcessOutcome run_process(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    ChildProcess p(argv);
    return p.finish(timeout);
}

}  // namespace coreio::testing
