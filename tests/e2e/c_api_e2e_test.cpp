// End to end over 127.0.0.1 TCP: a device model written against the C API
// (coreio.h) driven by the mock VM. The C API holds one default client per
// process, so each test connects, runs the loop on a thread, and disconnects.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "coreio.h"
#include "coreio/mockvm/vm.hpp"

using namespace std::chrono_literals;
using coreio::mockvm::Vm;
using coreio::mockvm::VmConfig;

namespace {

constexpr std::uint64_t kBase = 0xfef00000;
constexpr std::uint64_t kBase2 = 0xfef10000;
constexpr std::uint64_t kMem = 0x80000000;
constexpr std::uint64_t kMemSize = 32ull << 20;

// The test pattern: built cumulatively, truncated by the caller.
std::uint64_t testdata(std::uint64_t i) {
    i |= (i + 1) << 8;
    i |= (i + 0x202) << 16;
    i |= (i + 0x4040404) << 32;
    return i;
}

// A register file behind coreio_func_t, as a C device model would write it.
struct RegFile {
    unsigned char bytes[4096] = {};
    std::atomic<int> pair_calls{0};     // readp/writep invocations
    std::atomic<int> single_calls{0};   // read/write invocations (pairs included)
    std::vector<std::uint64_t> write_addrs;  // addresses seen by write (loop thread only)
    std::atomic<int> dma_in_write{1};   // result of a blocking DMA made inside write
};

int rf_read(void* priv, uint64_t addr, size_t len, void* buf, unsigned) {
    auto* rf = static_cast<RegFile*>(priv);
    ++rf->single_calls;
    const std::uint64_t off = addr & 0xfff;
    if (off + len > sizeof rf->bytes) return 1;
    if (off == 0xffc) return 1;  // a register that always answers with a bus error
    std::memcpy(buf, rf->bytes + off, len);
    return 0;
}

int rf_write(void* priv, uint64_t addr, size_t len, void* buf, unsigned) {
    auto* rf = static_cast<RegFile*>(priv);
    ++rf->single_calls;
    rf->write_addrs.push_back(addr);
    const std::uint64_t off = addr & 0xfff;
    if (off + len > sizeof rf->bytes) return 1;
    std::memcpy(rf->bytes + off, buf, len);
    if (off == 0xf00) {  // IRQ register: bit i drives line i
        for (unsigned line = 0; line < 8; ++line) coreio_irq_update(0, line, (rf->bytes[0xf00] >> line) & 1);
    }
    if (off == 0xf08) {  // DMA doorbell: copy 64 bytes at kMem to kMem + 4096, blocking, inside the handler
        unsigned char tmp[64];
        int r = coreio_dma_read(0, 0, kMem, sizeof tmp, tmp, 0, nullptr, nullptr);
        if (r == 0) r = coreio_dma_write(0, 0, kMem + 4096, sizeof tmp, tmp, 0, nullptr, nullptr);
        rf->dma_in_write = r;
    }
    return 0;
}

int rf_readp(void* priv, uint64_t addr, size_t len, void* b1, void* b2, unsigned f) {
    auto* rf = static_cast<RegFile*>(priv);
    ++rf->pair_calls;
    const int r1 = rf_read(priv, addr, len, b1, f);
    const int r2 = rf_read(priv, addr + len, len, b2, f);
    return r1 | r2;
}

int rf_writep(void* priv, uint64_t addr, size_t len, void* b1, void* b2, unsigned f) {
    auto* rf = static_cast<RegFile*>(priv);
    ++rf->pair_calls;
    const int r1 = rf_write(priv, addr, len, b1, f);
    const int r2 = rf_write(priv, addr + len, len, b2, f);
    return r1 | r2;
}

VmConfig config() {
    VmConfig c;
    c.ranges = {{kBase, 0x1000}, {kBase2, 0x1000}};
    c.memory = {{kMem, kMemSize}};
    c.timeout = 10s;
    return c;
}

// Connects the C API to `vm`, registers `funcs` on range 0 and runs the loop on
// a thread until destroyed.
class Device {
public:
    Device(Vm& vm, const coreio_func_t& funcs, RegFile& rf) {
        const std::string target = vm.endpoint();
        connect_result = coreio_connect(target.c_str());
        if (connect_result != 0) return;
        register_result = coreio_register(0, &funcs, &rf);
        loop_ = std::thread([this] {
            while (!stop_) {
                const int r = coreio_mainloop(20000);
                if (r != 0) {
                    loop_result = r;
                    break;
                }
            }
        });
    }
    ~Device() { stop(); }
    void stop() {
        stop_ = true;
        if (loop_.joinable()) loop_.join();
        coreio_disconnect();
    }
    int connect_result = -1;
    int register_result = -1;
    std::atomic<int> loop_result{0};

private:
    std::atomic<bool> stop_{false};
    std::thread loop_;
};

const coreio_func_t kSingleFuncs = {rf_read, rf_write, nullptr, nullptr};
const coreio_func_t kPairFuncs = {rf_read, rf_write, rf_readp, rf_writep};

class CApiE2E : public ::testing::Test {
protected:
    void SetUp() override {
        vm = std::make_unique<Vm>(config());
    }
    void attach(const coreio_func_t& funcs) {
        device = std::make_unique<Device>(*vm, funcs, rf);
        ASSERT_EQ(device->connect_result, 0);
        ASSERT_EQ(device->register_result, 0);
        ASSERT_TRUE(vm->wait_for_claim(0, 5s));
    }
    void TearDown() override {
        device.reset();
        vm.reset();
    }
    RegFile rf;
    std::unique_ptr<Vm> vm;
    std::unique_ptr<Device> device;
};

TEST_F(CApiE2E, WriteThenReadAtEveryWidth) {
    attach(kSingleFuncs);
    for (unsigned width : {1u, 2u, 4u, 8u}) {
        const std::uint64_t mask = width == 8 ? ~0ull : ((1ull << (8 * width)) - 1);
        for (std::uint64_t i = 0; i < 16; ++i) {
            ASSERT_EQ(vm->write_value(kBase + i * width, width, testdata(i)), 0);
        }
        for (std::uint64_t i = 0; i < 16; ++i) {
            const auto r = vm->read_value(kBase + i * width, width);
            ASSERT_TRUE(r.ok()) << "width " << width << " i " << i << " status " << r.status;
            EXPECT_EQ(r.value, testdata(i) & mask) << "width " << width << " i " << i;
        }
    }
}

TEST_F(CApiE2E, WideAccessesUpTo32Bytes) {
    attach(kSingleFuncs);
    for (unsigned size : {3u, 16u, 24u, 32u}) {
        std::vector<unsigned char> in(size), out(size);
        for (unsigned i = 0; i < size; ++i) in[i] = static_cast<unsigned char>(size * 7 + i);
        ASSERT_EQ(vm->write(kBase + 0x100, size, in.data(), true), 0);
        ASSERT_EQ(vm->read(kBase + 0x100, size, out.data()), 0);
        EXPECT_EQ(in, out) << "size " << size;
    }
}

TEST_F(CApiE2E, BusErrorBecomesEio) {
    attach(kSingleFuncs);
    EXPECT_EQ(vm->readl(kBase + 0xffc).status, -EIO);
}

TEST_F(CApiE2E, PairOpsWithPairHandlers) {
    attach(kPairFuncs);
    const std::uint32_t a = 0x11223344, b = 0x55667788;
    ASSERT_EQ(vm->write_pair(kBase + 0x40, 4, &a, &b, true), 0);
    std::uint32_t x = 0, y = 0;
    ASSERT_EQ(vm->read_pair(kBase + 0x40, 4, &x, &y), 0);
    EXPECT_EQ(x, a);
    EXPECT_EQ(y, b);
    EXPECT_EQ(vm->readl(kBase + 0x44).value, b);  // element 2 lives at addr + size
    EXPECT_EQ(rf.pair_calls.load(), 2);
}

TEST_F(CApiE2E, PairOpsWithoutPairHandlersCallSingleHandlerAtBothAddresses) {
    attach(kSingleFuncs);
    const std::uint64_t a = 0x0102030405060708, b = 0x1112131415161718;
    ASSERT_EQ(vm->write_pair(kBase + 0x80, 8, &a, &b, true), 0);
    std::uint64_t x = 0, y = 0;
    ASSERT_EQ(vm->read_pair(kBase + 0x80, 8, &x, &y), 0);
    EXPECT_EQ(x, a);
    EXPECT_EQ(y, b);
    ASSERT_EQ(vm->ping(), 0);  // the loop thread is done with write_addrs
    ASSERT_EQ(rf.write_addrs.size(), 2u);
    EXPECT_EQ(rf.write_addrs[0], kBase + 0x80);
    EXPECT_EQ(rf.write_addrs[1], kBase + 0x88);
}

TEST_F(CApiE2E, UnclaimedRangeReadsAaAndDropsWrites) {
    attach(kSingleFuncs);
    EXPECT_FALSE(vm->claimed(1));
    EXPECT_EQ(vm->readb(kBase2).value, 0xaaull);
    EXPECT_EQ(vm->readw(kBase2).value, 0xaaaaull);
    EXPECT_EQ(vm->readl(kBase2).value, 0xaaaaaaaaull);
    EXPECT_EQ(vm->readq(kBase2).value, 0xaaaaaaaaaaaaaaaaull);
    EXPECT_EQ(vm->writel(kBase2, 0x12345678, true), 0);
    EXPECT_EQ(vm->readl(kBase2).value, 0xaaaaaaaaull);
    EXPECT_EQ(rf.single_calls.load(), 0);  // the device never saw range 1
}

TEST_F(CApiE2E, IrqEdges) {
    attach(kSingleFuncs);
    for (int edge = 0; edge < 5; ++edge) {
        ASSERT_EQ(vm->writeb(kBase + 0xf00, 0x05), 0);
        ASSERT_TRUE(vm->wait_irq(0, 0, true, 5s));
        ASSERT_TRUE(vm->wait_irq(0, 2, true, 5s));
        EXPECT_FALSE(vm->irq_level(0, 1));
        ASSERT_EQ(vm->writeb(kBase + 0xf00, 0x00), 0);
        ASSERT_TRUE(vm->wait_irq(0, 0, false, 5s));
        ASSERT_TRUE(vm->wait_irq(0, 2, false, 5s));
    }
    EXPECT_EQ(vm->irq_edges(0, 0), 5u);
    EXPECT_EQ(vm->irq_edges(0, 2), 5u);
    EXPECT_EQ(vm->irq_edges(0, 1), 0u);
}

TEST_F(CApiE2E, IrqUpdateFromTestThreadSentOnlyOnChange) {
    attach(kSingleFuncs);
    ASSERT_EQ(coreio_irq_update(0, 7, 1), 0);
    ASSERT_EQ(coreio_irq_update(0, 7, 1), 0);  // no change: nothing sent
    ASSERT_TRUE(vm->wait_irq(0, 7, true, 5s));
    ASSERT_EQ(coreio_irq_update(0, 7, 0), 0);
    ASSERT_TRUE(vm->wait_irq(0, 7, false, 5s));
    EXPECT_EQ(vm->irq_edges(0, 7), 1u);
    ASSERT_EQ(vm->ping(), 0);  // everything sent so far has been counted
    const auto frames = vm->counters().frames_in;
    ASSERT_EQ(coreio_irq_update(0, 7, 0), 0);
    ASSERT_EQ(vm->ping(), 0);
    EXPECT_EQ(vm->counters().frames_in, frames + 1);  // only the ping echo arrived
    EXPECT_EQ(coreio_irq_update(8, 0, 1), -EINVAL);
    EXPECT_EQ(coreio_irq_update(0, 8, 1), -EINVAL);
}

// DMA of every interesting size at unaligned addresses, blocking, both ways.
TEST_F(CApiE2E, BlockingDmaSizesAndAlignments) {
    attach(kSingleFuncs);
    std::mt19937_64 rng(42);
    for (std::size_t size : {std::size_t{1}, std::size_t{7}, std::size_t{31}, std::size_t{32}, std::size_t{33},
                             std::size_t{100}, std::size_t{4096}, std::size_t{65537}, std::size_t{1} << 20,
                             std::size_t{16} << 20}) {
        for (std::uint64_t misalign : {0ull, 1ull, 17ull, 31ull}) {
            if (size >= (1u << 20) && misalign != 17) continue;  // big ones once, unaligned
            const std::uint64_t addr = kMem + 0x1000 + misalign;
            std::vector<unsigned char> out(size), in(size, 0);
            for (auto& b : out) b = static_cast<unsigned char>(rng());
            ASSERT_EQ(coreio_dma_write(0, 0, addr, size, out.data(), 0, nullptr, nullptr), 0) << size;
            // The guest memory holds exactly what was written, bytes around it untouched.
            std::vector<std::byte> mem(size);
            ASSERT_TRUE(vm->memory().read(addr, mem));
            ASSERT_EQ(std::memcmp(mem.data(), out.data(), size), 0) << size;
            ASSERT_EQ(coreio_dma_read(0, 0, addr, size, in.data(), 0, nullptr, nullptr), 0) << size;
            ASSERT_EQ(in, out) << "size " << size << " misalign " << misalign;
        }
    }
}

TEST_F(CApiE2E, NonBlockingDmaCompletesOnceFromTheLoop) {
    attach(kSingleFuncs);
    std::vector<unsigned char> buf(100000);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<unsigned char>(i * 13);
    ASSERT_TRUE(vm->memory().write(kMem + 5, std::as_bytes(std::span(buf))));
    std::vector<unsigned char> in(buf.size());
    struct Done {
        std::atomic<int> calls{0};
        std::atomic<int> result{1};
    } done;
    auto cpl = [](void* p, int r) {
        auto* d = static_cast<Done*>(p);
        d->result = r;
        ++d->calls;
    };
    ASSERT_EQ(coreio_dma_read(0, 0, kMem + 5, in.size(), in.data(), 0, cpl, &done), 0);
    for (int i = 0; i < 500 && done.calls == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(done.calls.load(), 1);
    EXPECT_EQ(done.result.load(), 0);
    EXPECT_EQ(in, buf);
    EXPECT_EQ(coreio_dma_read(0, 0, kMem, 0, in.data(), 0, cpl, &done), -EINVAL);  // zero length
    EXPECT_EQ(coreio_dma_read(0, 16, kMem, 4, in.data(), 0, nullptr, nullptr), -EINVAL);  // sid out of range
}

TEST_F(CApiE2E, DmaFaultOutsideGuestMemory) {
    attach(kSingleFuncs);
    std::vector<unsigned char> buf(256);
    EXPECT_EQ(coreio_dma_read(0, 0, 0x10000000, buf.size(), buf.data(), 0, nullptr, nullptr), -EFAULT);
    // A transfer that starts inside memory and runs past its end faults as a whole.
    EXPECT_EQ(coreio_dma_write(0, 0, kMem + kMemSize - 100, buf.size(), buf.data(), 0, nullptr, nullptr), -EFAULT);
    // The connection is still good afterwards.
    EXPECT_EQ(coreio_dma_read(0, 0, kMem, buf.size(), buf.data(), 0, nullptr, nullptr), 0);
    EXPECT_GT(vm->counters().dma_faults, 0u);
}

TEST_F(CApiE2E, BlockingDmaInsideMmioWriteCallback) {
    attach(kSingleFuncs);
    std::vector<std::byte> src(64);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::byte>(0x40 + i);
    ASSERT_TRUE(vm->memory().write(kMem, src));
    // Acknowledged write: the reply comes only after the handler's DMA finished.
    ASSERT_EQ(vm->writel(kBase + 0xf08, 1, true), 0);
    EXPECT_EQ(rf.dma_in_write.load(), 0);
    std::vector<std::byte> dst(64);
    ASSERT_TRUE(vm->memory().read(kMem + 4096, dst));
    EXPECT_EQ(dst, src);
    // MMIO still works afterwards (nothing was lost while the handler waited).
    ASSERT_EQ(vm->writel(kBase + 0x10, 0xabcd, true), 0);
    EXPECT_EQ(vm->readl(kBase + 0x10).value, 0xabcdu);
}

TEST_F(CApiE2E, VmDisconnectMidDmaGivesConnReset) {
    attach(kSingleFuncs);
    std::vector<unsigned char> big(16u << 20);
    std::atomic<int> result{1};
    std::thread dma([&] {
        // Repeat until the drop lands inside a transfer (bounded).
        for (int i = 0; i < 200; ++i) {
            const int r = coreio_dma_read(0, 0, kMem, big.size(), big.data(), 0, nullptr, nullptr);
            if (r != 0) {
                result = r;
                return;
            }
        }
        result = 0;
    });
    // Drop once the VM is serving the first transfer's chunks.
    for (int i = 0; i < 1000 && vm->counters().dma_chunks == 0; ++i) std::this_thread::sleep_for(1ms);
    vm->drop_clients();
    dma.join();
    EXPECT_EQ(result.load(), -ECONNRESET);
    // The loop reports the lost connection too.
    for (int i = 0; i < 500 && device->loop_result == 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(device->loop_result.load(), -ECONNRESET);
}

TEST_F(CApiE2E, DisconnectReconnectRegisterSameRange) {
    attach(kSingleFuncs);
    ASSERT_EQ(vm->writel(kBase + 0x20, 0x1234, true), 0);
    EXPECT_EQ(coreio_register(0, &kSingleFuncs, &rf), -EBUSY);  // already registered in this connection
    device->stop();
    // The VM notices the close asynchronously; wait so the next claim is the new client's.
    for (int i = 0; i < 500 && vm->claimed(0); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_FALSE(vm->claimed(0));
    for (int round = 0; round < 3; ++round) {
        const std::string target = vm->endpoint();
        ASSERT_EQ(coreio_connect(target.c_str()), 0);
        ASSERT_EQ(coreio_register(0, &kSingleFuncs, &rf), 0) << "round " << round;
        std::atomic<bool> stop{false};
        std::thread loop([&] {
            while (!stop && coreio_mainloop(20000) == 0) {
            }
        });
        ASSERT_TRUE(vm->wait_for_claim(0, 5s));
        const auto r = vm->readl(kBase + 0x20);
        EXPECT_EQ(r.status, 0);
        EXPECT_EQ(r.value, 0x1234u);  // same device state, new connection
        stop = true;
        loop.join();
        coreio_disconnect();
        for (int i = 0; i < 500 && vm->claimed(0); ++i) std::this_thread::sleep_for(10ms);
        ASSERT_FALSE(vm->claimed(0));
    }
}

TEST(CApiE2ENoVm, ErrorsWithoutConnection) {
    coreio_disconnect();
    unsigned char b[4];
    EXPECT_EQ(coreio_dma_read(0, 0, 0, 4, b, 0, nullptr, nullptr), -ENOTCONN);
    EXPECT_EQ(coreio_irq_update(0, 0, 1), -ENOTCONN);
    EXPECT_EQ(coreio_register(0, &kSingleFuncs, nullptr), -ENOTCONN);
    EXPECT_LT(coreio_connect("127.0.0.1:1"), 0);  // nothing listens on port 1
    EXPECT_EQ(coreio_connect("127.0.0.1:notaport"), -EINVAL);
}

TEST(CApiE2ENoVm, NullTargetReadsCorehdlVm) {
    Vm vm(config());
    const std::string target = vm.endpoint();
    ::setenv("COREHDL_VM", target.c_str(), 1);
    ASSERT_EQ(coreio_connect(nullptr), 0);
    EXPECT_TRUE(vm.wait_for_client(5s));
    coreio_disconnect();
    ::unsetenv("COREHDL_VM");
    EXPECT_EQ(coreio_connect(nullptr), -EINVAL);
}

}  // namespace
