#include "coreio/net/host_port.hpp"

#include <charconv>

namespace coreio::net {

namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

/// Splits the text into host and port parts; `has_port` says a ':' introduced one.
std::string split(std::string_view text, std::string_view& host, std::string_view& port, bool& has_port) {
    has_port = false;
    host = text;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return "missing ']' after the IPv6 address in " + quoted(text);
        host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty()) return {};
        if (rest.front() != ':') return "expected ':' after ']' in " + quoted(text);
        port = rest.substr(1);
        has_port = true;
        return {};
    }
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) return {};
    if (text.find(':', colon + 1) != std::string_view::npos) return {};  // bare IPv6: no port
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    has_port = true;
    return {};
}

}  // namespace

std::string HostPort::to_string() const {
    // A host already in brackets ("[::1]", as a command line may give it) is kept.
    const bool bracket = host.find(':') != std::string::npos && !host.starts_with('[');
    return (bracket ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string parse_host_port(std::string_view text, HostPort& out, const HostPortRules& rules) {
    if (text.empty()) return "empty address (expected host[:port])";
    std::string_view host, port;
    bool has_port = false;
    if (std::string e = split(text, host, port, has_port); !e.empty()) return e;
    if (host.empty()) return "no host in " + quoted(text);
    std::uint16_t value = 0;
    if (has_port) {
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        const unsigned low = rules.allow_port_zero ? 0 : 1;
        if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || v < low || v > 65535)
            return "port " + quoted(port) + " is not a number from " + std::to_string(low) + " to 65535 in " +
                   quoted(text);
        value = static_cast<std::uint16_t>(v);
    } else if (rules.default_port) {
        value = *rules.default_port;
    } else {
        return "no port in " + quoted(text) + " (expected host:port)";
    }
    out.host.assign(host);
    out.port = value;
    return {};
}

}  // namespace coreio::net
