// Every coreio executable, run as a process, follows the same conventions:
// --version prints the project version, a bad command line exits 2 (never
// CLI11's own 106/109/...), and a server that cannot listen says so the same way.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child_process.hpp"
#include "coreio/cli/conventions.hpp"

using namespace coreio::testing;

namespace {

struct Tool {
    std::string name, path;
};

std::vector<Tool> tools() {
    std::vector<Tool> t = {{"coreio-mockvm", COREIO_MOCKVM_BIN}, {"coreio-record", COREIO_RECORD_BIN},
                           {"coreio-trace", COREIO_TRACE_BIN},   {"coreio-replay", COREIO_REPLAY_BIN},
                           {"coreio-fuzz", COREIO_FUZZ_BIN}};
#ifdef COREIO_COSIM_BINS
    std::string list = COREIO_COSIM_BINS;  // ';'-separated paths
    for (std::size_t pos = 0; pos < list.size();) {
        std::size_t end = list.find(';', pos);
        if (end == std::string::npos) end = list.size();
        const std::string path = list.substr(pos, end - pos);
        t.push_back({path.substr(path.rfind('/') + 1), path});
        pos = end + 1;
    }
#endif
    return t;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(CliConventions, EveryToolPrintsTheProjectVersion) {
    for (const Tool& t : tools()) {
        const ProcessOutcome r = run_process({t.path, "--version"});
        EXPECT_EQ(r.code, 0) << t.name << ": " << r.out;
        EXPECT_TRUE(contains(r.out, t.name + " " + COREIO_PROJECT_VERSION)) << t.name << ": " << r.out;
    }
}

TEST(CliConventions, AnUnknownOptionExitsWithTwo) {
    for (const Tool& t : tools()) {
        const ProcessOutcome r = run_process({t.path, "--no-such-option"});
        EXPECT_EQ(r.code, 2) << t.name << ": " << r.out;  // CLI11 says 109 (or 106 when a required one is missing)
    }
}

TEST(CliConventions, AMissingRequiredArgumentOrBadValueExitsWithTwo) {
    const std::vector<std::vector<std::string>> cases = {
        {COREIO_RECORD_BIN, "--target", "127.0.0.1:1"},                 // RequiredError (106)
        {COREIO_TRACE_BIN, "dump"},                                     // RequiredError
        {COREIO_REPLAY_BIN},                                            // a subcommand is required
        {COREIO_REPLAY_BIN, "device"},                                  // the trace is required
        {COREIO_REPLAY_BIN, "device", "t.ctrace", "--timeout", "soon"}, // ConversionError
        {COREIO_FUZZ_BIN, "--execs", "many"},
        {COREIO_MOCKVM_BIN, "--port", "70000"},                         // ValidationError
        {COREIO_MOCKVM_BIN, "extra-positional"},                        // ExtrasError (109)
    };
    for (const auto& argv : cases) {
        const ProcessOutcome r = run_process(argv);
        EXPECT_EQ(r.code, 2) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.out;
    }
#ifdef COREIO_COSIM_BINS
    for (const Tool& t : tools()) {
        if (!t.name.starts_with("coreio-cosim-")) continue;
        const ProcessOutcome r = run_process({t.path});  // the target is required
        EXPECT_EQ(r.code, 2) << t.name << ": " << r.out;
    }
#endif
}

TEST(CliConventions, HelpExitsWithZero) {
    for (const Tool& t : tools()) {
        const ProcessOutcome r = run_process({t.path, "--help"});
        EXPECT_EQ(r.code, 0) << t.name << ": " << r.out;
    }
}

// A port on 127.0.0.1 held by this test, so a server cannot listen there.
class BusyPort {
public:
    BusyPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd_, 1) != 0) return;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
        port_ = ntohs(sa.sin_port);
    }
    ~BusyPort() { ::close(fd_); }
    std::string port() const { return std::to_string(port_); }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

TEST(CliConventions, TheThreeServersFailTheSameWayWhenTheyCannotListen) {
    BusyPort busy;
    ASSERT_NE(busy.port(), "0");
    const std::string expected = "cannot listen on 127.0.0.1:" + busy.port() + ": Address already in use";
    const std::string trace = std::string(COREIO_GOLDEN_DIR) + "/v1-basic.ctrace";
    const std::string out = std::string(::testing::TempDir()) + "cli-listen-" + std::to_string(::getpid()) + ".ctrace";
    const std::vector<std::pair<std::string, std::vector<std::string>>> servers = {
        {"coreio-mockvm", {COREIO_MOCKVM_BIN, "--listen", "127.0.0.1", "--port", busy.port(), "--serve"}},
        {"coreio-record", {COREIO_RECORD_BIN, "--listen", "127.0.0.1:" + busy.port(), "--target", "127.0.0.1:1", "-o", out}},
        {"coreio-replay", {COREIO_REPLAY_BIN, "device", trace, "--listen", "127.0.0.1", "--port", busy.port()}},
    };
    for (const auto& [name, argv] : servers) {
        const ProcessOutcome r = run_process(argv, std::chrono::seconds(30));
        EXPECT_EQ(r.code, 2) << name << ": " << r.out;
        EXPECT_TRUE(contains(r.out, name + ": " + expected + "\n")) << name << ": " << r.out;
    }
    ::unlink(out.c_str());
}

}  // namespace

namespace {

TEST(CliConventions, EndpointsPutIPv6AddressesInBrackets) {
    EXPECT_EQ(coreio::cli::endpoint("::1", 4800), "[::1]:4800");
    EXPECT_EQ(coreio::cli::endpoint("fe80::1%eth0", 1), "[fe80::1%eth0]:1");
    EXPECT_EQ(coreio::cli::endpoint("[::1]", 4800), "[::1]:4800");
    EXPECT_EQ(coreio::cli::endpoint("127.0.0.1", 4800), "127.0.0.1:4800");
    EXPECT_EQ(coreio::cli::listen_error(coreio::cli::endpoint("::1", 4800), EADDRINUSE),
              "cannot listen on [::1]:4800: Address already in use");
}

}  // namespace
