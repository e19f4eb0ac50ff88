// The example device models the CLIs can run in process (--model NAME), with
// the fuzz configuration that describes them.
#pragma once

#include <string>
#include <vector>

#include "coreio/replayer/fuzz.hpp"

namespace coreio::replayer::tools {

struct Model {
    DeviceFactory factory;  // builds the model on range 0
    FuzzConfig config;      // its range (0x10000000, 4 KiB), registers and guest memory
};

/// Names accepted by --model.
std::vector<std::string> model_names();
/// The model called `name` ("timer", "dmacopy"), with its seeded bug on or off;
/// false when there is no such model.
bool find_model(const std::string& name, bool seeded_bug, Model& out);

}  // namespace coreio::replayer::tools
