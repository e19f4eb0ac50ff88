/* Start-up code for the example firmware (AArch64, EL1, MMU off).
 * Sets the stack and the exception vectors, clears .bss, calls main() and
 * writes its return value to the mock VM's power-off register. */
    .section .text.start, "ax"
    .global _start
_start:
    ldr     x0, =__stack_top
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  bl      main
    ldr     x1, =0x09010000         /* power-off register: main's value is the exit status */
    str     w0, [x1]
3:  wfi
    b       3b

/* Saves the registers a C function may clobber, calls HANDLER, restores, erets. */
.macro irq_entry handler
    stp     x29, x30, [sp, #-16]!
    stp     x0, x1, [sp, #-16]!
    stp     x2, x3, [sp, #-16]!
    stp     x4, x5, [sp, #-16]!
    stp     x6, x7, [sp, #-16]!
    stp     x8, x9, [sp, #-16]!
    stp     x10, x11, [sp, #-16]!
    stp     x12, x13, [sp, #-16]!
    stp     x14, x15, [sp, #-16]!
    stp     x16, x17, [sp, #-16]!
    stp     x18, xzr, [sp, #-16]!
    bl      \handler
    ldp     x18, xzr, [sp], #16
    ldp     x16, x17, [sp], #16
    ldp     x14, x15, [sp], #16
    ldp     x12, x13, [sp], #16
    ldp     x10, x11, [sp], #16
    ldp     x8, x9, [sp], #16
    ldp     x6, x7, [sp], #16
    ldp     x4, x5, [sp], #16
    ldp     x2, x3, [sp], #16
    ldp     x0, x1, [sp], #16
    ldp     x29, x30, [sp], #16
    eret
.endm

/* Any exception but an IRQ from EL1 is a firmware bug: power off with 0xEE. */
.macro unexpected
    .balign 0x80
    ldr     x1, =0x09010000
    mov     w0, #0xee
    str     w0, [x1]
    b       .
.endm

    .section .text.vectors, "ax"
    .balign 0x800
vectors:
    unexpected              /* current EL, SP_EL0: sync */
    unexpected              /* IRQ */
    unexpected              /* FIQ */
    unexpected              /* SError */
    unexpected              /* current EL, SP_ELx: sync */
    .balign 0x80            /* current EL, SP_ELx: IRQ (VBAR + 0x280) */
    irq_entry irq_handler
    unexpected              /* FIQ */
    unexpected              /* SError */
