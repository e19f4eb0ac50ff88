/* The mock VM's guest platform (mockvm/guest/include/coreio/mockvm/guest/platform.hpp)
 * and MMIO accessors for the example firmware. */
#ifndef FIRMWARE_PLATFORM_H
#define FIRMWARE_PLATFORM_H

#include <stdint.h>

#define UART_BASE 0x09000000ul
#define EXIT_BASE 0x09010000ul
#define GICD_BASE 0x08000000ul
#define GICC_BASE 0x08010000ul
/* Device line (rid, line) is GIC interrupt 32 + 8 * rid + line. */
#define DEVICE_INTID(rid, line) (32u + 8u * (rid) + (line))

static inline uint8_t read8(uintptr_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t read16(uintptr_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t read64(uintptr_t a) { return *(volatile uint64_t *)a; }
static inline void write8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void write16(uintptr_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void write64(uintptr_t a, uint64_t v) { *(volatile uint64_t *)a = v; }

/* Console (PL011). */
void uart_putc(char c);
void uart_puts(const char *s);
void uart_puthex(uint64_t v);

/* GICv2: enable distributor and CPU interface, accept every priority. */
void gic_init(void);
/* Enable one interrupt at priority 0xa0, routed to CPU 0. */
void gic_enable(unsigned intid);
/* Acknowledge (IAR) and end (EOIR) an interrupt. */
uint32_t gic_ack(void);
void gic_eoi(uint32_t intid);

static inline void irq_unmask(void) { __asm__ volatile("msr daifclr, #2" ::: "memory"); }
static inline void irq_mask(void) { __asm__ volatile("msr daifset, #2" ::: "memory"); }
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }
/* Waits for an interrupt without the check-then-sleep race: called with IRQs
 * masked after checking the condition; wfi wakes on a pending interrupt even
 * while masked, and the interrupt is taken between the unmask and the mask. */
static inline void wait_for_interrupt(void) {
    wfi();
    irq_unmask();
    irq_mask();
}
static inline uint64_t counter(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}

/* Called from the IRQ vector (start.S); each firmware defines it. */
void irq_handler(void);

#endif
