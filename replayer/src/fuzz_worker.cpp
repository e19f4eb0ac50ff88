// Running in-process execs: in this process, or in forked workers that report
// findings through a pipe, so a crash or a hang of the model is a finding
// and the run goes on in a new worker after it.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coreio/replayer/process.hpp"
#include "coreio/replayer/rules.hpp"
#include "fuzz_corpus.hpp"
#include "fuzz_internal.hpp"

namespace coreio::replayer {

namespace {

/// Counters a forked worker shares with its parent.
struct Shared {
    std::atomic<std::uint64_t> exec{0};   // exec in progress
    std::atomic<std::uint64_t> done{0};   // execs finished (all workers)
    std::atomic<std::uint64_t> steps{0};  // steps finished (all workers)
    std::atomic<std::uint64_t> kept{0};   // guided: execs kept
};

/// Called with each finding whose signature is new (and the exec that showed
/// it); false stops the run.
using FoundFunction = std::function<bool(std::uint64_t exec, const Divergence& d, const Scenario& sc)>;

std::string clean(std::string s) {
    for (char& ch : s)
        if (ch == '\t' || ch == '\n') ch = ' ';
    return s;
}

std::string encode(std::uint64_t exec, const Divergence& d) {
    return "F\t" + std::to_string(exec) + "\t" + std::to_string(d.step) + "\t" + std::to_string(d.record) + "\t" +
           std::to_string(static_cast<int>(d.kind)) + "\t" + clean(d.field) + "\t" + clean(d.expected) + "\t" +
           clean(d.got) + "\t" + clean(d.context) + "\n";
}

bool decode(const std::string& line, std::uint64_t& exec, Divergence& d) {
    std::vector<std::string> f;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t t = line.find('\t', pos);
        f.push_back(line.substr(pos, t == std::string::npos ? std::string::npos : t - pos));
        if (t == std::string::npos) break;
        pos = t + 1;
    }
    if (f.size() != 9 || f[0] != "F") return false;
    std::uint64_t v[4];
    for (int i = 0; i < 4; ++i)
        if (!parse_u64(f[static_cast<std::size_t>(i) + 1], v[i])) return false;
    exec = v[0];
    d.step = v[1];
    d.record = v[2];
    d.kind = static_cast<DivergenceKind>(v[3]);
    d.field = f[5];
    d.expected = f[6];
    d.got = f[7];
    d.context = f[8];
    return true;
}

/// Runs execs [from, to) in this process; calls `found` for each divergence
/// whose signature is new. Returns the number of execs run.
std::uint64_t run_execs(const FuzzConfig& config, const DeviceFactory& factory, const FuzzOptions& o,
                        std::uint64_t from, std::uint64_t to, Clock::time_point deadline, Shared& shared,
                        std::set<std::string> seen, const FoundFunction& found) {
    Scenario sc;
    Guidance guide(o.guided ? o.coverage : Guidance::Reader());
    Assertions a = o.assertions;
    a.reset_check_from_step = 1;  // the opening reset shows the previous exec's state
    Player player(findings_options(a, o.timeout), config.ranges, config.memory);
    auto link = std::make_unique<InProcessLink>(factory, player);
    std::uint64_t e = from;
    for (; e < to; ++e) {
        if ((e & 255) == 0 && o.time_limit.count() > 0 && Clock::now() >= deadline) break;
        shared.exec.store(e, std::memory_order_relaxed);
        player.clear_memory();
        guide.make(config, o.seed, e, sc);
        ReplayReport rep = player.run(sc, *link);
        guide.ran(sc);
        shared.kept.store(guide.kept(), std::memory_order_relaxed);
        shared.done.fetch_add(1, std::memory_order_relaxed);
        shared.steps.fetch_add(sc.steps.size(), std::memory_order_relaxed);
        if (o.progress && !o.fork) o.progress({shared.done.load(std::memory_order_relaxed), seen.size()});
        if (rep.divergences.empty()) {
            guide.passed(sc);
            continue;
        }
        const Divergence& d = rep.divergences[0];
        if (seen.insert(d.signature()).second && !found(e, d, guide.finding(sc))) return e + 1 - from;
        // A fresh device after a finding: later execs should not inherit a broken state.
        link.reset();
        player.new_device();
        guide.new_device();
        link = std::make_unique<InProcessLink>(factory, player);
    }
    return e - from;
}

/// Adds the findings in the complete lines a worker wrote to `buf` (and drops those lines).
void take_findings(std::string& buf, FuzzResult& result, std::set<std::string>& seen, const FuzzOptions& o) {
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
        std::uint64_t e = 0;
        Divergence d;
        if (decode(buf.substr(0, nl), e, d)) add_finding(result, seen, e, d, o);
        buf.erase(0, nl + 1);
    }
}

/// The finding of a worker that died or stopped making progress in exec `e`.
Divergence worker_lost(std::uint64_t e, DivergenceKind kind, std::string field, std::string expected,
                       std::string got) {
    Divergence d;
    d.kind = kind;
    d.field = std::move(field);
    d.step = kNoSeq;
    d.expected = std::move(expected);
    d.got = std::move(got);
    d.context = "exec " + std::to_string(e);
    return d;
}

/// After worker exit status `status`: takes the findings it wrote before it
/// ended; one that did not exit 0 crashed (a finding). Returns the exec to go on at.
std::uint64_t worker_ended(int status, int fd, std::string& buf, const Shared& shared, std::uint64_t end,
                           FuzzResult& result, std::set<std::string>& seen, const FuzzOptions& o) {
    char tmp[4096];
    for (ssize_t n; (n = ::read(fd, tmp, sizeof tmp)) > 0;) buf.append(tmp, static_cast<std::size_t>(n));
    take_findings(buf, result, seen, o);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return end;  // ran to the end (or the time limit)
    const std::uint64_t e = shared.exec;
    add_finding(result, seen, e,
                worker_lost(e, DivergenceKind::Crash, "signal", "the worker to survive", describe_wait_status(status)),
                o);
    ++result.stats.restarts;
    return e + 1;
}

/// Collects the findings of worker `pid` (their lines on `fd`) until it ends,
/// crashes (a finding), stops making progress (a finding; killed), or the
/// findings are enough (killed), and reaps it. Returns the exec to go on at
/// (`end`: the run is over).
std::uint64_t watch_worker(pid_t pid, int fd, Shared& shared, std::uint64_t end, FuzzResult& result,
                           std::set<std::string>& seen, const FuzzOptions& o) {
    std::uint64_t next = end;
    std::string buf;
    std::uint64_t last_done = shared.done;
    auto last_progress = Clock::now();
    bool over = false;
    int status = 0;
    bool reaped = false;
    while (!over) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) {
            char tmp[4096];
            const ssize_t n = ::read(fd, tmp, sizeof tmp);
            if (n > 0) buf.append(tmp, static_cast<std::size_t>(n));
        }
        take_findings(buf, result, seen, o);
        if (result.findings.size() >= o.max_findings) {
            ::kill(pid, SIGKILL);
            over = true;
            next = end;
            break;
        }
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            reaped = true;
            over = true;
            next = worker_ended(status, fd, buf, shared, end, result, seen, o);
            break;
        }
        const std::uint64_t done = shared.done;
        if (o.progress) o.progress({done, result.findings.size()});
        if (done != last_done) {
            last_done = done;
            last_progress = Clock::now();
        } else if (Clock::now() - last_progress > o.timeout) {
            ::kill(pid, SIGKILL);
            const std::uint64_t e = shared.exec;
            add_finding(result, seen, e,
                        worker_lost(e, DivergenceKind::Hang, "timeout",
                                    "an exec within " + std::to_string(o.timeout.count()) + " ms", "no progress"),
                        o);
            ++result.stats.restarts;
            next = e + 1;
            over = true;
        }
    }
    if (!reaped) {
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    return next;
}

}  // namespace

void run_execs_here(FuzzResult& result, std::set<std::string>& seen, const FuzzConfig& config,
                    const DeviceFactory& factory, const FuzzOptions& o, Clock::time_point deadline) {
    const std::uint64_t end = o.first_exec + o.execs;
    Shared shared;
    run_execs(config, factory, o, o.first_exec, end, deadline, shared, {},
              [&](std::uint64_t e, const Divergence& d, const Scenario& sc) {
                  const std::size_t had = result.findings.size();
                  add_finding(result, seen, e, d, o);
                  if (o.guided && result.findings.size() > had) result.findings.back().scenario = sc;
                  return result.findings.size() < o.max_findings;
              });
    result.stats.execs = shared.done;
    result.stats.steps = shared.steps;
    result.stats.kept = shared.kept;
}

void run_execs_forked(FuzzResult& result, std::set<std::string>& seen, const FuzzConfig& config,
                      const DeviceFactory& factory, const FuzzOptions& o, Clock::time_point deadline) {
    const std::uint64_t end = o.first_exec + o.execs;
    void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        result.error = std::string("mmap: ") + std::strerror(errno);
        return;
    }
    Shared* shared = new (mem) Shared;
    std::uint64_t next = o.first_exec;
    while (next < end && result.findings.size() < o.max_findings) {
        if (o.time_limit.count() > 0 && Clock::now() >= deadline) break;
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            result.error = std::string("pipe: ") + std::strerror(errno);
            break;
        }
        shared->exec = next;
        const pid_t pid = ::fork();
        if (pid < 0) {
            result.error = std::string("fork: ") + std::strerror(errno);
            ::close(fds[0]);
            ::close(fds[1]);
            break;
        }
        if (pid == 0) {  // the worker; it dies with this thread
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::close(fds[0]);
            run_execs(config, factory, o, next, end, deadline, *shared, seen,
                      [&](std::uint64_t e, const Divergence& d, const Scenario&) {
                const std::string line = encode(e, d);
                return ::write(fds[1], line.data(), line.size()) == static_cast<ssize_t>(line.size());
            });
            ::_exit(0);
        }
        ::close(fds[1]);
        next = watch_worker(pid, fds[0], *shared, end, result, seen, o);
        ::close(fds[0]);
    }
    result.stats.execs = shared->done;
    result.stats.steps = shared->steps;
    shared->~Shared();
    ::munmap(mem, sizeof(Shared));
}

}  // namespace coreio::replayer
