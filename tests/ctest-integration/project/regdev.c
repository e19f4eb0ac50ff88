/*
 * regdev: a small register-file device for the out-of-tree ctest project,
 * written against the original C API (coreio.h) as a user's device would be.
 * Range 0, 4 KiB of registers; the register at 0x10 is a scratch register.
 *
 * --broken: reads of 0x10 return the stored value plus one, the kind of bug a
 * recorded regression trace must catch.
 *
 * Usage: regdev [--broken]   (connects to $COREHDL_VM)
 */
#include <coreio.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SIZE 4096u
#define SCRATCH 0x10u

static unsigned char regs[SIZE];
static int broken;

static int dev_read(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    uint64_t off = addr & (SIZE - 1);
    (void)priv;
    (void)flags;
    if (len > SIZE - off) return 1;
    memcpy(buf, regs + off, len);
    if (broken && off == SCRATCH) ((unsigned char *)buf)[0] += 1;
    return 0;
}

static int dev_write(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    uint64_t off = addr & (SIZE - 1);
    (void)priv;
    (void)flags;
    if (len > SIZE - off) return 1;
    memcpy(regs + off, buf, len);
    return 0;
}

int main(int argc, char **argv) {
    coreio_func_t funcs;
    int rc;
    broken = argc > 1 && strcmp(argv[1], "--broken") == 0;
    memset(&funcs, 0, sizeof funcs);
    funcs.read = dev_read;
    funcs.write = dev_write;
    if (coreio_connect(NULL) != 0) {
        fprintf(stderr, "regdev: cannot connect to $COREHDL_VM\n");
        return 1;
    }
    if (coreio_register(0, &funcs, NULL) != 0) {
        fprintf(stderr, "regdev: cannot claim range 0\n");
        return 1;
    }
    rc = coreio_mainloop(-1);
    coreio_disconnect();
    return (rc == 0 || rc == -ECONNRESET) ? 0 : 1;
}
