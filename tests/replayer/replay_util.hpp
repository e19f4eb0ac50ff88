// Helpers of the replayer tests: record a device model under the mock VM (over
// TCP on 127.0.0.1, with a TraceTap), temporary file names.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <unistd.h>

#include "coreio/client.hpp"
#include "coreio/mockvm/vm.hpp"
#include "coreio/replayer/device.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"

namespace coreio::testing {

inline constexpr std::uint64_t kBase = 0x10000000;  // MMIO range 0
inline constexpr std::uint64_t kMem = 0x80000000;   // guest memory for DMA
inline constexpr std::uint64_t kMemSize = 0x10000;

/// A unique path in the temp directory (removed by the caller if it cares).
inline std::string temp_path(const std::string& name) {
    static std::atomic<int> n{0};
    return (std::string(::testing::TempDir()) + "replay-" + name + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(n++) + ".ctrace");
}

/// Serves a device model over TCP to `target` in a thread until stop().
class TcpDevice {
public:
    TcpDevice(const std::string& target, replayer::DeviceFactory factory) {
        ready_ = client_.connect(target);
        if (ready_ != 0) return;
        host_ = std::make_unique<replayer::ClientHost>(client_);
        device_ = factory(*host_);
        for (auto& r : device_->ranges()) client_.register_range(r.rid, *r.handler);
        thread_ = std::thread([this] {
            while (!stop_) {
                if (client_.run_for(2000) < 0) break;
            }
        });
    }
    ~TcpDevice() { stop(); }
    /// 0 when connected.
    int status() const { return ready_; }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        client_.disconnect();
    }

private:
    Client client_;
    int ready_ = -1;
    std::unique_ptr<replayer::ClientHost> host_;
    std::unique_ptr<replayer::Device> device_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

/// Runs `run` against a mock VM (range 0 at kBase, guest memory at kMem) whose
/// traffic a VM-side TraceTap records into a trace at `path`. `run` starts the
/// device and drives it; it returns "" or what went wrong, as does this.
inline std::string record_mockvm_trace(const std::string& path, const std::function<std::string(mockvm::Vm&)>& run) {
    trace::TraceWriter writer;
    trace::TraceHeader h;
    h.tool = "replayer-test";
    h.observer = trace::Observer::Vm;
    h.ranges = {{0, kBase, 0x1000, "dev"}};
    h.memory = {{0, 0, kMem, kMemSize, "ram"}};
    if (std::string err = writer.open(path, h); !err.empty()) return err;
    {
        trace::TapOptions to;
        to.observer = trace::Observer::Vm;
        trace::TraceTap tap(writer, to);
        mockvm::VmConfig c;
        c.ranges = {{kBase, 0x1000}};
        c.memory = {{kMem, kMemSize}};
        c.tap = &tap;
        c.log = [](std::string_view) {};
        c.timeout = std::chrono::seconds(10);
        mockvm::Vm vm(c);
        if (std::string err = run(vm); !err.empty()) return err;
        tap.finish();
    }
    return writer.close();
}

/// Records `script` driving a device from `factory` under the mock VM into a
/// trace at `path` (VM-side TraceTap). Returns "" or what went wrong.
inline std::string record_with_mockvm(const std::string& path, const replayer::DeviceFactory& factory,
                                      const std::function<void(mockvm::Vm&)>& script) {
    return record_mockvm_trace(path, [&](mockvm::Vm& vm) -> std::string {
        TcpDevice dev(vm.endpoint(), factory);
        if (dev.status() != 0) return "device could not connect";
        if (!vm.wait_for_claim(0, std::chrono::seconds(10))) return "device did not claim";
        script(vm);
        vm.ping();  // everything before it has been handled
        dev.stop();
        return "";
    });
}

}  // namespace coreio::testing
