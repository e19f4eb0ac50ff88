#include "coreio/mockvm/guest/guest.hpp"

#include <unicorn/unicorn.h>

#include <array>
#include <cstring>
#include <iostream>
#include <sstream>
#include <vector>

#include "coreio/mockvm/guest/console.hpp"
#include "coreio/mockvm/guest/gic.hpp"
#include "coreio/mockvm/guest/platform.hpp"

namespace coreio::mockvm::guest {

namespace {

constexpr std::uint64_t kUcPage = 0x1000;          // unicorn's mapping granule
constexpr std::uint32_t kWfi = 0xd503207f;         // the wfi encoding
constexpr std::uint32_t kPstateIrqMask = 1u << 7;  // PSTATE.I
constexpr std::uint32_t kPstateDaif = 0xfu << 6;
constexpr std::uint32_t kModeMask = 0xf, kModeEl1h = 0x5;
constexpr std::uint64_t kIrqVectorCurrentElSpx = 0x280;

std::string hex(std::uint64_t v) {
    std::ostringstream s;
    s << "0x" << std::hex << v;
    return s.str();
}

const char* exception_name(std::uint32_t intno) {
    switch (intno) {  // QEMU's EXCP_* numbers, as unicorn reports them
    case 1: return "undefined instruction";
    case 2: return "svc";
    case 3: return "instruction abort";
    case 4: return "data abort";
    case 7: return "breakpoint";
    case 11: return "hvc";
    case 13: return "smc";
    default: return "exception";
    }
}

bool overlaps(std::uint64_t a, std::uint64_t a_size, std::uint64_t b, std::uint64_t b_size) {
    return a < b + b_size && b < a + a_size;
}

}  // namespace

struct Guest::Impl {
    Impl(Vm& v, GuestConfig c) : vm(v), config(std::move(c)), console(config.console ? *config.console : std::cout) {}
    ~Impl() {
        if (uc) uc_close(uc);
    }

    /// Why the emulator stopped, when we stopped it.
    enum class Stop { None, Irq, Exit, Fault };

    Vm& vm;
    GuestConfig config;
    Console console;
    Gic gic;
    ElfImage image;
    uc_engine* uc = nullptr;
    std::vector<std::vector<std::byte>> shadows;  // per MMIO range: what the guest's load reads
    std::vector<uc_hook> hooks;
    Stop stop = Stop::None;
    std::string fault;
    std::uint64_t instructions = 0, mmio_accesses = 0, interrupts = 0;
    bool irq_waits_for_unmask = false;  // the GIC signals IRQ but PSTATE.I is set
    std::array<std::uint8_t, kNumRanges> seen_levels{};
    std::array<std::array<std::uint64_t, kNumIrqLines>, kNumRanges> seen_edges{};

    void check_layout() const;
    void setup_cpu();
    void add_hook(int type, void* callback, std::uint64_t begin, std::uint64_t end, int extra = 0);
    void map_builtin(std::uint64_t base, uc_cb_mmio_read_t read, uc_cb_mmio_write_t write);
    void map_ranges();
    bool map_memory_page(std::uint64_t addr);

    /// Stopping inside a memory callback would make the emulator resume at the
    /// start of the current block (replaying its accesses), so callbacks only
    /// ask; the next block hook stops before that block runs.
    void request_stop(Stop why) {
        if (why > stop) stop = why;
    }
    /// Stops at once: nothing after the failing access may reach a device.
    void fail(std::string why) {
        if (fault.empty()) fault = std::move(why);
        request_stop(Stop::Fault);
        uc_emu_stop(uc);
    }
    bool failed() const { return stop == Stop::Fault; }
    std::uint64_t pc() const {
        std::uint64_t v = 0;
        uc_reg_read(uc, UC_ARM64_REG_PC, &v);
        return v;
    }
    std::uint32_t pstate() const {
        std::uint32_t v = 0;
        uc_reg_read(uc, UC_ARM64_REG_PSTATE, &v);
        return v;
    }

    bool irq_lines_changed() const;
    bool irq_edges_changed() const;
    void sync_irqs();
    void deliver_irq_if_unmasked();
    bool sleep_until_interrupt();
    bool stopped_at_wfi(std::uint64_t at) const;
    GuestResult result() const;
};

void Guest::Impl::check_layout() const {
    const std::uint64_t builtin[] = {kGicDistributorBase, kGicCpuInterfaceBase, kUartBase, kExitBase};
    for (const auto& m : vm.config().memory) {
        if (m.base % kUcPage || m.size % kUcPage)
            throw GuestError("guest memory region " + hex(m.base) + ":" + hex(m.size) +
                             " is not 4 KiB aligned (the guest CPU maps memory in 4 KiB pages)");
        for (const auto b : builtin)
            if (overlaps(m.base, m.size, b, kDevicePageSize))
                throw GuestError("guest memory region " + hex(m.base) + ":" + hex(m.size) +
                                 " overlaps the guest's built-in device at " + hex(b));
    }
    for (const auto& r : vm.config().ranges)
        for (const auto b : builtin)
            if (overlaps(r.base, r.size, b, kDevicePageSize))
                throw GuestError("MMIO range " + hex(r.base) + ":" + hex(r.size) +
                                 " overlaps the guest's built-in device at " + hex(b));
}

void Guest::Impl::add_hook(int type, void* callback, std::uint64_t begin, std::uint64_t end, int extra) {
    uc_hook h = 0;
    const uc_err e = extra ? uc_hook_add(uc, &h, type, callback, this, begin, end, extra)
                           : uc_hook_add(uc, &h, type, callback, this, begin, end);
    if (e != UC_ERR_OK) throw GuestError(std::string("guest CPU: cannot add a hook: ") + uc_strerror(e));
    hooks.push_back(h);
}

void Guest::Impl::map_builtin(std::uint64_t base, uc_cb_mmio_read_t read, uc_cb_mmio_write_t write) {
    if (const uc_err e = uc_mmio_map(uc, base, kDevicePageSize, read, this, write, this); e != UC_ERR_OK)
        throw GuestError("guest CPU: cannot map the built-in device at " + hex(base) + ": " + uc_strerror(e));
}

/// A guest memory page is mapped on first touch: the emulator then reads and
/// writes the very bytes GuestMemory holds (and DMA serves).
bool Guest::Impl::map_memory_page(std::uint64_t addr) {
    for (const auto& r : vm.memory().regions()) {
        if (addr < r.base || addr - r.base >= r.size) continue;
        const std::uint64_t start = r.base + (addr - r.base) / GuestMemory::kPageSize * GuestMemory::kPageSize;
        const std::uint64_t len = std::min<std::uint64_t>(GuestMemory::kPageSize, r.base + r.size - start);
        const auto bytes = vm.memory().view(start, len);
        if (bytes.size() != len) {
            fail("guest memory at " + hex(addr) + ": cannot allocate guest memory");
            return false;
        }
        return uc_mem_map_ptr(uc, start, len, UC_PROT_ALL, bytes.data()) == UC_ERR_OK;
    }
    return false;
}

bool Guest::Impl::irq_lines_changed() const {
    const std::size_t n = vm.config().ranges.size();
    for (std::size_t rid = 0; rid < n; ++rid)
        if (vm.irq_lines(static_cast<unsigned>(rid)) != seen_levels[rid]) return true;
    return false;
}

bool Guest::Impl::irq_edges_changed() const {
    const std::size_t n = vm.config().ranges.size();
    for (std::size_t rid = 0; rid < n; ++rid)
        for (unsigned line = 0; line < kNumIrqLines; ++line)
            if (vm.irq_edges(static_cast<unsigned>(rid), line) != seen_edges[rid][line]) return true;
    return false;
}

/// Copies the VM's IRQ lines (levels, and rising edges since the last look) into the GIC.
void Guest::Impl::sync_irqs() {
    const std::size_t n = vm.config().ranges.size();
    for (std::size_t rid = 0; rid < n; ++rid) {
        const auto r = static_cast<unsigned>(rid);
        seen_levels[rid] = vm.irq_lines(r);
        for (unsigned line = 0; line < kNumIrqLines; ++line) {
            gic.set_level(device_intid(r, line), (seen_levels[rid] >> line) & 1);
            const std::uint64_t edges = vm.irq_edges(r, line);
            if (edges != seen_edges[rid][line]) gic.latch_edge(device_intid(r, line));
            seen_edges[rid][line] = edges;
        }
    }
}

/// Takes an IRQ exception by hand (the emulator has no GIC): the architecture's
/// entry sequence for an IRQ taken from EL1 with SP_EL1 to EL1.
void Guest::Impl::deliver_irq_if_unmasked() {
    irq_waits_for_unmask = false;
    if (!gic.irq_signalled()) return;
    const std::uint32_t state = pstate();
    if (state & kPstateIrqMask) {
        irq_waits_for_unmask = true;
        return;
    }
    if ((state & kModeMask) != kModeEl1h) {
        fail("an IRQ is due but the guest runs in mode " + hex(state & kModeMask) +
             " (only EL1 with SP_EL1, mode 0x5, takes interrupts)");
        return;
    }
    std::uint64_t return_address = pc(), vbar = 0;
    uc_reg_read(uc, UC_ARM64_REG_VBAR_EL1, &vbar);
    uc_arm64_cp_reg spsr{.crn = 4, .crm = 0, .op0 = 3, .op1 = 0, .op2 = 0, .val = state};
    uc_reg_write(uc, UC_ARM64_REG_CP_REG, &spsr);
    uc_reg_write(uc, UC_ARM64_REG_ELR_EL1, &return_address);
    const std::uint32_t entered = (state & ~kModeMask & ~(1u << 21) /* SS */) | kPstateDaif | kModeEl1h;
    uc_reg_write(uc, UC_ARM64_REG_PSTATE, &entered);
    const std::uint64_t vector = vbar + kIrqVectorCurrentElSpx;
    uc_reg_write(uc, UC_ARM64_REG_PC, &vector);
    ++interrupts;
}

bool Guest::Impl::stopped_at_wfi(std::uint64_t at) const {
    std::uint32_t insn = 0;
    return at >= 4 && uc_mem_read(uc, at - 4, &insn, sizeof insn) == UC_ERR_OK && insn == kWfi;
}

/// wfi: sleeps until the GIC signals an interrupt (masked by PSTATE.I or not,
/// as the architecture says); false (and the fault set) on timeout.
bool Guest::Impl::sleep_until_interrupt() {
    const auto limit = config.wfi_timeout.count() > 0 ? config.wfi_timeout : vm.config().timeout;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        sync_irqs();
        if (gic.irq_signalled()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        vm.wait_until([this] { return irq_lines_changed() || irq_edges_changed(); },
                      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                          std::chrono::milliseconds(1));
    }
    fault = "wfi at " + hex(pc() - 4) + ": no interrupt within " + std::to_string(limit.count()) +
            " ms (is the device's IRQ enabled in the GIC and the GIC enabled?)";
    return false;
}

GuestResult Guest::Impl::result() const {
    GuestResult r;
    r.exited = console.exit_status().has_value() && fault.empty();
    r.exit_value = console.exit_status().value_or(0);
    r.error = r.exited ? std::string() : fault;
    r.instructions = instructions;
    r.mmio_accesses = mmio_accesses;
    r.interrupts = interrupts;
    return r;
}

}  // namespace coreio::mockvm::guest

// ---- emulator callbacks (user data: the Impl) ----

namespace coreio::mockvm::guest {

namespace {

using Impl = Guest::Impl;

/// A guest access to an MMIO range: one CoreIO request through the Vm.
void on_mmio(uc_engine*, uc_mem_type type, std::uint64_t addr, int size, std::int64_t value, void* user) {
    auto& g = *static_cast<Impl*>(user);
    if (g.failed()) return;
    const int rid = g.vm.range_of(addr, static_cast<std::uint64_t>(size));
    if (rid < 0) {
        g.fail("guest access of " + std::to_string(size) + " bytes at " + hex(addr) + " crosses the end of its range");
        return;
    }
    ++g.mmio_accesses;
    if (g.config.time_ns) g.config.time_ns->store(g.instructions * kNsPerCounterTick, std::memory_order_relaxed);
    const auto width = static_cast<unsigned>(size);
    if (type == UC_MEM_READ) {
        const ReadResult r = g.vm.read_value(addr, width);
        if (!r.ok()) {
            g.fail("guest read of " + std::to_string(size) + " bytes at " + hex(addr) + " (range " +
                   std::to_string(rid) + "): " + std::strerror(-r.status) +
                   (r.status == -EIO ? " (bus error; the run stops, no abort is delivered)" : ""));
            return;
        }
        const auto base = g.vm.config().ranges[static_cast<std::size_t>(rid)].base;
        std::memcpy(g.shadows[static_cast<std::size_t>(rid)].data() + (addr - base), &r.value, width);
    } else if (const int rc = g.vm.write_value(addr, width, static_cast<std::uint64_t>(value), true); rc != 0) {
        g.fail("guest write of " + std::to_string(size) + " bytes at " + hex(addr) + " (range " +
               std::to_string(rid) + "): " + std::strerror(-rc) +
               (rc == -EIO ? " (bus error; the run stops, no abort is delivered)" : ""));
        return;
    }
    if (g.irq_lines_changed() || g.irq_edges_changed()) g.request_stop(Impl::Stop::Irq);
}

bool on_unmapped(uc_engine*, uc_mem_type type, std::uint64_t addr, int size, std::int64_t, void* user) {
    auto& g = *static_cast<Impl*>(user);
    if (g.map_memory_page(addr)) return true;
    const char* what = type == UC_MEM_FETCH_UNMAPPED ? "fetch" : type == UC_MEM_WRITE_UNMAPPED ? "write" : "read";
    g.fail(std::string("guest ") + what + " of " + std::to_string(size) + " bytes at " + hex(addr) +
           ": nothing there (no --memory region, --range or built-in device)");
    return false;
}

void on_block(uc_engine* uc, std::uint64_t, std::uint32_t size, void* user) {
    auto& g = *static_cast<Impl*>(user);
    if (g.stop == Impl::Stop::None &&
        (g.irq_lines_changed() || (g.irq_waits_for_unmask && !(g.pstate() & kPstateIrqMask))))
        g.stop = Impl::Stop::Irq;
    if (g.stop != Impl::Stop::None) {  // stop before this block runs; the loop looks, then resumes here
        uc_emu_stop(uc);
        return;
    }
    g.instructions += size / 4;
    if (g.config.max_instructions && g.instructions > g.config.max_instructions) {
        g.fail("the guest ran past its limit of " + std::to_string(g.config.max_instructions) + " instructions (at " +
               hex(g.pc()) + ")");
    }
}

/// The generic timer's counters read guest instructions; other system registers are the emulator's.
std::uint32_t on_mrs(uc_engine* uc, uc_arm64_reg reg, const uc_arm64_cp_reg* cp, void* user) {
    auto& g = *static_cast<Impl*>(user);
    if (cp->op0 != 3 || cp->op1 != 3 || cp->crn != 14 || cp->crm != 0) return 0;
    std::uint64_t v = 0;
    if (cp->op2 == 0) v = kCounterFrequencyHz;                  // CNTFRQ_EL0
    else if (cp->op2 == 1 || cp->op2 == 2) v = g.instructions;  // CNTPCT_EL0, CNTVCT_EL0
    else return 0;
    uc_reg_write(uc, reg, &v);
    return 1;
}

void on_exception(uc_engine*, std::uint32_t intno, void* user) {
    auto& g = *static_cast<Impl*>(user);
    g.fail(std::string("guest ") + exception_name(intno) + " (exception " + std::to_string(intno) + ") before " +
           hex(g.pc()) + ": the mock VM delivers only IRQs to the guest");
}

std::uint64_t gicd_read(uc_engine*, std::uint64_t off, unsigned size, void* user) {
    return static_cast<Impl*>(user)->gic.read_distributor(off, size);
}
void gicd_write(uc_engine*, std::uint64_t off, unsigned size, std::uint64_t value, void* user) {
    auto& g = *static_cast<Impl*>(user);
    g.gic.write_distributor(off, size, static_cast<std::uint32_t>(value));
    g.request_stop(Impl::Stop::Irq);  // what the GIC signals may have changed
}
std::uint64_t gicc_read(uc_engine*, std::uint64_t off, unsigned size, void* user) {
    auto& g = *static_cast<Impl*>(user);
    g.sync_irqs();  // IAR/HPPIR answer with the lines as they are now
    return g.gic.read_cpu_interface(off, size);
}
void gicc_write(uc_engine*, std::uint64_t off, unsigned size, std::uint64_t value, void* user) {
    auto& g = *static_cast<Impl*>(user);
    g.gic.write_cpu_interface(off, size, static_cast<std::uint32_t>(value));
    g.request_stop(Impl::Stop::Irq);
}
std::uint64_t uart_read(uc_engine*, std::uint64_t off, unsigned size, void* user) {
    return static_cast<Impl*>(user)->console.read_uart(off, size);
}
void uart_write(uc_engine*, std::uint64_t off, unsigned size, std::uint64_t value, void* user) {
    auto& g = *static_cast<Impl*>(user);
    if (!g.failed()) g.console.write_uart(off, size, static_cast<std::uint32_t>(value));
}
std::uint64_t exit_read(uc_engine*, std::uint64_t, unsigned, void*) { return 0; }
void exit_write(uc_engine*, std::uint64_t off, unsigned, std::uint64_t value, void* user) {
    auto& g = *static_cast<Impl*>(user);
    if (g.failed()) return;
    g.console.write_power_off(off, static_cast<std::uint32_t>(value));
    if (g.console.exit_status()) g.request_stop(Impl::Stop::Exit);
}

}  // namespace

/// MMIO ranges are mapped as plain memory the guest cannot execute, watched by
/// read/write hooks: the hooks see each access at its real size (1..8 bytes),
/// and a read's hook stores the device's reply where the load then reads it.
void Guest::Impl::map_ranges() {
    for (const auto& r : vm.config().ranges) {
        shadows.emplace_back(r.size);
        if (const uc_err e = uc_mem_map_ptr(uc, r.base, r.size, UC_PROT_READ | UC_PROT_WRITE, shadows.back().data());
            e != UC_ERR_OK)
            throw GuestError("guest CPU: cannot map MMIO range " + hex(r.base) + ": " + uc_strerror(e));
        add_hook(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, reinterpret_cast<void*>(&on_mmio), r.base, r.base + r.size - 1);
    }
}

void Guest::Impl::setup_cpu() {
    if (const uc_err e = uc_open(UC_ARCH_ARM64, UC_MODE_ARM, &uc); e != UC_ERR_OK) {
        uc = nullptr;
        throw GuestError(std::string("guest CPU: cannot start the emulator: ") + uc_strerror(e));
    }
    map_builtin(kGicDistributorBase, gicd_read, gicd_write);
    map_builtin(kGicCpuInterfaceBase, gicc_read, gicc_write);
    map_builtin(kUartBase, uart_read, uart_write);
    map_builtin(kExitBase, exit_read, exit_write);
    map_ranges();
    add_hook(UC_HOOK_MEM_UNMAPPED, reinterpret_cast<void*>(&on_unmapped), 1, 0);
    add_hook(UC_HOOK_BLOCK, reinterpret_cast<void*>(&on_block), 1, 0);
    add_hook(UC_HOOK_INTR, reinterpret_cast<void*>(&on_exception), 1, 0);
    add_hook(UC_HOOK_INSN, reinterpret_cast<void*>(&on_mrs), 1, 0, UC_ARM64_INS_MRS);

    std::uint64_t sp = config.stack_pointer;
    if (sp == 0)
        for (const auto& m : vm.memory().regions())
            if (image.entry >= m.base && image.entry - m.base < m.size) sp = (m.base + m.size) & ~std::uint64_t{15};
    uc_reg_write(uc, UC_ARM64_REG_SP, &sp);
    uc_reg_write(uc, UC_ARM64_REG_PC, &image.entry);
}

Guest::Guest(Vm& vm, GuestConfig config) : impl_(std::make_unique<Impl>(vm, std::move(config))) {
    impl_->check_layout();
    impl_->image = load_elf_file(impl_->config.firmware, vm.memory());
    impl_->setup_cpu();
}

Guest::~Guest() = default;

const ElfImage& Guest::image() const { return impl_->image; }

GuestResult Guest::run() {
    Impl& g = *impl_;
    for (;;) {
        g.stop = Impl::Stop::None;
        const uc_err e = uc_emu_start(g.uc, g.pc(), 0, 0, 0);
        if (g.stop == Impl::Stop::Fault || g.stop == Impl::Stop::Exit || g.console.exit_status()) break;
        if (e != UC_ERR_OK) {
            g.fault = std::string("guest CPU stopped at ") + hex(g.pc()) + ": " + uc_strerror(e);
            break;
        }
        if (g.stop == Impl::Stop::None) {
            if (!g.stopped_at_wfi(g.pc())) {
                g.fault = "guest CPU stopped at " + hex(g.pc()) + " (a jump to address 0?)";
                break;
            }
            if (!g.sleep_until_interrupt()) break;
        }
        g.sync_irqs();
        g.deliver_irq_if_unmasked();
        if (!g.fault.empty()) break;
    }
    return g.result();
}

}  // namespace coreio::mockvm::guest
