#include "coreio/cosim/bridge.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace coreio::cosim {

Bridge::Bridge(Model& model, BridgeOptions options, IrqSink irq, DmaPort* dma)
    : model_(model), opt_(std::move(options)), irq_(std::move(irq)), sim_(model) {
    slave_ = make_slave_adapter(sim_, model_.ports(), opt_.slave);
    if (model_.ports().has_master && dma != nullptr)
        master_ = std::make_unique<AxiMasterAdapter>(sim_, model_.ports().axi, *dma);
    sim_.set_irq_listener([this](std::uint32_t changed, std::uint32_t levels) {
        if (!irq_) return;
        for (unsigned line = 0; line < 8; ++line)
            if ((changed >> line) & 1) irq_(line, (levels >> line) & 1);
    });
    std::string error;
    if (!sim_.set_trace(opt_.trace, error)) throw std::runtime_error(error);
    sim_.reset(opt_.reset_cycles);
}

Bridge::~Bridge() = default;

std::optional<std::uint64_t> Bridge::bus_addr(std::uint64_t addr, std::size_t len) const {
    const std::uint64_t off = addr - opt_.base;
    const std::uint64_t span = opt_.addr_bits >= 64 ? 0 : std::uint64_t{1} << opt_.addr_bits;
    if (opt_.range_size == 0) return span == 0 ? off : off & (span - 1);
    if (addr < opt_.base || off >= opt_.range_size || len > opt_.range_size - off) return std::nullopt;
    if (span != 0 && (off >= span || len > span - off)) return std::nullopt;
    return off;
}

int Bridge::finish(BusStatus s, std::uint64_t addr, const char* what) {
    ++accesses_;
    if (opt_.idle_per_access) sim_.run(opt_.idle_per_access);
    if (opt_.after_access) opt_.after_access();
    if (s == BusStatus::Ok) return 0;
    ++bus_errors_;
    if (opt_.log)
        opt_.log(std::string(model_.name()) + ": " + what + " at 0x" + [&] {
            char b[24];
            std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(addr));
            return std::string(b);
        }() + ": " + bus_status_name(s));
    return 1;
}

int Bridge::read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) {
    sim_.note_access(addr);
    const auto at = bus_addr(addr, len);
    if (!slave_) return finish(BusStatus::DecodeError, addr, "read");
    if (!at) return finish(BusStatus::DecodeError, addr, "read outside the range or beyond the design's address width");
    const BusStatus s = bus_read(*slave_, *at, len, static_cast<std::uint8_t*>(buf), prot_from_flags(flags));
    return finish(s, addr, "read");
}

int Bridge::write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) {
    return write_masked(addr, len, buf, flags, 0);
}

int Bridge::write_masked(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags,
                         std::uint32_t byte_mask) {
    sim_.note_access(addr);
    const auto at = bus_addr(addr, len);
    if (!slave_) return finish(BusStatus::DecodeError, addr, "write");
    if (!at) return finish(BusStatus::DecodeError, addr, "write outside the range or beyond the design's address width");
    const std::uint64_t mask = byte_mask == 0 ? ~std::uint64_t{0} : byte_mask;
    const BusStatus s =
        bus_write(*slave_, *at, len, static_cast<const std::uint8_t*>(buf), mask, prot_from_flags(flags));
    return finish(s, addr, "write");
}

void Bridge::reset() {
    if (slave_) slave_->idle();
    sim_.reset(opt_.reset_cycles);
    if (opt_.after_access) opt_.after_access();
}

int serve(Client& client, Bridge& bridge, const ServeOptions& options, const std::atomic<bool>& stop) {
    const unsigned rid = bridge.rid();
    for (unsigned line = 0; line < 8; ++line)
        if ((bridge.sim().irq_levels() >> line) & 1) client.irq_update(rid, line, true);
    const std::uint64_t rate = options.idle_rate;
    const std::uint64_t slice = rate ? std::max<std::uint64_t>(1, rate / 1000) : 0;
    auto epoch = std::chrono::steady_clock::now();
    std::uint64_t epoch_cycles = bridge.sim().cycles();
    int rc = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        if (rate) {
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch).count();
            const auto due = static_cast<std::uint64_t>(secs * static_cast<double>(rate));
            const std::uint64_t done = bridge.sim().cycles() - epoch_cycles;
            const std::uint64_t owed = due > done ? due - done : 0;
            if (owed > rate / 10) {
                epoch = std::chrono::steady_clock::now();
                epoch_cycles = bridge.sim().cycles();
            }
            // Whole slices only: clocking the few cycles owed since the last
            // slice on every pass would spin (a pass per microsecond, each with
            // a poll) instead of sleeping until MMIO arrives or a slice is due.
            if (owed >= slice) {
                bridge.run_idle(slice);
                rc = client.run_for(0);
            } else {
                const double wait_us = static_cast<double>(slice - owed) * 1e6 / static_cast<double>(rate);
                rc = client.run_for(std::max(1LL, static_cast<long long>(std::ceil(wait_us))));
            }
        } else {
            rc = client.run_for(20000);
        }
        if (rc != 0) return rc;
    }
    return 0;
}

}  // namespace coreio::cosim
