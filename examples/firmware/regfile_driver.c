/* Bare-metal driver for the example register file (examples/regfile, range 0
 * at 0xfef00000): writes values of every width, reads them back, moves a pair
 * with stp/ldp, and takes the device's IRQ line 0 through the GIC.
 * Prints PASS and exits 0, or prints what failed and exits 1.
 *
 * Built with -DSEEDED_BUG it has a driver bug (8-byte registers are written
 * with a 32-bit store), which the checks catch: it exits 1. */
#include "platform.h"

#define REGFILE_BASE 0xfef00000ul
#define REG_IRQ 0xf00u
#define REGFILE_INTID DEVICE_INTID(0, 0)

static volatile unsigned irqs_taken;

/* The mock VM demo's test pattern, truncated to the width by the caller. */
static uint64_t testdata(unsigned i) {
    uint64_t v = i;
    v |= (v + 1) << 8;
    v |= (v + 0x202) << 16;
    v |= (v + 0x4040404) << 32;
    return v;
}

static void reg_write(uintptr_t a, unsigned width, uint64_t v) {
    switch (width) {
    case 1: write8(a, (uint8_t)v); break;
    case 2: write16(a, (uint16_t)v); break;
    case 4: write32(a, (uint32_t)v); break;
#ifdef SEEDED_BUG
    default: write32(a, (uint32_t)v); break; /* the bug: a 64-bit register written with a 32-bit store */
#else
    default: write64(a, v); break;
#endif
    }
}

static uint64_t reg_read(uintptr_t a, unsigned width) {
    switch (width) {
    case 1: return read8(a);
    case 2: return read16(a);
    case 4: return read32(a);
    default: return read64(a);
    }
}

static int check_widths(void) {
    unsigned width, i, bad = 0;
    for (width = 1; width <= 8; width *= 2) {
        const uintptr_t base = REGFILE_BASE + 0x100 * width;
        const uint64_t mask = width == 8 ? ~0ull : (1ull << (8 * width)) - 1;
        for (i = 0; i < 16; ++i) reg_write(base + i * width, width, testdata(i));
        for (i = 0; i < 16; ++i) {
            const uint64_t got = reg_read(base + i * width, width);
            if (got != (testdata(i) & mask)) {
                uart_puts("FAIL width ");
                uart_putc((char)('0' + width));
                uart_puts(" at ");
                uart_puthex(base + i * width);
                uart_puts(": read ");
                uart_puthex(got);
                uart_puts("\n");
                ++bad;
            }
        }
    }
    return bad == 0;
}

/* stp/ldp reach the device as two 8-byte accesses. */
static int check_pair(void) {
    uint64_t a = 0x0123456789abcdefull, b = 0xfedcba9876543210ull, c, d;
    const uintptr_t at = REGFILE_BASE + 0x800;
    __asm__ volatile("stp %0, %1, [%2]" ::"r"(a), "r"(b), "r"(at) : "memory");
    __asm__ volatile("ldp %0, %1, [%2]" : "=r"(c), "=r"(d) : "r"(at) : "memory");
    if (c == a && d == b) return 1;
    uart_puts("FAIL pair\n");
    return 0;
}

void irq_handler(void) {
    const uint32_t id = gic_ack();
    if (id == REGFILE_INTID) {
        write8(REGFILE_BASE + REG_IRQ, 0);
        (void)read8(REGFILE_BASE + REG_IRQ); /* the read returns once the line is low */
        ++irqs_taken;
    }
    gic_eoi(id);
}

static int check_irq(void) {
    unsigned tries;
    gic_init();
    gic_enable(REGFILE_INTID);
    irq_mask();
    write8(REGFILE_BASE + REG_IRQ, 1); /* the device raises line 0 */
    for (tries = 0; tries < 10 && irqs_taken == 0; ++tries) wait_for_interrupt();
    if (irqs_taken == 1) return 1;
    uart_puts("FAIL irq: taken ");
    uart_puthex(irqs_taken);
    uart_puts(" times\n");
    return 0;
}

int main(void) {
    int ok;
    uart_puts("regfile firmware: start\n");
    ok = check_widths();
    ok = check_pair() && ok;
    ok = check_irq() && ok;
    uart_puts(ok ? "regfile firmware: PASS" : "regfile firmware: FAIL");
    uart_puts(" (counter ");
    uart_puthex(counter());
    uart_puts(")\n");
    return ok ? 0 : 1;
}
