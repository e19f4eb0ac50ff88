/*
 * coreio-example-regfile: a register-file device model for CoreIO.
 *
 * Written against the original C API (coreio.h) with only the seed functions,
 * so it doubles as a compatibility check: a program written for the original
 * library must run unchanged against this project's library and mock VM.
 *
 * It claims range 0 and backs it with 4 KiB of registers: a read or write of
 * any width (1..32 bytes, and pairs) at guest address A touches the bytes at
 * offset A & 0xfff. Ranges are 4 KiB aligned, so that is the offset in the
 * range; a larger range sees the 4 KiB repeat.
 *
 * The byte at offset 0xf00 is the IRQ register: bit i drives IRQ line i of
 * range 0. Writing it sends an IRQ update for every line whose level changed
 * (IRQ lines are levels; write 1 then 0 for an edge).
 *
 * Usage: coreio-example-regfile [HOST:PORT]   (default: $COREHDL_VM)
 */
#include <coreio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REGFILE_SIZE 4096u
#define REG_IRQ 0xf00u

struct regfile {
    unsigned char bytes[REGFILE_SIZE]; /* the registers */
    unsigned char irq_lines;           /* levels last sent to the VM */
};

/* Offset of an access in the register file, or -1 if it runs past the end. */
static long offset_of(uint64_t addr, size_t len) {
    uint64_t off = addr & (REGFILE_SIZE - 1);
    if (len > REGFILE_SIZE - off) return -1;
    return (long)off;
}

/* Sends an IRQ update for each line whose bit in the IRQ register changed. */
static void update_irqs(struct regfile *rf) {
    unsigned char want = rf->bytes[REG_IRQ];
    unsigned line;
    for (line = 0; line < 8; ++line) {
        unsigned bit = 1u << line;
        if ((want ^ rf->irq_lines) & bit) coreio_irq_update(0, line, (want & bit) ? 1 : 0);
    }
    rf->irq_lines = want;
}

static int rf_read(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    struct regfile *rf = priv;
    long off = offset_of(addr, len);
    (void)flags;
    if (off < 0) return 1; /* bus error */
    memcpy(buf, rf->bytes + off, len);
    return 0;
}

static int rf_write(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    struct regfile *rf = priv;
    long off = offset_of(addr, len);
    (void)flags;
    if (off < 0) return 1;
    memcpy(rf->bytes + off, buf, len);
    if ((unsigned long)off <= REG_IRQ && REG_IRQ < (unsigned long)off + len) update_irqs(rf);
    return 0;
}

int main(int argc, char **argv) {
    static struct regfile rf;
    coreio_func_t funcs;
    const char *target = argc > 1 ? argv[1] : NULL;
    int rc;

    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr, "usage: %s [HOST:PORT]   (default: $COREHDL_VM)\n", argv[0]);
        return 2;
    }
    memset(&funcs, 0, sizeof funcs);
    funcs.read = rf_read;
    funcs.write = rf_write; /* no pair handlers: the library splits pairs */

    rc = coreio_connect(target);
    if (rc) {
        fprintf(stderr, "coreio-example-regfile: cannot connect to %s (error %d)\n",
                target ? target : "$COREHDL_VM", rc);
        return 1;
    }
    rc = coreio_register(0, &funcs, &rf);
    if (rc) {
        fprintf(stderr, "coreio-example-regfile: cannot claim range 0 (error %d)\n", rc);
        coreio_disconnect();
        return 1;
    }
    printf("coreio-example-regfile: serving range 0 (4 KiB of registers, IRQ register at 0x%x)\n", REG_IRQ);
    fflush(stdout);

    rc = coreio_mainloop(-1); /* returns when the VM goes away */
    coreio_disconnect();
    /* The VM closing the connection is the normal end of a session. */
    return (rc == 0 || rc == -ECONNRESET) ? 0 : 1;
}
