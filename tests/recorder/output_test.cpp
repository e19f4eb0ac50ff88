// coreio-trace's outputs: write errors (a full device, a file size limit,
// stdout) give one message and exit 2; an output is never one of the inputs,
// and an existing output is only replaced by a complete new one.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "../trace/test_util.hpp"
#include "coreio/frame.hpp"

using namespace trace_test;

namespace {

struct Outcome {
    int code = -1;
    std::string err;
};

// Runs a shell command line; `err` is what it wrote to stderr.
Outcome shell(const std::string& line) {
    const std::string err = temp_path("stderr");
    const std::string cmd = "timeout 60 sh -c '" + line + "' 2>" + err;
    const int st = std::system(cmd.c_str());
    Outcome r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream in(err);
    std::stringstream s;
    s << in.rdbuf();
    r.err = s.str();
    return r;
}

const std::string kTool = COREIO_TRACE_BIN;
const std::string kGolden = std::string(COREIO_GOLDEN_DIR) + "/v2-checksum.ctrace";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A scratch directory of its own, to see what files a command leaves behind.
// Its name holds this process's id: what a dead process of the same id left
// there (ids are reused; CI runs the suite three times) is not ours.
std::string fresh_dir() {
    const std::string d = temp_path("dir");
    std::filesystem::remove_all(d);
    EXPECT_EQ(::mkdir(d.c_str(), 0755), 0) << d << ": " << std::strerror(errno);
    return d;
}
std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.emplace_back(e->d_name);
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}
std::string copy_of(const std::string& from, const std::string& to) {
    const auto b = file_bytes(from);
    std::ofstream(to, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return to;
}

}  // namespace

TEST(TraceOutput, StdoutWriteErrorsFail) {
    for (const char* cmd : {"dump", "dump --json", "stats"}) {
        Outcome r = shell(kTool + " " + cmd + " " + kGolden + " >/dev/full");
        EXPECT_EQ(r.code, 2) << cmd;
        EXPECT_TRUE(contains(r.err, "writing to standard output failed: No space left on device")) << cmd << ": " << r.err;
    }
    EXPECT_EQ(shell(kTool + " dump " + kGolden + " >/dev/null").code, 0);
}

TEST(TraceOutput, ExportNeverOverwritesItsInput) {
    const std::string dir = fresh_dir();
    const std::string t = copy_of(kGolden, dir + "/t.ctrace");
    const auto before = file_bytes(t);
    for (const char* opt : {"--vcd", "--perfetto"}) {
        Outcome r = shell(kTool + " export " + t + " " + opt + " " + t);
        EXPECT_EQ(r.code, 2) << opt;
        EXPECT_TRUE(contains(r.err, "is also an input")) << r.err;
        EXPECT_EQ(file_bytes(t), before);
    }
    // The same file under another name.
    ASSERT_EQ(::symlink(t.c_str(), (dir + "/link").c_str()), 0);
    EXPECT_EQ(shell(kTool + " export " + t + " --vcd " + dir + "/link").code, 2);
    EXPECT_EQ(shell(kTool + " slice " + dir + "/link -o " + t).code, 2);
    EXPECT_EQ(shell(kTool + " cat " + kGolden + " " + t + " -o " + dir + "/link").code, 2);
    EXPECT_EQ(file_bytes(t), before);
    EXPECT_EQ(entries(dir), (std::vector<std::string>{"link", "t.ctrace"}));
}

TEST(TraceOutput, FailedExportLeavesAnExistingOutputAlone) {
    const std::string dir = fresh_dir();
    auto b = file_bytes(kGolden);
    b[b.size() - 5] ^= std::byte{0x40};  // damage the last batch
    const std::string bad = dir + "/bad.ctrace";
    std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    const std::string vcd = dir + "/out.vcd";
    { std::ofstream(vcd) << "previous"; }
    Outcome r = shell(kTool + " export " + bad + " --vcd " + vcd);
    EXPECT_EQ(r.code, 2);
    EXPECT_TRUE(contains(r.err, "checksum mismatch")) << r.err;
    EXPECT_EQ(file_bytes(vcd).size(), 8u);  // "previous"
    Outcome s = shell(kTool + " slice " + bad + " -o " + vcd);
    EXPECT_EQ(s.code, 2);
    EXPECT_EQ(file_bytes(vcd).size(), 8u);
    EXPECT_EQ(entries(dir), (std::vector<std::string>{"bad.ctrace", "out.vcd"}));  // no temporary left
    // A good run replaces it.
    EXPECT_EQ(shell(kTool + " export " + kGolden + " --vcd " + vcd).code, 0);
    EXPECT_GT(file_bytes(vcd).size(), 100u);
}

TEST(TraceOutput, FullDeviceOutputsFail) {
    Outcome e = shell(kTool + " export " + kGolden + " --vcd /dev/full");
    EXPECT_EQ(e.code, 2);
    EXPECT_TRUE(contains(e.err, "writing /dev/full failed: No space left on device")) << e.err;
    for (const char* cmd : {"cat ", "slice "}) {
        Outcome r = shell(kTool + " " + cmd + kGolden + " -o /dev/full");
        EXPECT_EQ(r.code, 2) << cmd;
        EXPECT_TRUE(contains(r.err, "writing /dev/full failed: No space left on device")) << cmd << r.err;
    }
}

// A file size limit hit mid-file (`ulimit -f`, SIGXFSZ at its default action).
TEST(TraceOutput, FileSizeLimitMidFileFails) {
    const std::string dir = fresh_dir();
    std::string inputs;
    for (int i = 0; i < 8; ++i) inputs += " " + kGolden;  // ~ 5 KiB of records
    for (const std::string& cmd : {"cat" + inputs + " -o " + dir + "/cat.ctrace",
                                  "export " + kGolden + " --perfetto " + dir + "/p.json"}) {
        Outcome r = shell("ulimit -f 2; exec " + kTool + " " + cmd);  // 1 or 2 KiB, by shell
        EXPECT_EQ(r.code, 2) << cmd;
        EXPECT_TRUE(contains(r.err, "File too large")) << cmd << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one message
    }
    EXPECT_TRUE(entries(dir).empty());  // nothing half-written left behind
}

namespace {

int tcp_socket(std::uint16_t port, bool listening, std::uint16_t* bound = nullptr) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (listening) {
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd, 4), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        *bound = ntohs(a.sin_port);
    } else {
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    }
    return fd;
}

// Reads what `fd` has until `want` appears in `text` or 10 s pass.
void read_until(int fd, std::string& text, const std::string& want) {
    for (int i = 0; i < 100 && text.find(want) == std::string::npos; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) != 1) continue;
        char buf[512];
        const ssize_t k = ::read(fd, buf, sizeof buf);
        if (k <= 0) break;
        text.append(buf, static_cast<std::size_t>(k));
    }
}

}  // namespace

// coreio-record on a full disk (a file size limit, SIGXFSZ at its default
// action as under `ulimit -f`): one message, exit 2, and the count it prints
// is what the file holds.
TEST(RecordOutput, WriteErrorExitsNonZeroAndCountsWhatTheFileHolds) {
    std::uint16_t vm_port = 0;
    const int vm = tcp_socket(0, true, &vm_port);
    const std::string path = temp_path("record-full");
    int err[2];
    ASSERT_EQ(::pipe(err), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::dup2(err[1], 2);
        std::signal(SIGXFSZ, SIG_DFL);
        rlimit l{8192, 8192};
        ::setrlimit(RLIMIT_FSIZE, &l);
        const std::string target = "127.0.0.1:" + std::to_string(vm_port);
        ::execl(COREIO_RECORD_BIN, COREIO_RECORD_BIN, "--listen", "127.0.0.1:0", "--target", target.c_str(), "-o",
                path.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(err[1]);
    std::string text;
    read_until(err[0], text, "forwarding");
    const auto at = text.find("listening on port ");
    ASSERT_NE(at, std::string::npos) << text;
    const auto port = static_cast<std::uint16_t>(std::stoul(text.substr(at + 18)));
    constexpr int kFrames = 5000;  // ~ 8 bytes of trace each: far past 8 KiB
    {
        const int dev_main = tcp_socket(port, false);
        const int vm_main = ::accept(vm, nullptr, nullptr);
        const int dev_dma = tcp_socket(port, false);
        const int vm_dma = ::accept(vm, nullptr, nullptr);
        ASSERT_GE(vm_main, 0);
        ASSERT_GE(vm_dma, 0);
        timeval tv{10, 0};
        ::setsockopt(vm_main, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::thread drain([&] {
            std::vector<char> buf(1 << 16);
            std::size_t got = 0;
            while (got < kFrames * 64u) {
                const ssize_t k = ::recv(vm_main, buf.data(), buf.size(), 0);
                if (k <= 0) break;
                got += static_cast<std::size_t>(k);
            }
            EXPECT_EQ(got, kFrames * 64u);
        });
        for (int i = 0; i < kFrames; ++i) {
            const coreio::Frame f = coreio::Frame::irq_update(0, 1, i & 1);
            ASSERT_EQ(::send(dev_main, f.data(), 64, MSG_NOSIGNAL), 64);
        }
        drain.join();
        for (int fd : {dev_main, dev_dma, vm_main, vm_dma}) ::close(fd);
    }
    ::kill(pid, SIGINT);
    int status = 0;
    for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!WIFEXITED(status) && !WIFSIGNALED(status)) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL() << "coreio-record did not stop on SIGINT";
    }
    read_until(err[0], text, "records)");
    ::close(err[0]);
    ::close(vm);
    ASSERT_TRUE(WIFEXITED(status)) << text;
    EXPECT_EQ(WEXITSTATUS(status), 2) << text;
    EXPECT_TRUE(contains(text, "File too large")) << text;
    const auto n_at = text.find(" device model(s), ");
    ASSERT_NE(n_at, std::string::npos) << text;
    const auto claimed = std::stoull(text.substr(n_at + 18));
    ReadAll r = read_file(path);
    ASSERT_EQ(r.open_error, "");
    EXPECT_EQ(r.status, coreio::trace::ReadStatus::End) << r.message;
    EXPECT_EQ(r.events.size(), claimed) << text;
    EXPECT_LT(claimed, static_cast<unsigned long long>(kFrames));
}
