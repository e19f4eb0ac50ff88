// Replay of recorded traces against device models: a recording replays clean,
// a changed device fails at the right record and field, ignore rules, IRQ
// order, DMA, keep-going, TCP, timing modes.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "coreio/net/socket.hpp"
#include "coreio/replayer/replay.hpp"
#include "coreio/trace/reader.hpp"
#include "dma_copy.hpp"
#include "replay_util.hpp"
#include "timer_regfile.hpp"

using namespace coreio;
using namespace coreio::replayer;
using namespace coreio::testing;
using coreio::examples::DmaCopy;
using coreio::examples::TimerRegfile;

namespace {

// The timer scenario: registers, a one-shot timer that fires and is acknowledged,
// wide and pair accesses, a bus error, a reset.
void timer_script(mockvm::Vm& vm) {
    vm.writel(kBase + 0x20, 0x11223344);
    EXPECT_EQ(vm.readl(kBase + 0x20).value, 0x11223344u);
    vm.writel(kBase + 0x24, 0xa5a5a5a5);
    vm.writel(kBase + TimerRegfile::kLoad, 3);
    vm.writel(kBase + TimerRegfile::kCtrl, TimerRegfile::kCtrlEnable | TimerRegfile::kCtrlIrqEn);
    for (int i = 0; i < 4; ++i) vm.readl(kBase + TimerRegfile::kCount);
    EXPECT_TRUE(vm.irq_level(0, 0));
    vm.writel(kBase + TimerRegfile::kStatus, 1, true);  // acknowledged write: clears, IRQ drops
    EXPECT_FALSE(vm.irq_level(0, 0));
    vm.readl(kBase + 0x24);
    vm.readq(kBase + 0x20);
    std::uint32_t a = 0, b = 0;
    vm.read_pair(kBase + 0x28, 4, &a, &b);
    std::uint32_t x = 0;
    EXPECT_EQ(vm.read(kBase + 0x100, 4, &x), -EIO);  // outside the register map
    vm.readl(kBase + TimerRegfile::kTicks);
    vm.reset();
    vm.readl(kBase + 0x20);
}

// A changed timer: REG1 (0x24) reads one more than written.
class OffByOne final : public MmioHandler {
public:
    explicit OffByOne(DeviceHost& host) : inner_(host, {}) {}
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override {
        const int rc = inner_.read(addr, len, buf, flags);
        if ((addr & 0xfff) == 0x24 && len == 4) ++*static_cast<std::uint8_t*>(buf);
        return rc;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override {
        return inner_.write(addr, len, buf, flags);
    }
    void reset() override { inner_.reset(); }

private:
    TimerRegfile inner_;
};

DeviceFactory off_by_one_factory() {
    return [](DeviceHost& host) -> std::unique_ptr<Device> {
        return std::make_unique<SingleRangeDevice<OffByOne>>(0, std::make_unique<OffByOne>(host));
    };
}

// Index of the first MMIO record matching (op, address).
std::uint64_t find_record(const std::string& path, Op op, std::uint64_t address) {
    trace::TraceReader r;
    EXPECT_EQ(r.open(path), "");
    trace::Event ev;
    while (r.next(ev) == trace::ReadStatus::Record)
        if (ev.kind == trace::EventKind::Mmio && ev.op == op && ev.address == address) return r.index();
    ADD_FAILURE() << "no such record";
    return 0;
}

class ReplayTest : public ::testing::Test {
protected:
    void SetUp() override {
        path_ = temp_path("timer");
        ASSERT_EQ(record_with_mockvm(path_, examples::timer_regfile_factory(), timer_script), "");
        ASSERT_EQ(load_scenario(path_, sc_), "");
    }
    void TearDown() override { std::remove(path_.c_str()); }
    std::string path_;
    Scenario sc_;
};

TEST_F(ReplayTest, RecordedTraceReplaysClean) {
    EXPECT_FALSE(sc_.reproducer);
    EXPECT_EQ(sc_.claims.size(), 1u);
    EXPECT_EQ(sc_.irqs.size(), 2u);  // up at the 3rd tick, down at the acknowledge
    ReplayReport rep = replay_in_process(sc_, examples::timer_regfile_factory(), {});
    EXPECT_TRUE(rep.passed()) << rep.summary();
    EXPECT_EQ(rep.counts.irqs, 2u);
    EXPECT_EQ(rep.counts.resets, 1u);
    EXPECT_GE(rep.counts.replies_checked, 10u);
    // Replaying twice gives the same result: the model is deterministic.
    EXPECT_TRUE(replay_in_process(sc_, examples::timer_regfile_factory(), {}).passed());
}

TEST_F(ReplayTest, ChangedDeviceFailsAtTheRightRecordAndField) {
    const std::uint64_t want = find_record(path_, Op::Read, kBase + 0x24);
    ReplayReport rep = replay_in_process(sc_, off_by_one_factory(), {});
    ASSERT_FALSE(rep.passed());
    ASSERT_EQ(rep.divergences.size(), 1u) << rep.summary();
    const Divergence& d = rep.divergences[0];
    EXPECT_EQ(d.record, want);
    EXPECT_EQ(d.kind, DivergenceKind::Mismatch);
    EXPECT_EQ(d.field, "mmio.data");
    EXPECT_EQ(d.expected, "0xa5a5a5a5");
    EXPECT_EQ(d.got, "0xa5a5a5a6");
    EXPECT_NE(rep.summary().find("record " + std::to_string(want) + ": mismatch mmio.data: expected 0xa5a5a5a5, got 0xa5a5a5a6"),
              std::string::npos)
        << rep.summary();
}

TEST_F(ReplayTest, IgnoreRuleHidesTheChangedRegister) {
    ReplayOptions o;
    ASSERT_EQ(o.ignore.add_mmio("0:0x24:0xff"), "");
    ReplayReport rep = replay_in_process(sc_, off_by_one_factory(), o);
    EXPECT_TRUE(rep.passed()) << rep.summary();
    // A mask that leaves the changed bit compared still fails.
    ReplayOptions o2;
    ASSERT_EQ(o2.ignore.add_mmio("0:0x24:0xfe"), "");
    EXPECT_FALSE(replay_in_process(sc_, off_by_one_factory(), o2).passed());
}

TEST_F(ReplayTest, KeepGoingReportsEveryDivergence) {
    ReplayOptions o;
    o.keep_going = true;
    ReplayReport rep = replay_in_process(sc_, off_by_one_factory(), o);
    // REG1 read alone (4 bytes) and inside the 8-byte read at 0x20.
    ASSERT_EQ(rep.divergences.size(), 1u) << rep.summary();  // the 8-byte read is not 4 bytes at 0x24
    // A device that never raises its IRQ: both IRQ changes are missing, all reported.
    DeviceFactory no_irq = [](DeviceHost&) -> std::unique_ptr<Device> {
        struct NullHost final : DeviceHost {
            int irq_update(unsigned, unsigned, bool) override { return 0; }
            int dma_read(unsigned, unsigned, std::uint64_t, std::span<std::byte>, unsigned) override { return -EFAULT; }
            int dma_write(unsigned, unsigned, std::uint64_t, std::span<const std::byte>, unsigned) override { return -EFAULT; }
        };
        static NullHost null_host;
        return std::make_unique<SingleRangeDevice<TimerRegfile>>(0, std::make_unique<TimerRegfile>(null_host, TimerRegfile::Options{}));
    };
    ReplayReport rep2 = replay_in_process(sc_, no_irq, o);
    ASSERT_EQ(rep2.divergences.size(), 2u) << rep2.summary();
    EXPECT_EQ(rep2.divergences[0].kind, DivergenceKind::Missing);
    EXPECT_EQ(rep2.divergences[0].field, "irq");
    EXPECT_EQ(rep2.divergences[0].expected, "rid 0 line 0 -> 1");
    EXPECT_EQ(rep2.divergences[0].record, sc_.irqs[0].record);
    EXPECT_EQ(rep2.divergences[1].expected, "rid 0 line 0 -> 0");
    // And without keep-going only the first.
    EXPECT_EQ(replay_in_process(sc_, no_irq, {}).divergences.size(), 1u);
}

// A timer whose LOAD register is off by `delta`: its IRQ rises earlier or later than recorded.
class SkewedTimer final : public MmioHandler {
public:
    SkewedTimer(DeviceHost& h, int delta) : t_(h, {}), delta_(delta) {}
    int read(std::uint64_t a, std::size_t n, void* b, unsigned f) override { return t_.read(a, n, b, f); }
    int write(std::uint64_t a, std::size_t n, const void* b, unsigned f) override {
        if ((a & 0xfff) == TimerRegfile::kLoad && n == 4) {
            std::uint32_t v;
            std::memcpy(&v, b, 4);
            v = static_cast<std::uint32_t>(static_cast<int>(v) + delta_);
            return t_.write(a, n, &v, f);
        }
        return t_.write(a, n, b, f);
    }
    void reset() override { t_.reset(); }

private:
    TimerRegfile t_;
    int delta_;
};

DeviceFactory skewed(int delta) {
    return [delta](DeviceHost& h) -> std::unique_ptr<Device> {
        return std::make_unique<SingleRangeDevice<SkewedTimer>>(0, std::make_unique<SkewedTimer>(h, delta));
    };
}

TEST_F(ReplayTest, IrqAtTheWrongAccessIsReportedAtItsRecord) {
    ReplayOptions o;
    ASSERT_EQ(o.ignore.add_mmio("0:0x0c"), "");  // COUNT differs too; look at the IRQ only
    // One access early: the change arrives outside its window.
    ReplayReport early = replay_in_process(sc_, skewed(-1), o);
    ASSERT_FALSE(early.passed());
    EXPECT_EQ(early.divergences[0].field, "irq.position") << early.summary();
    EXPECT_EQ(early.divergences[0].record, sc_.irqs[0].record);
    // One access late: missing once its window has passed.
    ReplayReport late = replay_in_process(sc_, skewed(1), o);
    ASSERT_FALSE(late.passed());
    EXPECT_EQ(late.divergences[0].kind, DivergenceKind::Missing) << late.summary();
    EXPECT_EQ(late.divergences[0].field, "irq");
    EXPECT_EQ(late.divergences[0].record, sc_.irqs[0].record);
    // Ignoring the line makes both pass.
    ASSERT_EQ(o.ignore.add_line("irq 0:0"), "");
    EXPECT_TRUE(replay_in_process(sc_, skewed(-1), o).passed());
    EXPECT_TRUE(replay_in_process(sc_, skewed(1), o).passed());
}

TEST(ReplayCycles, FreeRunningCounterNeedsAnIgnoreRule) {
    const std::string path = temp_path("cycles");
    ASSERT_EQ(record_with_mockvm(path, examples::timer_regfile_factory(),
                                 [](mockvm::Vm& vm) {
                                     std::this_thread::sleep_for(std::chrono::milliseconds(3));
                                     vm.readl(kBase + TimerRegfile::kCycles);
                                     vm.readl(kBase + TimerRegfile::kId);
                                 }),
              "");
    Scenario sc;
    ASSERT_EQ(load_scenario(path, sc), "");
    ReplayReport rep = replay_in_process(sc, examples::timer_regfile_factory(), {});
    ASSERT_FALSE(rep.passed());
    EXPECT_EQ(rep.divergences[0].field, "mmio.data");
    // A rule file names it.
    const std::string rules = temp_path("rules") + ".rules";
    {
        std::ofstream f(rules);
        f << "# the free-running counter\n\nmmio 0:0x14   # CYCLES\nirq 0\ndma 0x80000000:16\n";
    }
    ReplayOptions o;
    ASSERT_EQ(o.ignore.load_file(rules), "");
    EXPECT_EQ(o.ignore.rules().size(), 3u);
    EXPECT_TRUE(replay_in_process(sc, examples::timer_regfile_factory(), o).passed());
    std::remove(rules.c_str());
    std::remove(path.c_str());
}

TEST(ReplayRules, ErrorsNameTheProblem) {
    IgnoreRules r;
    EXPECT_NE(r.add_mmio("9:0x10").find("RID must be 0..7"), std::string::npos);
    EXPECT_NE(r.add_mmio("0").find("expected RID:OFFSET[:MASK]"), std::string::npos);
    EXPECT_NE(r.add_mmio("0:zz").find("OFFSET is not a number"), std::string::npos);
    EXPECT_NE(r.add_line("bogus 1:2").find("unknown rule kind 'bogus'"), std::string::npos);
    EXPECT_NE(r.add_line("irq 0:9").find("LINE must be 0..7"), std::string::npos);
    EXPECT_EQ(r.add_line("   # only a comment"), "");
    EXPECT_EQ(r.add_line("0:0x10:0xffff0000"), "");
    EXPECT_EQ(r.mmio_byte_mask(0, 0x10), 0x00);
    EXPECT_EQ(r.mmio_byte_mask(0, 0x12), 0xff);
    EXPECT_EQ(r.mmio_byte_mask(1, 0x12), 0x00);
    EXPECT_NE(r.load_file("/nonexistent/rules").find("cannot read rule file"), std::string::npos);
}

void dma_script(mockvm::Vm& vm) {
    auto mem = vm.memory().view(kMem, 0x100);
    for (std::size_t i = 0; i < 0x100; ++i) mem[i] = static_cast<std::byte>(i * 7);
    vm.writeq(kBase + DmaCopy::kSrc, kMem + 0x3);
    vm.writeq(kBase + DmaCopy::kDst, kMem + 0x1000);
    vm.writel(kBase + DmaCopy::kLen, 100);
    vm.writel(kBase + DmaCopy::kCtrl, DmaCopy::kCtrlStart | DmaCopy::kCtrlIrqEn, true);
    EXPECT_EQ(vm.readl(kBase + DmaCopy::kStatus).value, DmaCopy::kStatusDone);
    EXPECT_TRUE(vm.irq_level(0, 0));
    vm.writel(kBase + DmaCopy::kStatus, 1, true);
    vm.readl(kBase + DmaCopy::kCopied);
}

TEST(ReplayDma, CopyEngineReplaysCleanAndAMovedWriteIsCaught) {
    const std::string path = temp_path("dma");
    ASSERT_EQ(record_with_mockvm(path, examples::dma_copy_factory(), dma_script), "");
    Scenario sc;
    ASSERT_EQ(load_scenario(path, sc), "");
    EXPECT_GE(sc.dmas.size(), 8u);  // 100 bytes from offset 3: 4 read chunks, 4 write chunks
    ReplayReport rep = replay_in_process(sc, examples::dma_copy_factory(), {});
    EXPECT_TRUE(rep.passed()) << rep.summary();
    EXPECT_EQ(rep.counts.dmas, sc.dmas.size());

    // A copy engine that writes one byte further: the first DMA write diverges in its address.
    class Shifted final : public MmioHandler {
    public:
        explicit Shifted(DeviceHost& h) : shim_(h), d_(shim_, {}) {}
        int read(std::uint64_t a, std::size_t n, void* b, unsigned f) override { return d_.read(a, n, b, f); }
        int write(std::uint64_t a, std::size_t n, const void* b, unsigned f) override { return d_.write(a, n, b, f); }

    private:
        struct Shim final : DeviceHost {
            explicit Shim(DeviceHost& host) : h(host) {}
            int irq_update(unsigned r, unsigned l, bool v) override { return h.irq_update(r, l, v); }
            int dma_read(unsigned m, unsigned s, std::uint64_t a, std::span<std::byte> b, unsigned f) override {
                return h.dma_read(m, s, a, b, f);
            }
            int dma_write(unsigned m, unsigned s, std::uint64_t a, std::span<const std::byte> b, unsigned f) override {
                return h.dma_write(m, s, a + 1, b, f);
            }
            DeviceHost& h;
        } shim_;
        DmaCopy d_;
    };
    DeviceFactory shifted = [](DeviceHost& h) -> std::unique_ptr<Device> {
        return std::make_unique<SingleRangeDevice<Shifted>>(0, std::make_unique<Shifted>(h));
    };
    ReplayReport bad = replay_in_process(sc, shifted, {});
    ASSERT_FALSE(bad.passed());
    EXPECT_EQ(bad.divergences[0].field, "dma.address") << bad.summary();
    EXPECT_EQ(bad.divergences[0].expected, "0x80001000");
    EXPECT_EQ(bad.divergences[0].got.substr(0, 10), "0x80001001");
    std::remove(path.c_str());
}

TEST_F(ReplayTest, OverTcpAgainstAnExampleDeviceProcessLikeClient) {
    ReplayOptions o;
    o.timeout = std::chrono::seconds(10);
    Player player(o, sc_.ranges, sc_.memory);
    TcpLink link(player, {});
    TcpDevice dev("127.0.0.1:" + std::to_string(link.port()), examples::timer_regfile_factory());
    ASSERT_EQ(dev.status(), 0);
    ASSERT_EQ(link.accept(std::chrono::seconds(10)), 0);
    ReplayReport rep = player.run(sc_, link);
    EXPECT_TRUE(rep.passed()) << rep.summary();
    EXPECT_EQ(rep.counts.irqs, 2u);
}

namespace {

/// A blocking TCP connection to 127.0.0.1:port with a 10 s receive timeout; < 0 on failure.
int connect_loopback(std::uint16_t port) {
    const int fd = coreio::net::connect_tcp({"127.0.0.1", port});
    if (fd < 0) return fd;
    coreio::net::set_nonblocking(fd, false);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/// Reads exactly n bytes (false on timeout or close).
bool read_exactly(int fd, std::byte* p, std::size_t n) {
    while (n > 0) {
        const ssize_t k = ::recv(fd, p, n, 0);
        if (k <= 0) return false;
        p += k;
        n -= static_cast<std::size_t>(k);
    }
    return true;
}

/// Every completion a link reports, in order.
struct CompletionLog final : LinkObserver {
    std::vector<std::pair<std::uint64_t, std::uint32_t>> done;  // seq, first 4 reply data bytes
    std::vector<std::string> violations;
    void on_complete(std::uint64_t seq, const Frame&, const Frame* reply) override {
        std::uint32_t v = 0;
        if (reply != nullptr) std::memcpy(&v, reply->payload(), 4);
        done.emplace_back(seq, v);
    }
    void on_irq(std::uint64_t, unsigned, unsigned, bool) override {}
    void on_dma(std::uint64_t, DmaDirection, const Frame&, Frame&) override {}
    void on_violation(std::uint64_t, std::string_view what) override { violations.emplace_back(what); }
};

}  // namespace

// A device that answers two pipelined reads newest first: each reply still
// completes its own request, and completions come in request order.
TEST(TcpLinkOrder, RepliesOutOfOrderCompleteInRequestOrder) {
    CompletionLog log;
    TcpLink link(log, {});
    const int main_fd = connect_loopback(link.port());
    ASSERT_GE(main_fd, 0);
    const int dma_fd = connect_loopback(link.port());
    ASSERT_GE(dma_fd, 0);
    ASSERT_EQ(link.accept(std::chrono::seconds(10)), 0);
    const Frame r0 = Frame::mmio_request(Op::Read, 0, kBase + 0x20, 4, 0, 100);
    const Frame r1 = Frame::mmio_request(Op::Read, 0, kBase + 0x24, 4, 0, 101);
    ASSERT_EQ(link.submit(0, r0), 0);
    ASSERT_EQ(link.submit(1, r1), 0);
    ASSERT_EQ(link.pump(std::chrono::milliseconds(0)), 0);  // sends both
    std::array<std::byte, 128> got{};
    ASSERT_TRUE(read_exactly(main_fd, got.data(), got.size()));
    EXPECT_EQ(Frame::from_bytes(got.data()), r0);
    EXPECT_EQ(Frame::from_bytes(got.data() + 64), r1);
    Frame a0 = r0, a1 = r1;
    const std::uint32_t v0 = 0xa0a0a0a0, v1 = 0xb1b1b1b1;
    std::memcpy(a0.payload(), &v0, 4);
    std::memcpy(a1.payload(), &v1, 4);
    ASSERT_EQ(::send(main_fd, a1.data(), 64, MSG_NOSIGNAL), 64);  // the newer one first
    ASSERT_EQ(::send(main_fd, a0.data(), 64, MSG_NOSIGNAL), 64);
    ASSERT_EQ(link.drain(std::chrono::seconds(10)), 0);
    ASSERT_EQ(log.done.size(), 2u);
    EXPECT_EQ(log.done[0], std::make_pair(std::uint64_t{0}, v0));
    EXPECT_EQ(log.done[1], std::make_pair(std::uint64_t{1}, v1));
    EXPECT_TRUE(log.violations.empty());
    link.disconnect();
    ::close(main_fd);
    ::close(dma_fd);
}

TEST_F(ReplayTest, TimedModesFollowTheRecording) {
    ReplayOptions o;
    o.timing = TimingMode::Scaled;
    o.time_scale = 0.5;
    ReplayReport rep = replay_in_process(sc_, examples::timer_regfile_factory(), o);
    EXPECT_TRUE(rep.passed()) << rep.summary();
    const double recorded = static_cast<double>(sc_.steps.back().time_ns - sc_.steps.front().time_ns) * 1e-9;
    EXPECT_GE(rep.seconds, recorded * 0.5 * 0.9);
}

}  // namespace
