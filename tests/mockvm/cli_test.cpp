// coreio-mockvm command-line parsing and errors.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "coreio/mockvm/parse.hpp"

using coreio::mockvm::cli::Options;

namespace {

struct Parsed {
    std::optional<Options> options;
    int code = -1;
    std::string out, err;
};

Parsed parse(std::vector<std::string> args) {
    args.insert(args.begin(), "coreio-mockvm");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out, err;
    Parsed p;
    p.options = coreio::mockvm::cli::parse(static_cast<int>(argv.size()), argv.data(), out, err, p.code);
    p.out = out.str();
    p.err = err.str();
    return p;
}

int run(std::vector<std::string> args, std::string& out, std::string& err) {
    args.insert(args.begin(), "coreio-mockvm");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    std::ostringstream o, e;
    const int rc = coreio::mockvm::cli::run(static_cast<int>(argv.size()), argv.data(), o, e);
    out = o.str();
    err = e.str();
    return rc;
}

TEST(Cli, DefaultsAreDocumented) {
    const auto p = parse({});
    ASSERT_TRUE(p.options) << p.err;
    EXPECT_EQ(p.options->mode, Options::Mode::Demo);
    EXPECT_EQ(p.options->config.listen, "127.0.0.1");
    EXPECT_EQ(p.options->config.port, 4800);
    ASSERT_EQ(p.options->config.ranges.size(), 1u);
    EXPECT_EQ(p.options->config.ranges[0].base, 0xfef00000u);
    EXPECT_EQ(p.options->config.ranges[0].size, 0x1000u);
    ASSERT_EQ(p.options->config.memory.size(), 1u);
    EXPECT_EQ(p.options->config.memory[0].base, 0x80000000u);
    EXPECT_EQ(p.options->config.memory[0].size, 16u << 20);
}

TEST(Cli, RangesMemoryAndModes) {
    const auto p = parse({"--port", "0", "--range", "0xfef00000:0x1000", "--range", "0x10000000:64K", "--memory",
                          "0x80000000:16M", "--memory", "0x1:1G", "--timeout-ms", "250", "--verbose", "--script",
                          "x.txt", "--wait-ms", "0"});
    ASSERT_TRUE(p.options) << p.err;
    const auto& o = *p.options;
    EXPECT_EQ(o.mode, Options::Mode::Script);
    EXPECT_EQ(o.script, "x.txt");
    EXPECT_EQ(o.config.port, 0);
    ASSERT_EQ(o.config.ranges.size(), 2u);
    EXPECT_EQ(o.config.ranges[1].base, 0x10000000u);
    EXPECT_EQ(o.config.ranges[1].size, 64u << 10);
    ASSERT_EQ(o.config.memory.size(), 2u);
    EXPECT_EQ(o.config.memory[1].size, 1ull << 30);
    EXPECT_EQ(o.config.timeout.count(), 250);
    EXPECT_TRUE(o.config.verbose);
    EXPECT_EQ(o.wait_ms, 0u);
    EXPECT_EQ(parse({"--serve"}).options->mode, Options::Mode::Serve);
    // Each default applies on its own.
    const auto mem_only = parse({"--memory", "0x0:4k"});
    ASSERT_TRUE(mem_only.options);
    EXPECT_EQ(mem_only.options->config.ranges.size(), 1u);
    EXPECT_EQ(mem_only.options->config.memory.size(), 1u);
    EXPECT_EQ(mem_only.options->config.memory[0].size, 4096u);
    const auto range_only = parse({"--range", "0x10000:4K"});
    ASSERT_TRUE(range_only.options);
    EXPECT_EQ(range_only.options->config.ranges[0].base, 0x10000u);
    EXPECT_EQ(range_only.options->config.memory[0].base, 0x80000000u);
}

TEST(Cli, BadArgumentsGiveClearErrors) {
    struct Case {
        std::vector<std::string> args;
        const char* message;
    };
    const Case cases[] = {
        {{"--range", "0xfef00000"}, "expected BASE:SIZE"},
        {{"--range", "0xfef00000:"}, "not a size: ''"},
        {{"--range", "0xfef00000:12Q"}, "not a size: '12Q'"},
        {{"--range", "fef00000:0x1000"}, "not a number: 'fef00000' (hex needs 0x)"},
        {{"--range", "0x1000:0"}, "size is 0"},
        {{"--memory", "0x80000000:99999999999G"}, "size too large"},
        {{"--port", "70000"}, "--port"},
        {{"--port", "http"}, "--port"},
        {{"--frobnicate"}, "frobnicate"},
        {{"--serve", "--script", "a.txt"}, "excludes"},
        {{"--timeout-ms", "0"}, "--timeout-ms"},
    };
    for (const auto& c : cases) {
        const auto p = parse(c.args);
        EXPECT_FALSE(p.options) << c.args[0];
        EXPECT_EQ(p.code, 2) << c.args[0];
        EXPECT_NE(p.err.find(c.message), std::string::npos) << "for " << c.args[0] << " " << c.args.back() << ": " << p.err;
    }
}

TEST(Cli, HelpExitsZero) {
    const auto p = parse({"--help"});
    EXPECT_FALSE(p.options);
    EXPECT_EQ(p.code, 0);
    EXPECT_NE(p.out.find("--range"), std::string::npos);
}

TEST(Cli, RunReportsConfigAndScriptErrors) {
    std::string out, err;
    EXPECT_EQ(run({"--port", "0", "--range", "0xfef00800:0x1000"}, out, err), 2);
    EXPECT_NE(err.find("range 0 (0xfef00800:0x1000): base must be 4 KiB aligned"), std::string::npos) << err;
    EXPECT_EQ(run({"--port", "0", "--listen", "1.2.3"}, out, err), 2);
    EXPECT_NE(err.find("bad listen address '1.2.3'"), std::string::npos) << err;
    EXPECT_EQ(run({"--port", "0", "--script", "/nonexistent/s.txt"}, out, err), 2);
    EXPECT_NE(err.find("/nonexistent/s.txt: cannot open"), std::string::npos) << err;

    const std::string path = ::testing::TempDir() + "cli_bad_script.txt";
    std::ofstream(path) << "ping\nreadl\n";
    EXPECT_EQ(run({"--port", "0", "--script", path}, out, err), 2);
    EXPECT_NE(err.find(path + ":2: readl takes ADDR"), std::string::npos) << err;
}

TEST(Cli, NoClientWithinTheWaitFails) {
    std::string out, err;
    EXPECT_EQ(run({"--port", "0", "--wait-ms", "50"}, out, err), 1);
    EXPECT_EQ(out.rfind("listening on 127.0.0.1:", 0), 0u) << out;
    EXPECT_NE(err.find("no client claimed range 0 within 50 ms"), std::string::npos) << err;
}

// --record creates its file only once the VM listens: a run that cannot listen
// leaves an existing trace as it was (and no temporary file next to it).
TEST(Cli, RecordDoesNotClobberAnExistingFileWhenListenFails) {
    const int busy = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(busy, 1), 0);
    socklen_t len = sizeof a;
    ::getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string dir = ::testing::TempDir() + "cli_record_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);  // left by a dead process with the same id
    std::filesystem::create_directory(dir);
    const std::string path = dir + "/keep.ctrace";
    std::ofstream(path) << "an earlier recording";
    std::string out, err;
    EXPECT_EQ(run({"--port", std::to_string(ntohs(a.sin_port)), "--wait-ms", "50", "--record", path}, out, err), 2);
    EXPECT_NE(err.find("listen"), std::string::npos) << err;
    std::ifstream in(path);
    std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(kept, "an earlier recording");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator{}), 1);
    ::close(busy);
    // Listening works: the recording replaces the file.
    EXPECT_EQ(run({"--port", "0", "--wait-ms", "50", "--record", path}, out, err), 1);  // no client came
    EXPECT_GT(std::filesystem::file_size(path), 20u);
    EXPECT_NE(std::filesystem::file_size(path), std::string("an earlier recording").size());
    std::filesystem::remove_all(dir);
}

}  // namespace
