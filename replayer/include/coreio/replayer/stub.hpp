// DeviceStub: replay as the device. Connects to a VM (or the mock VM) as a
// CoreIO client, claims the recorded ranges and answers the VM's requests from
// the recording, raising the recorded IRQ changes and issuing the recorded DMA
// at the same places; reports where the VM's requests diverge from the
// recording. Tests a guest driver with no device model at hand.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "coreio/replayer/replay.hpp"
#include "coreio/replayer/scenario.hpp"

namespace coreio::replayer {

struct StubOptions {
    bool keep_going = false;                 // report every divergence
    std::chrono::milliseconds idle{5000};    // no request for this long: the VM stopped
    IgnoreRules ignore;                      // data the VM may write differently (mmio rules)
};

class DeviceStub {
public:
    /// Answers from `scenario` (kept by reference: it must outlive the stub).
    DeviceStub(const Scenario& scenario, StubOptions options = {});
    ~DeviceStub();
    DeviceStub(const DeviceStub&) = delete;
    DeviceStub& operator=(const DeviceStub&) = delete;

    /// Connects to the VM at "host:port" and claims the recorded ranges.
    /// Returns 0 or a negative errno.
    int connect(const std::string& target);
    /// Serves until every recorded request was answered, the VM disconnects,
    /// or it sends nothing for `idle`. The report's divergences name the
    /// recording's records: where the VM's request differed, or which
    /// recorded requests never came.
    ReplayReport run();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace coreio::replayer
