// Helpers for the guest CPU tests: an ELF64 image builder for hand-assembled
// code, and a register-file device served over 127.0.0.1 TCP by libcoreio.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <elf.h>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "coreio/client.hpp"

namespace coreio::mockvm::guest::testing {

inline constexpr std::uint64_t kLoadAddress = 0x80000000;

/// An ELF64 AArch64 executable with one PT_LOAD segment holding `words` at kLoadAddress.
inline std::vector<std::byte> make_elf(const std::vector<std::uint32_t>& words, std::uint64_t address = kLoadAddress,
                                       std::uint16_t machine = EM_AARCH64) {
    Elf64_Ehdr h{};
    std::memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_EXEC;
    h.e_machine = machine;
    h.e_version = EV_CURRENT;
    h.e_entry = address;
    h.e_phoff = sizeof(Elf64_Ehdr);
    h.e_ehsize = sizeof(Elf64_Ehdr);
    h.e_phentsize = sizeof(Elf64_Phdr);
    h.e_phnum = 1;
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = PF_R | PF_X;
    p.p_offset = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
    p.p_vaddr = p.p_paddr = address;
    p.p_filesz = p.p_memsz = words.size() * 4;
    std::vector<std::byte> out(p.p_offset + p.p_filesz);
    std::memcpy(out.data(), &h, sizeof h);
    std::memcpy(out.data() + sizeof h, &p, sizeof p);
    std::memcpy(out.data() + p.p_offset, words.data(), p.p_filesz);
    return out;
}

/// Writes bytes to a file under the test temp dir and returns its path.
inline std::string write_temp(const std::string& name, const std::vector<std::byte>& bytes) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
    return path;
}

/// `main` at word 0 and `handler` at byte offset 0x280 (the IRQ vector of VBAR = kLoadAddress).
inline std::vector<std::uint32_t> with_irq_vector(std::vector<std::uint32_t> main,
                                                  const std::vector<std::uint32_t>& handler) {
    main.resize(0x280 / 4, 0xd503201f);  // nop
    main.insert(main.end(), handler.begin(), handler.end());
    return main;
}

/// A 4 KiB register file: offset 0xf00 bit i drives IRQ line i; reads at
/// `bus_error_offset` answer with a bus error. Records the size of every access.
class RegFileDevice final : public MmioHandler {
public:
    static constexpr std::uint64_t kBusErrorOffset = 0x40;

    explicit RegFileDevice(Client& client) : client_(client) {}
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned) override {
        record(len);
        if ((addr & 0xfff) == kBusErrorOffset) return 1;
        std::memcpy(buf, regs_ + (addr & 0xfff), len);
        return 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned) override {
        record(len);
        std::memcpy(regs_ + (addr & 0xfff), buf, len);
        const std::uint8_t irq = regs_[0xf00];
        for (unsigned line = 0; line < 8; ++line)
            if (((irq ^ irq_sent_) >> line) & 1) client_.irq_update(0, line, (irq >> line) & 1);
        irq_sent_ = irq;
        return 0;
    }
    std::vector<std::size_t> sizes() const {
        std::lock_guard lock(mu_);
        return sizes_;
    }

private:
    void record(std::size_t len) {
        std::lock_guard lock(mu_);
        sizes_.push_back(len);
    }
    Client& client_;
    std::uint8_t regs_[4096 + 32] = {};
    std::uint8_t irq_sent_ = 0;
    mutable std::mutex mu_;
    std::vector<std::size_t> sizes_;
};

/// A RegFileDevice claiming range 0 of the VM at `endpoint`, served by a thread.
class ServedDevice {
public:
    explicit ServedDevice(const std::string& endpoint) : device(client) {
        EXPECT_EQ(client.connect(endpoint), 0);
        EXPECT_EQ(client.register_range(0, device), 0);
        thread_ = std::thread([this] {
            for (int i = 0; i < 100000 && !stop_ && client.run_for(10000) == 0; ++i) {
            }
        });
    }
    ~ServedDevice() {
        stop_ = true;
        thread_.join();
        client.disconnect();
    }
    Client client;
    RegFileDevice device;

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace coreio::mockvm::guest::testing
