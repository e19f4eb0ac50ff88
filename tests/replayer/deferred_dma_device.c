/*
 * A device written as devices on the original C library often are: the MMIO
 * write handler only notes the command, and the main loop starts the DMA after
 * the posted write has returned, then raises the IRQ.
 *
 * Range 0 (offsets): 0x00 SRC (8 bytes, guest address), 0x08 CTRL (write 1:
 * fetch 16 bytes from SRC), 0x10 STATUS (read: sum of the bytes fetched),
 * 0x18 ACK (write: IRQ line 0 low).
 *
 * Usage: deferred_dma_device HOST:PORT
 */
#include <coreio.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct dev {
    uint64_t src;
    uint64_t status;
    int start; /* CTRL written; the main loop does the work */
};

static int dev_read(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    struct dev *d = priv;
    uint64_t v = 0;
    (void)flags;
    if ((addr & 0xfff) == 0x10) v = d->status;
    memset(buf, 0, len);
    memcpy(buf, &v, len < 8 ? len : 8);
    return 0;
}

static int dev_write(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    struct dev *d = priv;
    uint64_t v = 0;
    (void)flags;
    memcpy(&v, buf, len < 8 ? len : 8);
    switch (addr & 0xfff) {
    case 0x00: d->src = v; break;
    case 0x08: d->start = (v & 1) != 0; break;
    case 0x18: coreio_irq_update(0, 0, 0); break;
    default: break;
    }
    return 0;
}

int main(int argc, char **argv) {
    static struct dev d;
    coreio_func_t funcs;
    unsigned char buf[16];
    int rc;
    unsigned i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    memset(&funcs, 0, sizeof funcs);
    funcs.read = dev_read;
    funcs.write = dev_write;
    if (coreio_connect(argv[1]) != 0 || coreio_register(0, &funcs, &d) != 0) return 1;
    for (;;) {
        rc = coreio_mainloop(2000);
        if (rc < 0) break;
        if (!d.start) continue;
        d.start = 0;
        if (coreio_dma_read(0, 0, d.src, sizeof buf, buf, 0, NULL, NULL) != 0) continue;
        d.status = 0;
        for (i = 0; i < sizeof buf; ++i) d.status += buf[i];
        coreio_irq_update(0, 0, 1);
    }
    coreio_disconnect();
    return (rc == -ECONNRESET || rc == -ENOTCONN) ? 0 : 1;
}
