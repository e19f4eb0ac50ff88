// Example device model: a DMA copy engine, written as a coreio::MmioHandler.
// Writing CTRL.START copies LEN bytes from guest address SRC to DST with the
// host's blocking DMA (inside the MMIO write, as a simple engine would), then
// sets STATUS and raises IRQ line 0 when CTRL.IRQ_EN is set.
//
// Register map (offsets within the range; accesses of 1..8 bytes inside
// 0x00..0x2f work byte-wise, anything else is a bus error):
//   0x00 ID      RO  0x434f4443 ("CODC")
//   0x08 SRC     RW  64-bit source address (0x08 low, 0x0c high)
//   0x10 DST     RW  64-bit destination address (0x10 low, 0x14 high)
//   0x18 LEN     RW  bytes to copy; more than kMaxLen sets STATUS.ERROR
//   0x1c CTRL    RW  bit0 START (write 1: copy now; reads 0), bit1 IRQ_EN
//   0x20 STATUS  W1C bit0 DONE, bit1 ERROR (bad LEN or a DMA fault)
//   0x24 COPIED  RO  bytes the last transfer copied
//   0x28 COUNT   RO  transfers started since reset
// IRQ line 0 = (STATUS.DONE || STATUS.ERROR) && CTRL.IRQ_EN.
//
// Seeded bug (Options::seeded_bug): LEN is not checked against kMaxLen before
// a copy, so the copy routine's own invariant check aborts the process: a
// crash the fuzzer finds (in a forked worker) and minimises to two writes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "coreio/client.hpp"
#include "coreio/replayer/device.hpp"

namespace coreio::examples {

class DmaCopy final : public MmioHandler {
public:
    struct Options {
        unsigned rid = 0;         // range this model serves (its IRQ goes to this rid)
        bool seeded_bug = false;  // enable the seeded bug (tests and fuzzing demos)
    };
    /// Register offsets.
    enum : std::uint32_t {
        kId = 0x00, kSrc = 0x08, kDst = 0x10, kLen = 0x18, kCtrl = 0x1c, kStatus = 0x20, kCopied = 0x24,
        kCount = 0x28, kSize = 0x30,
    };
    static constexpr std::uint32_t kIdValue = 0x434f4443;
    static constexpr std::uint32_t kCtrlStart = 1, kCtrlIrqEn = 2;
    static constexpr std::uint32_t kStatusDone = 1, kStatusError = 2;
    /// Largest copy: the engine's bounce buffer.
    static constexpr std::uint32_t kMaxLen = 4096;

    /// Does DMA and raises its IRQ through `host` (not owned, must outlive the model).
    DmaCopy(replayer::DeviceHost& host, Options options);

    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override;
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override;
    void reset() override;

private:
    static constexpr unsigned kNumRegs = kSize / 4;
    std::uint32_t read_reg(unsigned index) const;
    void write_reg(unsigned index, std::uint32_t value, std::uint32_t byte_mask);
    void start();
    std::uint32_t copy(std::uint32_t len);
    void update_irq();

    replayer::DeviceHost& host_;
    Options options_;
    std::uint64_t src_ = 0, dst_ = 0;
    std::uint32_t len_ = 0, ctrl_ = 0, status_ = 0, copied_ = 0, count_ = 0;
    bool irq_ = false;                          // level last sent
    std::array<std::byte, kMaxLen> bounce_{};   // data in flight between read and write
};

/// A replayer::DeviceFactory building a DmaCopy on `options.rid`.
replayer::DeviceFactory dma_copy_factory(DmaCopy::Options options = {});

}  // namespace coreio::examples
