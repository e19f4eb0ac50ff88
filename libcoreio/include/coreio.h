/*
 * coreio.h: the CoreIO C API, a drop-in for the original library.
 *
 * Same 11 functions, signatures, macros and coreio_func_t as the original;
 * every function returns 0 on success or a negative errno value:
 *   -EINVAL      rid/mid/iid/sid out of range, zero-length DMA, bad target
 *   -ENOTCONN    not connected
 *   -EBUSY       range already registered (in this connection)
 *   -EFAULT      DMA fault
 *   -ECONNRESET  the VM closed the connection
 *   -ETIMEDOUT   a blocking DMA exceeded the timeout set in COREIO_DMA_TIMEOUT_MS
 *   -ENOMEM      out of memory
 *
 * Differences from the original, all compatible:
 * - Without a pair handler, a pair access calls the single handler for element 1
 *   at addr and for element 2 at addr + len (the original used addr twice).
 * - coreio_disconnect() forgets registrations, so connect + register again works.
 * - Malformed frames from the VM are rejected and logged (stderr by default).
 * This API is a thin layer over one default coreio::Client (coreio/client.hpp).
 */
#ifndef COREIO_H
#define COREIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>

#if defined(_WIN32)
#define COREIO_API
#else
#define COREIO_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define COREIO_FLAGS_IFETCH 2
#define COREIO_FLAGS_PRIV 4
#define COREIO_FLAGS_SECURE 8

typedef struct {
    /* MMIO operations. Return 0 on success, 1 for a bus error. */
    int (*read)(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags);
    int (*write)(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags);
    /* MMIO pair-wise operations. If not supplied, read/write are used twice:
     * at addr and at addr + len. */
    int (*readp)(void *priv, uint64_t addr, size_t len, void *buf1, void *buf2, unsigned flags);
    int (*writep)(void *priv, uint64_t addr, size_t len, void *buf1, void *buf2, unsigned flags);
} coreio_func_t;

/* Connects to a VM at "host[:port]" (default port 4800); NULL reads COREHDL_VM. */
COREIO_API int coreio_connect(const char *target);

/* Registers MMIO handlers for range rid (0..7) and claims it. */
COREIO_API int coreio_register(unsigned rid, const coreio_func_t *func, void *funcp);

/* Adds the library's sockets to fd sets for select(2); returns the new nfds
 * (or a negative errno). */
COREIO_API int coreio_preparefds(int nfds, fd_set *readfds, fd_set *writefds);

/* Processes socket events after select(2). */
COREIO_API int coreio_processfds(fd_set *readfds, fd_set *writefds);

/* Runs the select loop for usec microseconds (negative: until an error). */
COREIO_API int coreio_mainloop(long long usec);

/* Sets IRQ line iid (0..7) of range rid to state (0/1); sent only on change.
 * Callable from any thread. */
COREIO_API int coreio_irq_update(unsigned rid, unsigned iid, unsigned state);

/* DMA read/write of len bytes at addr through IOMMU mid (0 = direct), region sid.
 * With cpl == NULL the call blocks until done; otherwise cpl(cplp, result) runs
 * later from coreio_processfds()/coreio_mainloop(). */
COREIO_API int coreio_dma_read(unsigned mid, unsigned sid, uint64_t addr, size_t len, void *buf,
                               unsigned flags, void (*cpl)(void *, int), void *cplp);
COREIO_API int coreio_dma_write(unsigned mid, unsigned sid, uint64_t addr, size_t len, void *buf,
                                unsigned flags, void (*cpl)(void *, int), void *cplp);

/* Closes both connections; pending DMA completes with -ECONNRESET. */
COREIO_API void coreio_disconnect(void);

#ifdef __cplusplus
}
#endif

#endif /* COREIO_H */
