// The message a reproducer's header carries ("coreio.finding.message") must
// describe what replaying that reproducer shows, not the step of the original,
// unminimised exec. These replay the written reproducer once and rewrite it
// with the divergence it really shows (record numbers of the reproducer file).
#pragma once

#include <chrono>
#include <string>

#include "coreio/replayer/device.hpp"
#include "coreio/replayer/fuzz.hpp"

namespace coreio::replayer {

/// Replays f.reproducer against a fresh in-process device (in a forked child)
/// and, when it shows the finding's signature, makes f.divergence what it
/// showed and writes the reproducer again. Returns "" or an error.
std::string describe_minimised_in_process(Finding& f, const DeviceFactory& factory, std::uint64_t seed,
                                          const Assertions& assertions, std::chrono::milliseconds timeout);
/// The same against a device process started from `command`.
std::string describe_minimised_tcp(Finding& f, const std::string& command, std::uint64_t seed,
                                   const Assertions& assertions, std::chrono::milliseconds timeout);

}  // namespace coreio::replayer
