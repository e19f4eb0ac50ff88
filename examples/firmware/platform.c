/* Console and GIC helpers shared by the example firmware. */
#include "platform.h"

#define UART_DR 0x00
#define UART_FR 0x18
#define UART_FR_TXFF (1u << 5)

void uart_putc(char c) {
    while (read32(UART_BASE + UART_FR) & UART_FR_TXFF) {
    }
    write32(UART_BASE + UART_DR, (uint8_t)c);
}

void uart_puts(const char *s) {
    while (*s) uart_putc(*s++);
}

void uart_puthex(uint64_t v) {
    int shift;
    uart_puts("0x");
    for (shift = 60; shift >= 0; shift -= 4) uart_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

#define GICD_CTLR 0x000
#define GICD_ISENABLER 0x100
#define GICD_IPRIORITYR 0x400
#define GICD_ITARGETSR 0x800
#define GICC_CTLR 0x00
#define GICC_PMR 0x04
#define GICC_IAR 0x0c
#define GICC_EOIR 0x10

void gic_init(void) {
    write32(GICD_BASE + GICD_CTLR, 1);
    write32(GICC_BASE + GICC_PMR, 0xff);
    write32(GICC_BASE + GICC_CTLR, 1);
}

void gic_enable(unsigned intid) {
    write8(GICD_BASE + GICD_IPRIORITYR + intid, 0xa0);
    write8(GICD_BASE + GICD_ITARGETSR + intid, 0x01);
    write32(GICD_BASE + GICD_ISENABLER + 4 * (intid / 32), 1u << (intid % 32));
}

uint32_t gic_ack(void) { return read32(GICC_BASE + GICC_IAR) & 0x3ff; }

void gic_eoi(uint32_t intid) { write32(GICC_BASE + GICC_EOIR, intid); }
