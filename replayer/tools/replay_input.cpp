#include "replay_input.hpp"

#include <algorithm>

namespace coreio::replayer {

std::string load_replay_input(const std::string& path, std::uint32_t client, bool allow_empty, Scenario& out) {
    if (std::string err = load_scenario(path, out, client); !err.empty()) return err;
    if (allow_empty || !out.steps.empty()) return "";
    const std::string why = " (--allow-empty to replay it anyway)";
    if (out.records == 0)
        return path + ": nothing to replay: the trace holds no records (empty, or cut after its header)" + why;
    if (std::find(out.clients.begin(), out.clients.end(), client) == out.clients.end()) {
        std::string known;
        for (const std::uint32_t c : out.clients) known += (known.empty() ? "" : ", ") + std::to_string(c);
        return path + ": nothing to replay: no client " + std::to_string(client) + " in the trace (its clients: " +
               known + ")" + why;
    }
    return path + ": nothing to replay: client " + std::to_string(client) + " has no request to replay" + why;
}

}  // namespace coreio::replayer
