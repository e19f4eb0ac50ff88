// The seeded fuzzer: bit-for-bit reproducible generation, findings on the two
// example models' seeded bugs (IRQ stuck high, crash), hang, DMA into MMIO,
// user assertions, reproducers that reproduce 10 out of 10 times, the minimiser.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "coreio/replayer/fuzz.hpp"
#include "coreio/replayer/prng.hpp"
#include "dma_copy.hpp"
#include "replay_util.hpp"
#include "timer_regfile.hpp"

using namespace coreio;
using namespace coreio::replayer;
using namespace coreio::testing;
using coreio::examples::DmaCopy;
using coreio::examples::TimerRegfile;

namespace {

FuzzConfig timer_config() {
    FuzzConfig c;
    c.ranges = {{0, kBase, 0x1000, "timer"}};
    for (std::uint64_t off = 0; off < TimerRegfile::kSize; off += 4) c.registers.push_back({0, off, 4});
    return c;
}

FuzzConfig dma_config() {
    FuzzConfig c;
    c.ranges = {{0, kBase, 0x1000, "dmacopy"}};
    c.memory = {{0, 0, kMem, kMemSize, "ram"}};
    for (std::uint64_t off : {0x00, 0x18, 0x1c, 0x20, 0x24, 0x28}) c.registers.push_back({0, off, 4});
    c.registers.push_back({0, DmaCopy::kSrc, 8});
    c.registers.push_back({0, DmaCopy::kDst, 8});
    return c;
}

std::string out_dir(const std::string& name) {
    const std::string d = std::string(::testing::TempDir()) + "fuzz-" + name + "-" + std::to_string(::getpid());
    std::filesystem::remove_all(d);  // left by a dead process with the same id
    std::filesystem::create_directories(d);
    return d;
}

TEST(Prng, SameNumbersOnEveryMachine) {
    Rng r(42);
    EXPECT_EQ(r.next(), 0x15780b2e0c2ec716ull);
    EXPECT_EQ(r.next(), 0x6104d9866d113a7eull);
    EXPECT_EQ(r.next(), 0xae17533239e499a1ull);
    Rng q(7, 3);
    EXPECT_EQ(q.below(10), 0u);
    EXPECT_EQ(q.below(1000000007), 270034511u);
    EXPECT_EQ(q.below(1), 0u);
    Rng b(1);
    for (int i = 0; i < 10000; ++i) {
        const auto v = b.between(5, 9);
        ASSERT_GE(v, 5u);
        ASSERT_LE(v, 9u);
    }
}

TEST(FuzzGenerate, AnExecDependsOnlyOnSeedAndNumber) {
    const FuzzConfig c = dma_config();
    Scenario a, b, other;
    generate_exec(c, 1234, 77, a);
    generate_exec(c, 1234, 5, other);  // generating others in between changes nothing
    generate_exec(c, 1234, 77, b);
    ASSERT_EQ(a.steps.size(), b.steps.size());
    ASSERT_GE(a.steps.size(), 2u);
    EXPECT_EQ(a.steps[0].kind, Step::Kind::Reset);
    EXPECT_LE(a.steps.size(), 33u);
    for (std::size_t i = 0; i < a.steps.size(); ++i) {
        EXPECT_EQ(a.steps[i].kind, b.steps[i].kind);
        EXPECT_EQ(a.steps[i].frame, b.steps[i].frame);
        EXPECT_EQ(a.steps[i].fill_seed, b.steps[i].fill_seed);
    }
    Scenario c2;
    generate_exec(c, 1235, 77, c2);
    bool differ = c2.steps.size() != a.steps.size();
    for (std::size_t i = 0; !differ && i < a.steps.size(); ++i) differ = !(a.steps[i].frame == c2.steps[i].frame);
    EXPECT_TRUE(differ);
}

TEST(Fuzz, FixedSeedFindsTheTimerBugTwiceAndTheReproducerReproduces) {
    FuzzOptions o;
    o.seed = 7;
    o.execs = 20000;
    o.fork = false;
    o.out_dir = out_dir("timer");
    const auto buggy = examples::timer_regfile_factory({0, true});
    FuzzResult r1 = fuzz_in_process(timer_config(), buggy, o);
    FuzzResult r2 = fuzz_in_process(timer_config(), buggy, o);
    ASSERT_EQ(r1.error, "");
    ASSERT_FALSE(r1.findings.empty());
    const Finding& f = r1.findings[0];
    EXPECT_EQ(f.signature, "irq-stuck-high:irq.after-reset");
    ASSERT_FALSE(r2.findings.empty());
    EXPECT_EQ(r2.findings[0].signature, f.signature);
    EXPECT_EQ(r2.findings[0].exec, f.exec);  // the same finding at the same exec
    EXPECT_TRUE(f.reproduced);
    // Minimised to at most 10 % of the exec's steps (the bug needs a write to CTRL and a reset).
    EXPECT_LE(f.scenario.steps.size() * 10, std::max<std::size_t>(f.original_steps, 20)) << f.scenario.steps.size();
    ASSERT_FALSE(f.reproducer.empty());

    // The reproducer alone: 10 out of 10.
    Scenario rep;
    ASSERT_EQ(load_scenario(f.reproducer, rep), "");
    EXPECT_TRUE(rep.reproducer);
    for (int i = 0; i < 10; ++i) {
        ReplayReport rr = replay_in_process(rep, buggy, ReplayOptions{});
        ASSERT_FALSE(rr.passed());
        EXPECT_TRUE(rr.findings_mode);
        EXPECT_EQ(rr.divergences[0].signature(), f.signature) << rr.summary();
    }
    // And the fixed model passes it.
    EXPECT_TRUE(replay_in_process(rep, examples::timer_regfile_factory(), {}).passed());
    std::filesystem::remove_all(o.out_dir);
}

TEST(Fuzz, CorrectTimerHasNoFinding) {
    FuzzOptions o;
    o.seed = 7;
    o.execs = 5000;
    o.fork = false;
    FuzzResult r = fuzz_in_process(timer_config(), examples::timer_regfile_factory(), o);
    EXPECT_TRUE(r.findings.empty()) << r.findings[0].divergence.describe();
    EXPECT_EQ(r.stats.execs, 5000u);
}

TEST(Fuzz, ForkedWorkerTurnsTheDmaCopyCrashIntoAFinding) {
    FuzzOptions o;
    o.seed = 3;
    o.execs = 20000;
    o.fork = true;
    o.assertions.no_dma_into_mmio = false;  // look for the crash only
    o.out_dir = out_dir("dma");
    o.max_findings = 1;
    const auto buggy = examples::dma_copy_factory({0, true});
    FuzzResult r = fuzz_in_process(dma_config(), buggy, o);
    ASSERT_EQ(r.error, "");
    ASSERT_EQ(r.findings.size(), 1u);
    const Finding& f = r.findings[0];
    EXPECT_EQ(f.signature, "crash:signal");
    EXPECT_NE(f.divergence.got.find("SIGABRT"), std::string::npos) << f.divergence.got;
    EXPECT_TRUE(f.reproduced);
    EXPECT_LE(f.scenario.steps.size(), 3u);  // LEN > 4096, then START
    // The reproducer crashes a fresh model 10 times out of 10 (in a child process).
    Scenario rep;
    ASSERT_EQ(load_scenario(f.reproducer, rep), "");
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(check_in_process(rep, buggy, reproducer_assertions(rep), true, std::chrono::seconds(5)), "crash:signal");
    EXPECT_EQ(check_in_process(rep, examples::dma_copy_factory(), reproducer_assertions(rep), true, std::chrono::seconds(5)),
              "");
    std::filesystem::remove_all(o.out_dir);
}

TEST(Fuzz, DmaIntoItsOwnMmioRangeIsAFinding) {
    FuzzOptions o;
    o.seed = 11;
    o.execs = 50000;
    o.fork = false;
    o.max_findings = 1;
    FuzzResult r = fuzz_in_process(dma_config(), examples::dma_copy_factory(), o);
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_EQ(r.findings[0].signature, "dma-into-mmio:dma.address");
    EXPECT_TRUE(r.findings[0].reproduced);
}

// A model that never returns from a write of 0xdead to offset 0.
class Hangs final : public MmioHandler {
public:
    int read(std::uint64_t, std::size_t len, void* buf, unsigned) override {
        std::memset(buf, 0, len);
        return 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) override {
        std::uint64_t v = 0;
        std::memcpy(&v, buf, std::min<std::size_t>(len, 8));
        while ((addr & 0xfff) == 0 && (v & 0xffff) == 0xdead) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return 0;
    }
};

TEST(Fuzz, HangIsFoundByTheWorkerTimeout) {
    FuzzConfig c;
    c.ranges = {{0, kBase, 0x1000, "hangs"}};
    c.registers = {{0, 0, 2}};
    FuzzOptions o;
    o.seed = 5;
    o.execs = 200000;
    o.fork = true;
    o.timeout = std::chrono::milliseconds(300);
    o.minimise = false;
    o.max_findings = 1;
    // Plant the trigger where the generator cannot miss it: the user's start trace.
    auto start = std::make_shared<Scenario>();
    start->steps.push_back(Step::access(Op::Write, 0, kBase, 2, 0xdead));
    c.start = start;
    DeviceFactory f = [](DeviceHost&) -> std::unique_ptr<Device> {
        return std::make_unique<SingleRangeDevice<Hangs>>(0, std::make_unique<Hangs>());
    };
    FuzzResult r = fuzz_in_process(c, f, o);
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_EQ(r.findings[0].signature, "hang:timeout");
    EXPECT_TRUE(r.findings[0].reproduced);
}

TEST(Fuzz, UserReadExpectationIsAnAssertion) {
    FuzzOptions o;
    o.seed = 9;
    o.execs = 20000;
    o.fork = false;
    ReadExpectation id_ok, reg_bit;
    ASSERT_EQ(ReadExpectation::parse("0:0:0xffffffff:0x434f5431", id_ok), "");
    ASSERT_EQ(ReadExpectation::parse("0:0x20:0x1:0", reg_bit), "");  // REG0 bit 0 never set: false
    o.assertions.reads = {id_ok, reg_bit};
    FuzzResult r = fuzz_in_process(timer_config(), examples::timer_regfile_factory(), o);
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_EQ(r.findings[0].signature, "assertion:expect-read 0:0x20:0x1:0");
    EXPECT_LE(r.findings[0].scenario.steps.size(), 3u);  // a write with bit 0 set, a read
}

TEST(Minimise, ShrinksALongSequenceToTheStepsTheBugNeeds) {
    // 200 noise steps around the two that matter.
    const FuzzConfig c = timer_config();
    Scenario big;
    big.ranges = c.ranges;
    big.reproducer = true;
    Scenario noise;
    for (std::uint64_t e = 0; big.steps.size() < 200; ++e) {
        generate_exec(c, 99, e, noise);
        for (const Step& s : noise.steps)
            if (s.kind == Step::Kind::Access && s.frame.address() != kBase + TimerRegfile::kCtrl) big.steps.push_back(s);
    }
    big.steps.insert(big.steps.begin() + 120, Step::access(Op::Write, 0, kBase + TimerRegfile::kCtrl, 4, 0xffff));
    big.steps.insert(big.steps.begin() + 170, Step::reset());
    const auto buggy = examples::timer_regfile_factory({0, true});
    auto fails = [&](const Scenario& s) {
        return check_in_process(s, buggy, {}, false, std::chrono::seconds(5)) == "irq-stuck-high:irq.after-reset";
    };
    ASSERT_TRUE(fails(big));
    std::size_t runs = 0;
    Scenario small = minimise(big, fails, 3000, &runs);
    EXPECT_TRUE(fails(small));
    EXPECT_LE(small.steps.size() * 10, big.steps.size()) << small.steps.size();
    // Field level: the CTRL value narrowed to the three bits the bug needs.
    for (const Step& s : small.steps) {
        if (s.kind == Step::Kind::Access && s.frame.op() == Op::Write) {
            std::uint32_t v = 0;
            std::memcpy(&v, s.frame.payload(), std::min(4u, s.frame.size()));
            EXPECT_EQ(v, 7u);
        }
    }
}

}  // namespace
