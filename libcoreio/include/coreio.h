/*
 * coreio.h: the CoreIO C API, a drop-in for the original library.
 *
 * The same 9 functions, signatures, macros and coreio_func_t as the original.
 * Errors are negative errno values; each function lists the ones it returns.
 * Two apply to every function that returns int:
 *   -ENOMEM  out of memory
 *   -EIO     an unexpected internal error (no C++ exception crosses this API)
 *
 * Differences from the original, all compatible:
 * - Without a pair handler, a pair access calls the single handler for element 1
 *   at addr and for element 2 at addr + len (the original used addr twice).
 * - coreio_disconnect() forgets registrations, so connect + register again works.
 * - Malformed frames from the VM are logged (stderr). One the VM waits for (a
 *   read or acknowledged write with a bad size) is answered with a bus error.
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
    /* MMIO operations. Return 0 on success, 1 for a bus error. A NULL read or
     * write answers as an unclaimed range does: the VM's data goes back
     * unchanged (a read returns what the VM put in the frame), no bus error. */
    int (*read)(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags);
    int (*write)(void *priv, uint64_t addr, size_t len, void *buf, unsigned flags);
    /* MMIO pair-wise operations. If not supplied, read/write are used twice:
     * at addr and at addr + len. */
    int (*readp)(void *priv, uint64_t addr, size_t len, void *buf1, void *buf2, unsigned flags);
    int (*writep)(void *priv, uint64_t addr, size_t len, void *buf1, void *buf2, unsigned flags);
} coreio_func_t;

/* Connects to a VM at "host[:port]" or "[v6addr]:port" (default port 4800);
 * NULL or "" reads COREHDL_VM. Opens the main, then the DMA connection.
 *   -EINVAL     bad target, host not resolved, or NULL with COREHDL_VM unset
 *   -EISCONN    already connected (call coreio_disconnect() first)
 *   -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, -EHOSTUNREACH, -EMFILE, ...:
 *               the errno of the failed socket()/connect(), as the OS gave it */
COREIO_API int coreio_connect(const char *target);

/* Registers MMIO handlers for range rid (0..7) and claims it. The table is
 * copied; funcp is passed to every handler.
 *   -EINVAL     rid >= 8 or func == NULL
 *   -ENOTCONN   not connected (also after the connection was lost)
 *   -EBUSY      rid already registered on this connection */
COREIO_API int coreio_register(unsigned rid, const coreio_func_t *func, void *funcp);

/* Adds the library's sockets to fd sets for select(2); returns the new nfds.
 *   -ENOTCONN   not connected
 *   -ECONNRESET the VM closed the connection (or a socket error)
 *   -EPROTO     the VM broke the framing (a declared length over the limit;
 *               the default limit is the protocol's maximum, so not expected) */
COREIO_API int coreio_preparefds(int nfds, fd_set *readfds, fd_set *writefds);

/* Processes socket events after select(2): handles requests, sends replies.
 * Returns 0, or -ENOTCONN, -ECONNRESET, -EPROTO as coreio_preparefds(). */
COREIO_API int coreio_processfds(fd_set *readfds, fd_set *writefds);

/* Runs the select loop for usec microseconds (negative: until an error).
 * Returns 0 when the time is up, or -ENOTCONN, -ECONNRESET, -EPROTO as
 * coreio_preparefds(), or the errno of a failed ppoll() (e.g. -ENOMEM). */
COREIO_API int coreio_mainloop(long long usec);

/* Sets IRQ line iid (0..7) of range rid: any non-zero state is active, 0 is
 * inactive; an update is sent only when the level changes. Callable from any
 * thread and from handlers (edges raised in a loop are all sent, in order).
 *   -EINVAL     rid >= 8 or iid >= 8
 *   -ENOTCONN   not connected
 *   -ECONNRESET, -EPROTO  the connection was lost (as coreio_preparefds()) */
COREIO_API int coreio_irq_update(unsigned rid, unsigned iid, unsigned state);

/* DMA read/write of len bytes at addr through IOMMU mid (0..7, 0 = direct),
 * region sid (0..15). Flag bits other than COREIO_FLAGS_* are dropped.
 * With cpl == NULL the call blocks until done (safe inside a handler);
 * otherwise it returns 0 at once and cpl(cplp, result) runs later from
 * coreio_processfds()/coreio_mainloop() with result 0, -EFAULT (the VM
 * faulted a chunk) or -ECONNRESET (connection lost or coreio_disconnect()).
 *   -EINVAL     mid >= 8, sid >= 16, len == 0, buf == NULL, addr + len wraps
 *   -ENOTCONN   not connected
 *   -ECONNRESET, -EPROTO  the connection was lost before the call
 * Blocking calls also return the transfer's result:
 *   -EFAULT     the VM faulted a chunk
 *   -ECONNRESET the connection ended during the transfer
 *   -ETIMEDOUT  longer than COREIO_DMA_TIMEOUT_MS milliseconds (if set) */
COREIO_API int coreio_dma_read(unsigned mid, unsigned sid, uint64_t addr, size_t len, void *buf,
                               unsigned flags, void (*cpl)(void *, int), void *cplp);
COREIO_API int coreio_dma_write(unsigned mid, unsigned sid, uint64_t addr, size_t len, void *buf,
                                unsigned flags, void (*cpl)(void *, int), void *cplp);

/* Closes both connections; pending DMA completes with -ECONNRESET;
 * registrations are forgotten. Does nothing when not connected. */
COREIO_API void coreio_disconnect(void);

#ifdef __cplusplus
}
#endif

#endif /* COREIO_H */
