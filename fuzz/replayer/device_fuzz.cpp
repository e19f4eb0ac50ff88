// libFuzzer target for the example device models (structure-aware): the input
// bytes decode into a sequence of operations (MMIO reads and writes aimed at
// the model's registers, resets, guest-memory fills) that the replayer's
// Player plays to the model in process, over an in-process ClientSession (no
// sockets). A Player finding (IRQ stuck high after reset, DMA into the MMIO
// range, protocol violation, a handler that threw) aborts, so libFuzzer saves
// the input; a crash of the model is a crash. Built once per model:
// COREIO_FUZZ_MODEL_TIMER or COREIO_FUZZ_MODEL_DMACOPY. COREIO_FUZZ_SEEDED_BUG=1
// in the environment switches the model's seeded bug on.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "coreio/replayer/fuzz.hpp"
#include "coreio/replayer/replay.hpp"
#include "dma_copy.hpp"
#include "timer_regfile.hpp"

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

struct Target {
    FuzzConfig config;
    DeviceFactory factory;
    std::unique_ptr<Player> player;
    std::unique_ptr<InProcessLink> link;
    Scenario sc;
};

Target& target() {
    static Target t = [] {
        Target x;
        const bool bug = std::getenv("COREIO_FUZZ_SEEDED_BUG") != nullptr && std::getenv("COREIO_FUZZ_SEEDED_BUG")[0] == '1';
        x.config.ranges = {{0, kBase, 0x1000, "dev"}};
        x.config.memory = {{0, 0, kMem, kMemSize, "ram"}};
#if defined(COREIO_FUZZ_MODEL_DMACOPY)
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
    const ReplayReport rep = t.player->run(t.sc, *t.link);
    if (!rep.divergences.empty()) {
        std::fprintf(stderr, "coreio device fuzz finding: %s\n", rep.divergences[0].describe().c_str());
        std::abort();
    }
    return 0;
}
