// parse_host_port(): every form a target or listen address takes, and the
// error text for each way it can be wrong.
#include <gtest/gtest.h>

#include "coreio/net/host_port.hpp"

using namespace coreio::net;

namespace {
HostPort ok(std::string_view text, const HostPortRules& rules = {}) {
    HostPort hp;
    const std::string e = parse_host_port(text, hp, rules);
    EXPECT_EQ(e, "") << text;
    return hp;
}
std::string err(std::string_view text, const HostPortRules& rules = {}) {
    HostPort hp;
    return parse_host_port(text, hp, rules);
}
}  // namespace

TEST(HostPort, DefaultPortIsTheProtocols) { EXPECT_EQ(kDefaultPort, 4800); }

TEST(HostPort, AcceptsEveryForm) {
    EXPECT_EQ(ok("127.0.0.1:4801").host, "127.0.0.1");
    EXPECT_EQ(ok("127.0.0.1:4801").port, 4801);
    EXPECT_EQ(ok("127.0.0.1").port, 4800);
    EXPECT_EQ(ok("vm.example").host, "vm.example");
    EXPECT_EQ(ok("vm.example:1").port, 1);
    EXPECT_EQ(ok("[::1]:65535").host, "::1");
    EXPECT_EQ(ok("[::1]:65535").port, 65535);
    EXPECT_EQ(ok("[fe80::1]").port, 4800);
    EXPECT_EQ(ok("::1").host, "::1");  // bare IPv6: no room for a port
    EXPECT_EQ(ok("::1").port, 4800);
    EXPECT_EQ(ok("127.0.0.1:0", {.default_port = std::nullopt, .allow_port_zero = true}).port, 0);
    EXPECT_EQ(ok("localhost", {.default_port = 7, .allow_port_zero = false}).port, 7);
}

TEST(HostPort, RejectsWithAMessageNamingTheProblem) {
    EXPECT_EQ(err(""), "empty address (expected host[:port])");
    EXPECT_EQ(err(":80"), "no host in ':80'");
    EXPECT_EQ(err("[]:80"), "no host in '[]:80'");
    EXPECT_EQ(err("127.0.0.1:"), "port '' is not a number from 1 to 65535 in '127.0.0.1:'");
    EXPECT_EQ(err("127.0.0.1:99999"), "port '99999' is not a number from 1 to 65535 in '127.0.0.1:99999'");
    EXPECT_EQ(err("127.0.0.1:12x"), "port '12x' is not a number from 1 to 65535 in '127.0.0.1:12x'");
    EXPECT_EQ(err("127.0.0.1:-1"), "port '-1' is not a number from 1 to 65535 in '127.0.0.1:-1'");
    EXPECT_EQ(err("127.0.0.1:0"), "port '0' is not a number from 1 to 65535 in '127.0.0.1:0'");
    EXPECT_EQ(err("[::1"), "missing ']' after the IPv6 address in '[::1'");
    EXPECT_EQ(err("[::1]80"), "expected ':' after ']' in '[::1]80'");
    EXPECT_EQ(err("127.0.0.1", {.default_port = std::nullopt, .allow_port_zero = false}),
              "no port in '127.0.0.1' (expected host:port)");
    EXPECT_EQ(err("h:70000", {.default_port = std::nullopt, .allow_port_zero = true}),
              "port '70000' is not a number from 0 to 65535 in 'h:70000'");
}

TEST(HostPort, LeavesTheOutputAloneOnError) {
    HostPort hp{"keep", 9};
    EXPECT_NE(parse_host_port("x:bad", hp), "");
    EXPECT_EQ(hp.host, "keep");
    EXPECT_EQ(hp.port, 9);
}

TEST(HostPort, PrintsIpv6WithBrackets) {
    EXPECT_EQ((HostPort{"::1", 4800}).to_string(), "[::1]:4800");
    EXPECT_EQ((HostPort{"127.0.0.1", 1}).to_string(), "127.0.0.1:1");
    EXPECT_EQ((HostPort{"[::1]", 4800}).to_string(), "[::1]:4800");  // already bracketed: kept
    EXPECT_EQ(ok(ok("[::1]:5").to_string()).port, 5);  // round trip
}
