// Loading the trace a `coreio-replay` subcommand replays, refusing one that
// would make the check pass while checking nothing.
#pragma once

#include <cstdint>
#include <string>

#include "coreio/replayer/scenario.hpp"

namespace coreio::replayer {

/// Loads device model `client` of the trace at `path` into `out`. Returns ""
/// or an error naming the file and why: it cannot be read, it holds no records
/// (empty, or cut right after its header), it has no client `client`, or that
/// client has no step to replay. With `allow_empty` the last three are accepted.
std::string load_replay_input(const std::string& path, std::uint32_t client, bool allow_empty, Scenario& out);

}  // namespace coreio::replayer
