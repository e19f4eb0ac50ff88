/*
 * A device model written the way programs on the original C library are: only
 * the seed API, handlers answering from a static register file. It forks a
 * helper process first (which just waits, as helpers of real models do), then
 * serves range 0 until HANG_AFTER accesses, and then hangs in its handler.
 * The replayer tests use it to check that nothing it started survives.
 *
 * Usage: coreio-test-forking-device [HANG_AFTER]   (VM from $COREHDL_VM)
 */
#include <coreio.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long accesses;
static unsigned long hang_after = 3;
static unsigned char regs[4096];

static void count_access(void) {
    if (++accesses > hang_after)
        for (;;) pause(); /* hung: never answers again */
}

static int on_read(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    (void)priv;
    (void)flags;
    count_access();
    if ((addr & 0xfff) + len > sizeof regs) return 1;
    memcpy(buf, regs + (addr & 0xfff), len);
    return 0;
}

static int on_write(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    (void)priv;
    (void)flags;
    count_access();
    if ((addr & 0xfff) + len > sizeof regs) return 1;
    memcpy(regs + (addr & 0xfff), buf, len);
    return 0;
}

int main(int argc, char **argv) {
    coreio_func_t funcs;
    if (argc > 1) hang_after = strtoul(argv[1], NULL, 0);
    if (fork() == 0)
        for (;;) pause(); /* the helper */
    memset(&funcs, 0, sizeof funcs);
    funcs.read = on_read;
    funcs.write = on_write;
    if (coreio_connect(NULL) != 0) return 1;
    if (coreio_register(0, &funcs, NULL) != 0) return 1;
    coreio_mainloop(-1);
    coreio_disconnect();
    return 0;
}
