// A device model as the replayer and the fuzzer drive it: MMIO handlers for the
// ranges it claims, plus a DeviceHost through which it raises IRQs and does DMA.
// The same model runs over TCP (ClientHost wraps a coreio::Client) and in
// process (the replayer's InProcessLink), so one model serves a real VM, replay
// tests and full-speed fuzzing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "coreio/client.hpp"

namespace coreio::replayer {

/// What a device model may ask of the VM side: the blocking subset of
/// coreio::Client. Every call returns 0 or a negative errno as Client does.
class DeviceHost {
public:
    virtual ~DeviceHost() = default;
    /// Sets IRQ line `line` (0..7) of range `rid` to `level`.
    virtual int irq_update(unsigned rid, unsigned line, bool level) = 0;
    /// Blocking DMA read of buf.size() bytes at `addr` (safe inside an MMIO handler).
    virtual int dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf,
                         unsigned flags) = 0;
    /// Blocking DMA write of buf at `addr` (safe inside an MMIO handler).
    virtual int dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf,
                          unsigned flags) = 0;
};

/// DeviceHost over a connected coreio::Client (TCP): what the example
/// executables use.
class ClientHost final : public DeviceHost {
public:
    /// Forwards to `client` (not owned).
    explicit ClientHost(Client& client) : client_(client) {}
    int irq_update(unsigned rid, unsigned line, bool level) override { return client_.irq_update(rid, line, level); }
    int dma_read(unsigned mid, unsigned sid, std::uint64_t addr, std::span<std::byte> buf, unsigned flags) override {
        return client_.dma_read(mid, sid, addr, buf, flags);
    }
    int dma_write(unsigned mid, unsigned sid, std::uint64_t addr, std::span<const std::byte> buf,
                  unsigned flags) override {
        return client_.dma_write(mid, sid, addr, buf, flags);
    }

private:
    Client& client_;  // the TCP connection pair to the VM
};

/// One range a device model serves.
struct DeviceRange {
    unsigned rid = 0;                // range id to claim (0..7)
    MmioHandler* handler = nullptr;  // not owned: lives as long as the Device
};

/// A device model instance: owns its handlers and says which ranges they serve.
class Device {
public:
    virtual ~Device() = default;
    /// The ranges to claim, in claim order.
    virtual std::vector<DeviceRange> ranges() = 0;
};

/// Builds a fresh device model that talks to the VM through `host` (which
/// outlives the device). Called once per connection, and again for each fresh
/// instance the fuzzer or minimiser needs.
using DeviceFactory = std::function<std::unique_ptr<Device>(DeviceHost& host)>;

/// A Device made of one handler object serving one range (the common case).
template <class Handler>
class SingleRangeDevice final : public Device {
public:
    /// Takes ownership of `handler`, served on range `rid`.
    SingleRangeDevice(unsigned rid, std::unique_ptr<Handler> handler) : rid_(rid), handler_(std::move(handler)) {}
    std::vector<DeviceRange> ranges() override { return {DeviceRange{rid_, handler_.get()}}; }
    /// The model itself (tests poke at it).
    Handler& model() { return *handler_; }

private:
    unsigned rid_;                      // range served
    std::unique_ptr<Handler> handler_;  // the model
};

}  // namespace coreio::replayer
