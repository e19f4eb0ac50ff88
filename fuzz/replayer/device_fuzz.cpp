// libFuzzer target for the example device models (structure-aware): the input
// bytes decode into a sequence of operations (MMIO reads and writes aimed at
// the model's registers, resets, guest-memory fills) that the replayer's
// Player plays to the model in process, over an in-process ClientSession (no
// sockets). A Player finding (IRQ stuck high after reset, DMA into the MMIO
// range, protocol violation, a handler that threw) aborts, so libFuzzer saves
// the input; a crash of the model is a crash. Built once per model:
// COREIO_FUZZ_MODEL_TIMER or COREIO_FUZZ_MODEL_DMACOPY (COREIO_FUZZ_SEEDED_BUG=1
// in the environment switches the model's seeded bug on), or
// COREIO_FUZZ_MODEL_LOCK_RTL: the Verilated lock-apb design (cosim/rtl/
// lock_apb.sv, its bug always in) behind the cosim bridge, each input closed
// by a RESET, whose RTL coverage counters feed libFuzzer as extra counters.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "coreio/replayer/fuzz.hpp"
#include "coreio/replayer/replay.hpp"
#include "dma_copy.hpp"
#include "timer_regfile.hpp"
#if defined(COREIO_FUZZ_MODEL_LOCK_RTL)
#include "coreio/cosim/bridge.hpp"
#include "lock-apb_model.hpp"
#endif

using namespace coreio;
using namespace coreio::replayer;

namespace {

constexpr std::uint64_t kBase = 0x10000000;
constexpr std::uint64_t kMem = 0x80000000;
constexpr std::uint64_t kMemSize = 0x10000;

/// Reads the input front to back; zeros once it runs out.
class Bytes {
public:
    Bytes(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
    bool empty() const { return n_ == 0; }
    std::uint64_t take(unsigned k) {
        std::uint64_t v = 0;
        for (unsigned i = 0; i < k && n_ > 0; ++i, ++p_, --n_) v |= std::uint64_t{*p_} << (8 * i);
        return v;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
};

#if defined(COREIO_FUZZ_MODEL_LOCK_RTL)
/// The RTL's coverage, as libFuzzer reads extra counters: one byte per point
/// (saturated hits of the input just run); points past the array are not fed.
__attribute__((section("__libfuzzer_extra_counters"))) std::uint8_t g_rtl_counters[4096];

/// The Verilated lock-apb model as a replayer Device: MMIO through the
/// bridge's APB adapter, its IRQ to the host.
class RtlDevice final : public Device {
public:
    explicit RtlDevice(DeviceHost& host)
        : host_(host), model_(cosim::models::make_lock_apb()),
          bridge_(*model_, options(), [this](unsigned line, bool level) { host_.irq_update(0, line, level); },
                  nullptr) {}
    std::vector<DeviceRange> ranges() override { return {DeviceRange{0, &bridge_}}; }
    cosim::CoverageCounters coverage() const { return model_->coverage(); }

private:
    static cosim::BridgeOptions options() {
        cosim::BridgeOptions o;
        o.base = kBase;
        o.range_size = 0x1000;
        o.addr_bits = cosim::models::lock_apb_defaults.addr_bits;
        return o;
    }
    DeviceHost& host_;
    std::unique_ptr<cosim::Model> model_;
    cosim::Bridge bridge_;
};
#endif

struct Target {
    FuzzConfig config;
    DeviceFactory factory;
    std::unique_ptr<Player> player;
    std::unique_ptr<InProcessLink> link;
    Scenario sc;
    std::vector<std::uint32_t> rtl_before;  // LOCK_RTL: the counters before the input
};

Target& target() {
    static Target t = [] {
        Target x;
        const bool bug = std::getenv("COREIO_FUZZ_SEEDED_BUG") != nullptr && std::getenv("COREIO_FUZZ_SEEDED_BUG")[0] == '1';
        x.config.ranges = {{0, kBase, 0x1000, "dev"}};
        x.config.memory = {{0, 0, kMem, kMemSize, "ram"}};
#if defined(COREIO_FUZZ_MODEL_LOCK_RTL)
        (void)bug;
        x.factory = [](DeviceHost& host) -> std::unique_ptr<Device> { return std::make_unique<RtlDevice>(host); };
        for (std::uint64_t off = 0; off <= 0x10; off += 4) x.config.registers.push_back({0, off, 4});
#elif defined(COREIO_FUZZ_MODEL_DMACOPY)
        using examples::DmaCopy;
        x.factory = examples::dma_copy_factory({0, bug});
        for (std::uint64_t off : {DmaCopy::kId, DmaCopy::kLen, DmaCopy::kCtrl, DmaCopy::kStatus, DmaCopy::kCopied})
            x.config.registers.push_back({0, off, 4});
        x.config.registers.push_back({0, DmaCopy::kSrc, 8});
        x.config.registers.push_back({0, DmaCopy::kDst, 8});
#else
        x.factory = examples::timer_regfile_factory({0, bug});
        for (std::uint64_t off = 0; off < examples::TimerRegfile::kSize; off += 4) x.config.registers.push_back({0, off, 4});
#endif
        ReplayOptions o;
        o.check = CheckMode::Findings;
        o.assertions.reset_check_from_step = 1;  // the opening reset shows the previous input's state
        x.player = std::make_unique<Player>(o, x.config.ranges, x.config.memory);
        x.link = std::make_unique<InProcessLink>(x.factory, *x.player);
        x.sc.ranges = x.config.ranges;
        x.sc.memory = x.config.memory;
        x.sc.reproducer = true;
        return x;
    }();
    return t;
}

/// One operation from the input: a kind byte, then the fields it needs.
Step decode(Bytes& in, const FuzzConfig& c) {
    const unsigned kind = static_cast<unsigned>(in.take(1));
    switch (kind % 16) {
    case 0: return Step::reset();
    case 1: {
        const std::uint64_t off = in.take(2) % kMemSize;
        const std::uint64_t len = 1 + in.take(1);
        return Step::fill(kMem + off, std::min(len, kMemSize - off), in.take(8));
    }
    default: break;
    }
    static constexpr Op kOps[] = {Op::Read, Op::Write, Op::WriteAck, Op::ReadPair, Op::WritePair, Op::WriteAckPair};
    const Op op = kOps[(kind >> 4) % 6];
    const unsigned sel = static_cast<unsigned>(in.take(1));
    std::uint64_t offset;
    unsigned size;
    if (sel < 224 && !c.registers.empty()) {  // mostly a known register
        const RegisterInfo& r = c.registers[sel % c.registers.size()];
        offset = r.offset;
        size = r.width;
    } else {
        static constexpr unsigned kSizes[] = {1, 2, 4, 8};
        size = kSizes[sel & 3];
        offset = (in.take(2) & 0xfff) & ~std::uint64_t{size - 1};
    }
    if (is_pair_op(op) && offset + 2 * size > 0x1000) offset = 0x1000 - 2 * size;
    const std::uint64_t d1 = is_read_op(op) ? 0 : in.take(size);
    const std::uint64_t d2 = is_pair_op(op) && !is_read_op(op) ? in.take(size) : 0;
    return Step::access(op, 0, kBase + offset, size, d1, d2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Target& t = target();
    Bytes in(data, size);
    t.sc.steps.clear();
    t.sc.steps.push_back(Step::reset());
    while (!in.empty() && t.sc.steps.size() < 65) t.sc.steps.push_back(decode(in, t.config));
    for (std::size_t i = 0; i < t.sc.steps.size(); ++i) t.sc.steps[i].record = i;
    t.player->clear_memory();
#if defined(COREIO_FUZZ_MODEL_LOCK_RTL)
    // A closing RESET: state a reset does not clear (the seeded bug) shows in
    // the input that made it, not in the next one (a fresh model per input
    // would cost a Verilator context each time).
    t.sc.steps.push_back(Step::reset());
    t.sc.steps.back().record = t.sc.steps.size() - 1;
    const cosim::CoverageCounters rtl = static_cast<RtlDevice&>(t.link->device()).coverage();
    t.rtl_before.resize(rtl.size());
    for (std::size_t i = 0; i < rtl.size(); ++i) t.rtl_before[i] = rtl[i].load(std::memory_order_relaxed);
#endif
    const ReplayReport rep = t.player->run(t.sc, *t.link);
#if defined(COREIO_FUZZ_MODEL_LOCK_RTL)
    for (std::size_t i = 0; i < rtl.size() && i < sizeof g_rtl_counters; ++i) {
        const std::uint32_t hits = rtl[i].load(std::memory_order_relaxed) - t.rtl_before[i];
        g_rtl_counters[i] = static_cast<std::uint8_t>(std::min<std::uint32_t>(hits, 255));
    }
#endif
    if (!rep.divergences.empty()) {
        std::fprintf(stderr, "coreio device fuzz finding: %s\n", rep.divergences[0].describe().c_str());
        std::abort();
    }
    return 0;
}
