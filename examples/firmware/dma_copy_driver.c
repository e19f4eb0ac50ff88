/* Bare-metal driver for the example DMA copy engine on range 0 (0xfef00000):
 * fills a source buffer, programs a copy with its interrupt enabled, sleeps
 * in wfi until the engine's IRQ arrives through the GIC, acknowledges it in
 * the handler and checks the destination. Prints PASS and exits 0, else 1.
 *
 * The same binary drives both twins, told apart by the ID register: the C++
 * model (examples/devices/dma_copy.hpp, ID "CODC") and the RTL engine
 * (cosim/rtl/dma_copy.sv, ID "CODM"), whose register maps differ.
 *
 * Built with -DSEEDED_BUG it programs LEN one byte short (an off-by-one
 * driver bug): the check of the last byte fails and it exits 1. */
#include "platform.h"

#define DMA_BASE 0xfef00000ul
#define DMA_INTID DEVICE_INTID(0, 0)
#define SRC_BUF 0x80100000ul
#define DST_BUF 0x80200000ul
#define COPY_LEN 256u
#define CTRL_START 1u
#define CTRL_IRQ_EN 2u

struct dma_map {
    const char *name;
    uint32_t src, dst, len, ctrl, status, copied; /* register offsets (64-bit addresses: low, high) */
    uint32_t done, error;                         /* STATUS bits (write 1 to clear) */
};

static const struct dma_map model_map = {"C++ model", 0x08, 0x10, 0x18, 0x1c, 0x20, 0x24, 1u << 0, 1u << 1};
static const struct dma_map rtl_map = {"RTL", 0x04, 0x0c, 0x14, 0x18, 0x1c, 0x24, 1u << 1, 1u << 2};
static const struct dma_map *dma;
static volatile uint32_t irq_status;
static volatile unsigned irqs_taken;

void irq_handler(void) {
    const uint32_t id = gic_ack();
    if (id == DMA_INTID) {
        const uint32_t status = read32(DMA_BASE + dma->status);
        write32(DMA_BASE + dma->status, status & (dma->done | dma->error));
        (void)read32(DMA_BASE + dma->status); /* returns once the IRQ line is low */
        irq_status = status;
        ++irqs_taken;
    }
    gic_eoi(id);
}

static int fail(const char *what, uint64_t value) {
    uart_puts("dma firmware: FAIL ");
    uart_puts(what);
    uart_puts(" ");
    uart_puthex(value);
    uart_puts("\n");
    return 1;
}

static void start_copy(uint32_t len) {
    write32(DMA_BASE + dma->src, (uint32_t)SRC_BUF);
    write32(DMA_BASE + dma->src + 4, (uint32_t)(SRC_BUF >> 32));
    write32(DMA_BASE + dma->dst, (uint32_t)DST_BUF);
    write32(DMA_BASE + dma->dst + 4, (uint32_t)(DST_BUF >> 32));
    write32(DMA_BASE + dma->len, len);
    write32(DMA_BASE + dma->ctrl, CTRL_START | CTRL_IRQ_EN);
}

int main(void) {
    const uint32_t id = read32(DMA_BASE);
    unsigned i, tries;
    volatile uint8_t *src = (volatile uint8_t *)SRC_BUF, *dst = (volatile uint8_t *)DST_BUF;
    if (id == 0x434f4443u) dma = &model_map;
    else if (id == 0x434f444du) dma = &rtl_map;
    else return fail("unknown device ID", id);
    uart_puts("dma firmware: ");
    uart_puts(dma->name);
    uart_puts("\n");
    for (i = 0; i < COPY_LEN; ++i) {
        src[i] = (uint8_t)(i * 7 + 1);
        dst[i] = 0;
    }
    gic_init();
    gic_enable(DMA_INTID);
    irq_mask();
#ifdef SEEDED_BUG
    start_copy(COPY_LEN - 1);
#else
    start_copy(COPY_LEN);
#endif
    for (tries = 0; tries < 100 && irqs_taken == 0; ++tries) wait_for_interrupt();
    if (irqs_taken != 1) return fail("interrupts taken:", irqs_taken);
    if (!(irq_status & dma->done) || (irq_status & dma->error)) return fail("status", irq_status);
    for (i = 0; i < COPY_LEN; ++i)
        if (dst[i] != src[i]) return fail("byte at", DST_BUF + i);
    uart_puts("dma firmware: PASS, copied ");
    uart_puthex(read32(DMA_BASE + dma->copied));
    uart_puts(" bytes\n");
    return 0;
}
