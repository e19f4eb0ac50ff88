// coreio-trace's outputs: write errors (a full device, a file size limit,
// stdout) give one message and exit 2; an output is never one of the inputs,
// and an existing output is only replaced by a complete new one.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "../trace/test_util.hpp"

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
std::string fresh_dir() {
    const std::string d = temp_path("dir");
    EXPECT_EQ(::mkdir(d.c_str(), 0755), 0);
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

// A file size limit hit mid-file (SIGXFSZ ignored, so write() fails with EFBIG).
TEST(TraceOutput, FileSizeLimitMidFileFails) {
    const std::string dir = fresh_dir();
    std::string inputs;
    for (int i = 0; i < 8; ++i) inputs += " " + kGolden;  // ~ 5 KiB of records
    for (const std::string& cmd : {"cat" + inputs + " -o " + dir + "/cat.ctrace",
                                  "export " + kGolden + " --perfetto " + dir + "/p.json"}) {
        Outcome r = shell("trap \"\" XFSZ; ulimit -f 2; exec " + kTool + " " + cmd);  // 1 or 2 KiB, by shell
        EXPECT_EQ(r.code, 2) << cmd;
        EXPECT_TRUE(contains(r.err, "File too large")) << cmd << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one message
    }
    EXPECT_TRUE(entries(dir).empty());  // nothing half-written left behind
}
