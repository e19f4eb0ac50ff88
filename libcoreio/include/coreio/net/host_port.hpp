// Host and port of a CoreIO endpoint: the one parser of "host[:port]" text
// and the protocol's default port, used by every end (client, VM, proxy,
// replayer, tools).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace coreio::net {

/// The port a target without ":port" means (PROTOCOL.md, "Transport").
inline constexpr std::uint16_t kDefaultPort = 4800;

struct HostPort {
    std::string host;  ///< name or address, without brackets
    std::uint16_t port = kDefaultPort;

    /// "host:port", or "[v6]:port" when the host contains ':' (the one
    /// formatter of endpoints: cli::endpoint() and mockvm's Vm::endpoint() use it).
    std::string to_string() const;
};

/// What parse_host_port() accepts besides the address itself.
struct HostPortRules {
    /// Port used when the text has none; nullopt: a port is required.
    std::optional<std::uint16_t> default_port = kDefaultPort;
    /// Accept port 0 ("any free port", for listening).
    bool allow_port_zero = false;
};

/// Parses "host", "host:port", "[v6addr]", "[v6addr]:port" or a bare IPv6
/// address ("::1", which has no room for a port). The host may be a name.
/// Returns an empty string on success, else a message naming what is wrong
/// (e.g. "port '99999' is not a number from 1 to 65535 in '127.0.0.1:99999'").
std::string parse_host_port(std::string_view text, HostPort& out, const HostPortRules& rules = {});

}  // namespace coreio::net
