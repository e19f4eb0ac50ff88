// Conventions shared by every coreio command-line tool, so they behave alike:
//   --version          prints "TOOL VERSION" (the project version from CMake), exit 0
//   exit status        0 ok, 1 a check failed, 2 usage or input error
//   parse errors       CLI11's own codes (106, 109, ...) become 2; --help is 0
//   "cannot listen"    one message format for every server
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace coreio::cli {

inline constexpr int kExitOk = 0;      // the run succeeded (a check passed)
inline constexpr int kExitFailed = 1;  // a check failed (divergence, failed expectation, finding)
inline constexpr int kExitUsage = 2;   // bad command line or input, or the tool could not run

/// The project version ("0.1.0").
std::string_view version();

/// Adds --version to `app`, printing "TOOL VERSION".
void add_version(CLI::App& app, std::string_view tool);

/// The exit status for a CLI11 parse error, after printing it the way CLI11
/// does (help and --version to `out`, errors to `err`): 0 for help and
/// --version, kExitUsage for everything else.
int exit_code_for(const CLI::App& app, const CLI::ParseError& e, std::ostream& out, std::ostream& err);

/// Parses argv into `app`; nullopt when the tool should go on, else the exit
/// status to return at once (help or --version printed: 0; a bad command line: 2).
std::optional<int> parse(CLI::App& app, int argc, const char* const* argv);
std::optional<int> parse(CLI::App& app, int argc, const char* const* argv, std::ostream& out, std::ostream& err);

/// "HOST:PORT", with an IPv6 host in brackets: "[::1]:4800".
std::string endpoint(std::string_view host, std::uint16_t port);

/// The message every server prints when it cannot listen:
/// "cannot listen on ENDPOINT: ERRNO TEXT".
std::string listen_error(std::string_view endpoint, int errno_value);

}  // namespace coreio::cli
