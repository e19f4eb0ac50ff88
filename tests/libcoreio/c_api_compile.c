/* Compiled as C: proves coreio.h is valid C and that every function links from
 * libcoreio.so. Run without a VM, it checks the not-connected error paths. */
#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include <coreio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int rd(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    (void)priv, (void)addr, (void)len, (void)buf, (void)flags;
    return 0;
}
static int wr(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags) {
    (void)priv, (void)addr, (void)len, (void)buf, (void)flags;
    return 0;
}
static void done(void *p, int r) { (void)p, (void)r; }

#define CHECK(expr, want)                                                               \
    do {                                                                                \
        int got_ = (expr);                                                              \
        if (got_ != (want)) {                                                           \
            fprintf(stderr, "%s: got %d, want %d\n", #expr, got_, (want));              \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

int main(void) {
    int failures = 0;
    coreio_func_t f = {rd, wr, NULL, NULL};
    fd_set r, w;
    char buf[8];
    unsigned flags = COREIO_FLAGS_IFETCH | COREIO_FLAGS_PRIV | COREIO_FLAGS_SECURE;

    unsetenv("COREHDL_VM");
    CHECK(coreio_connect(NULL), -EINVAL);
    CHECK(coreio_connect(""), -EINVAL);
    CHECK(coreio_register(0, &f, NULL), -ENOTCONN);
    CHECK(coreio_register(8, &f, NULL), -EINVAL);
    CHECK(coreio_irq_update(0, 0, 1), -ENOTCONN);
    CHECK(coreio_dma_read(0, 0, 0, 0, buf, flags, done, NULL), -EINVAL);
    CHECK(coreio_dma_write(0, 0, 0, sizeof buf, buf, 0, NULL, NULL), -ENOTCONN);
    FD_ZERO(&r);
    FD_ZERO(&w);
    CHECK(coreio_preparefds(0, &r, &w), -ENOTCONN);
    CHECK(coreio_processfds(&r, &w), -ENOTCONN);
    CHECK(coreio_mainloop(0), -ENOTCONN);
    coreio_disconnect();
    if (failures == 0) printf("c_api_compile: ok\n");
    return failures == 0 ? 0 : 1;
}
