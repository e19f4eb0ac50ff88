#include "coreio/replayer/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace coreio::replayer {

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = sigabbrev_np(sig);
        return "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
    }
    return "ended with status " + std::to_string(status);
}

DeviceProcess::~DeviceProcess() {
    if (pid_ > 0) kill();
}

int DeviceProcess::start(const std::string& command, const std::string& target) {
    if (pid_ > 0) kill();
    status_.clear();
    const pid_t pid = ::fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        ::setenv("COREHDL_VM", target.c_str(), 1);
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    pid_ = pid;
    return 0;
}

bool DeviceProcess::running() {
    if (pid_ <= 0) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = describe_wait_status(st);
        pid_ = 0;
        return false;
    }
    return true;
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
        ::kill(pid_, SIGKILL);
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        status_ = describe_wait_status(st);
        pid_ = 0;
    }
    return status_;
}

IsolatedResult run_isolated(const std::function<std::string()>& fn, std::chrono::milliseconds timeout) {
    IsolatedResult result;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        result.end = IsolatedResult::End::Crashed;
        result.status = std::string("pipe: ") + std::strerror(errno);
        return result;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        result.end = IsolatedResult::End::Crashed;
        result.status = std::string("fork: ") + std::strerror(errno);
        return result;
    }
    if (pid == 0) {
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
    ::close(fds[1]);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool eof = false, timed_out = false;
    char buf[4096];
    while (!eof) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;
        const ssize_t r = ::read(fds[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) eof = true;
        else result.output.append(buf, static_cast<std::size_t>(r));
    }
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
