// Coverage-guided fuzzing: which execs the corpus keeps, the finding's steps
// (the exec before it on the same device included), and a fixed seed that
// finds a deep bug guided where the same seed and budget blind do not.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "coreio/replayer/fuzz.hpp"
#include "fuzz_corpus.hpp"

using namespace coreio;
using namespace coreio::replayer;

namespace {

constexpr std::uint64_t kBase = 0x1000'0000;

/// A register lock in plain C++, with its own coverage counters (one per
/// branch): KEY (0x8) takes 0x5, 0xffffffff, 0xa in this order (anything else
/// starts over); then bit 0 written to CTRL (0xc) raises IRQ 0, and, the
/// seeded bug, no RESET lowers it again.
class LockDevice final : public MmioHandler {
public:
    enum Point { kRead, kWrite, kKey1, kKey2, kKey3, kWrongKey, kLockedCtrl, kAlarm, kReset, kPoints };
    explicit LockDevice(DeviceHost& host) : host_(host) {}
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned) override {
        ++hits[kRead];
        std::memset(buf, 0, len);
        if (addr - kBase == 0x10 && len >= 1) *static_cast<std::uint8_t*>(buf) = static_cast<std::uint8_t>(stage_);
        return 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) override {
        ++hits[kWrite];
        std::uint32_t v = 0;
        std::memcpy(&v, buf, std::min<std::size_t>(len, 4));
        if (len != 4) return 0;
        if (addr - kBase == 0x8) {
            if (stage_ == 0 && v == 0x5) ++hits[kKey1], stage_ = 1;
            else if (stage_ == 1 && v == 0xffffffff) ++hits[kKey2], stage_ = 2;
            else if (stage_ == 2 && v == 0xa) ++hits[kKey3], stage_ = 3;
            else if (stage_ != 3) ++hits[kWrongKey], stage_ = v == 0x5 ? 1 : 0;
        } else if (addr - kBase == 0xc && (v & 1)) {
            if (stage_ != 3) {
                ++hits[kLockedCtrl];
            } else if (!alarm_) {
                ++hits[kAlarm];
                alarm_ = true;
                host_.irq_update(0, 0, true);
            }
        }
        return 0;
    }
    void reset() override {
        ++hits[kReset];
        stage_ = 0;  // the alarm stays: the bug
    }
    std::array<std::uint32_t, kPoints> hits{};

private:
    DeviceHost& host_;
    unsigned stage_ = 0;
    bool alarm_ = false;
};

/// The lock devices a factory makes, and the counters of the current one.
struct LockRig {
    LockDevice* current = nullptr;
    DeviceFactory factory() {
        return [this](DeviceHost& host) -> std::unique_ptr<Device> {
            auto handler = std::make_unique<LockDevice>(host);
            current = handler.get();
            return std::make_unique<SingleRangeDevice<LockDevice>>(0, std::move(handler));
        };
    }
    CoverageSource coverage() {
        return [this](std::vector<std::uint32_t>& out) {
            if (current == nullptr) return out.clear();
            out.assign(current->hits.begin(), current->hits.end());
        };
    }
};

FuzzConfig lock_config() {
    FuzzConfig c;
    c.ranges = {{0, kBase, 0x1000, "lock"}};
    for (std::uint64_t off = 0; off <= 0x10; off += 4) c.registers.push_back({0, off, 4});
    return c;
}

Scenario steps(unsigned n) {
    Scenario s;
    for (unsigned i = 0; i < n; ++i) s.steps.push_back(Step::reset());
    return s;
}

}  // namespace

TEST(GuidedCorpus, KeepsAnExecOnlyForANewCounterOrCountBucket) {
    GuidedCorpus c;
    const std::vector<std::uint32_t> zero(4, 0);
    EXPECT_TRUE(c.observe(steps(1), zero, std::vector<std::uint32_t>{1, 0, 0, 0}));   // counter 0 first hit
    EXPECT_FALSE(c.observe(steps(2), zero, std::vector<std::uint32_t>{1, 0, 0, 0}));  // nothing new
    EXPECT_TRUE(c.observe(steps(3), zero, std::vector<std::uint32_t>{2, 0, 0, 0}));   // bucket 2-3
    EXPECT_FALSE(c.observe(steps(4), zero, std::vector<std::uint32_t>{3, 0, 0, 0}));  // same bucket
    // Counts are what the exec added: 10 before, 11 after is one hit again.
    EXPECT_FALSE(c.observe(steps(5), std::vector<std::uint32_t>{10, 0, 0, 0}, std::vector<std::uint32_t>{11, 0, 0, 0}));
    EXPECT_TRUE(c.observe(steps(6), zero, std::vector<std::uint32_t>{0, 0, 0, 200}));  // counter 3
    EXPECT_EQ(c.size(), 3u);
}

TEST(GuidedCorpus, AFindingCarriesTheExecBeforeIt) {
    Scenario a = steps(2), b = steps(3);
    const Scenario j = joined(a, b);
    ASSERT_EQ(j.steps.size(), 5u);
    for (std::size_t i = 0; i < j.steps.size(); ++i) EXPECT_EQ(j.steps[i].record, i);
    EXPECT_EQ(joined(Scenario{}, b).steps.size(), 3u);
}

TEST(GuidedCorpus, GenerationIsDeterministicAndMutatesKeptExecs) {
    const FuzzConfig cfg = lock_config();
    GuidedCorpus c;
    Scenario fresh, again;
    c.generate(cfg, 3, 10, fresh);
    generate_exec(cfg, 3, 10, again);
    EXPECT_EQ(fresh.steps.size(), again.steps.size());  // nothing kept: a fresh exec
    ASSERT_TRUE(c.observe(fresh, {}, std::vector<std::uint32_t>{1}));
    std::size_t differ = 0;
    for (std::uint64_t e = 0; e < 50; ++e) {
        Scenario x, y;
        c.generate(cfg, 3, e, x);
        c.generate(cfg, 3, e, y);
        ASSERT_EQ(x.steps.size(), y.steps.size());
        for (std::size_t i = 0; i < x.steps.size(); ++i) {
            ASSERT_EQ(x.steps[i].frame.length(), y.steps[i].frame.length());
            EXPECT_EQ(std::memcmp(x.steps[i].frame.data(), y.steps[i].frame.data(), x.steps[i].frame.length()), 0);
        }
        ASSERT_FALSE(x.steps.empty());
        EXPECT_EQ(x.steps[0].kind, Step::Kind::Reset);
        EXPECT_LE(x.steps.size(), cfg.max_ops + 1);
        differ += x.steps.size() != fresh.steps.size();
    }
    EXPECT_GT(differ, 0u);
}

// The same seed and budget: guided reaches the alarm, blind does not; and
// guided twice is the same run, its finding reproducing on a fresh device.
TEST(GuidedFuzz, FindsTheDeepLockBugThatBlindFuzzingMisses) {
    FuzzOptions o;
    o.seed = 11;
    o.execs = 40000;
    o.fork = false;
    o.max_findings = 1;
    LockRig blind_rig;
    const FuzzResult blind = fuzz_in_process(lock_config(), blind_rig.factory(), o);
    ASSERT_EQ(blind.error, "");
    EXPECT_TRUE(blind.findings.empty()) << "blind found it at exec " << blind.findings[0].exec;

    o.guided = true;
    LockRig rig1, rig2;
    o.coverage = rig1.coverage();
    const FuzzResult g1 = fuzz_in_process(lock_config(), rig1.factory(), o);
    o.coverage = rig2.coverage();
    const FuzzResult g2 = fuzz_in_process(lock_config(), rig2.factory(), o);
    ASSERT_EQ(g1.error, "");
    ASSERT_EQ(g1.findings.size(), 1u) << g1.stats.execs << " execs, " << g1.stats.kept << " kept";
    EXPECT_EQ(g1.findings[0].signature, "irq-stuck-high:irq.after-reset");
    EXPECT_GT(g1.stats.kept, 0u);
    ASSERT_EQ(g2.findings.size(), 1u);
    EXPECT_EQ(g2.findings[0].exec, g1.findings[0].exec);
    EXPECT_EQ(g2.stats.kept, g1.stats.kept);
    EXPECT_TRUE(g1.findings[0].reproduced);
    LockRig fresh;
    const ReplayReport rep = replay_in_process(g1.findings[0].scenario, fresh.factory(), {});
    ASSERT_FALSE(rep.passed());
    EXPECT_EQ(rep.divergences[0].signature(), "irq-stuck-high:irq.after-reset");
}

TEST(GuidedFuzz, InProcessNeedsACoverageSourceAndNoFork) {
    FuzzOptions o;
    o.guided = true;
    o.execs = 10;
    LockRig rig;
    EXPECT_NE(fuzz_in_process(lock_config(), rig.factory(), o).error, "");  // fork on, no source
    o.fork = false;
    EXPECT_NE(fuzz_in_process(lock_config(), rig.factory(), o).error, "");  // no source
    o.coverage = rig.coverage();
    EXPECT_EQ(fuzz_in_process(lock_config(), rig.factory(), o).error, "");
}
