#include "coreio/cli/conventions.hpp"

#include <cstring>
#include <iostream>

#include "coreio/net/host_port.hpp"

namespace coreio::cli {

std::string_view version() { return COREIO_VERSION; }

void add_version(CLI::App& app, std::string_view tool) {
    app.set_version_flag("--version", std::string(tool) + " " + std::string(version()), "print the version and exit");
}

int exit_code_for(const CLI::App& app, const CLI::ParseError& e, std::ostream& out, std::ostream& err) {
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
}

std::optional<int> parse(CLI::App& app, int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return exit_code_for(app, e, out, err);
    }
    return std::nullopt;
}

std::optional<int> parse(CLI::App& app, int argc, const char* const* argv) {
    return parse(app, argc, argv, std::cout, std::cerr);
}

std::string endpoint(std::string_view host, std::uint16_t port) { return net::HostPort{std::string(host), port}.to_string(); }

std::string listen_error(std::string_view endpoint, int errno_value) {
    return "cannot listen on " + std::string(endpoint) + ": " + std::strerror(errno_value);
}

}  // namespace coreio::cli
