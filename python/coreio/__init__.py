"""coreio: CoreIO device models in Python.

Two layers on one compiled core (``coreio._core``, on libcoreio):

The original module, unchanged programs run as they are::

    import coreio
    def rd(priv, addr, buf, flags):    # fill buf (a bytearray; len(buf) is the access size)
        buf[:] = (42).to_bytes(len(buf), "little")
        return 0                       # non-zero: bus error
    def wr(priv, addr, buf, flags):
        return 0
    coreio.connect("127.0.0.1:4800")
    coreio.register(0, rd, wr)
    coreio.mainloop(-1)

Functions return 0 or a negative errno (``-errno.EINVAL``, ...). The GIL is
released while the library waits, so ``irq_update`` and DMA may be called
from another thread while ``mainloop`` runs.

The Pythonic layer:

- ``coreio.Client``: one VM per object, handlers as methods of a device object,
  context manager, a background loop thread or ``asyncio``.
- ``coreio.mockvm.Vm``: the mock VM in process, for tests; ``coreio.pytest_plugin``
  has fixtures.
- ``coreio.trace``: read and write trace files; ``coreio.replay``: replay a
  trace against a device.
"""
from __future__ import annotations

import asyncio
import errno as _errno
import os
import threading
from typing import Any, Callable, Optional, Sequence

from coreio import _core
from coreio._core import BusError, FLAGS_IFETCH, FLAGS_PRIV, FLAGS_SECURE

__all__ = [
    "connect", "disconnect", "register", "mainloop", "irq_update", "dma_read", "dma_write",
    "preparefds", "processfds", "Client", "Device", "BusError", "CoreioError",
    "FLAGS_IFETCH", "FLAGS_PRIV", "FLAGS_SECURE",
]

# ---- the original module: functions on one default client --------------------

_default = _core.Client()


def connect(target: Optional[str] = None) -> int:
    """Connects to a VM at "host[:port]" (port 4800 by default); None reads $COREHDL_VM.

    Returns 0 or a negative errno (-EINVAL for a bad target, -ECONNREFUSED, -EISCONN, ...).
    """
    if target is None or target == "":
        target = os.environ.get("COREHDL_VM", "")
        if not target:
            return -_errno.EINVAL
    return _default.connect(target)


def disconnect() -> None:
    """Closes both connections; pending DMA completes with -ECONNRESET; registrations are forgotten."""
    _default.disconnect()


def register(rid: int, read: Callable[[Any, int, bytearray, int], int],
             write: Callable[[Any, int, bytearray, int], int],
             readp: Optional[Callable[[Any, int, bytearray, bytearray, int], int]] = None,
             writep: Optional[Callable[[Any, int, bytearray, bytearray, int], int]] = None,
             funcp: Any = None) -> int:
    """Claims MMIO range rid (0..7) and routes its accesses to the handlers.

    ``read(priv, addr, buf, flags)`` fills ``buf`` (a bytearray, ``len(buf)`` is the
    access size) in place; ``write(priv, addr, buf, flags)`` gets the data in ``buf``;
    ``readp``/``writep(priv, addr, buf1, buf2, flags)`` handle pair accesses (without
    them read/write are called at addr and addr + size). ``priv`` is ``funcp``.
    A non-zero return is a bus error; an exception is printed and is a bus error.
    Returns 0, -EINVAL, -EBUSY or -ENOTCONN.
    """
    return _default.register(rid, read, write, readp, writep, funcp)


def mainloop(usec: int) -> int:
    """Runs the library's loop for usec microseconds (negative: until an error).

    Returns 0, or a negative errno when the connection is lost (-ECONNRESET) or absent (-ENOTCONN).
    """
    return _default.mainloop(usec)


def irq_update(rid: int, iid: int, state: int) -> int:
    """Sets IRQ line iid (0..7) of range rid (0..7) to state (0/1); sent only on change. Any thread."""
    return _default.irq_update(rid, iid, state)


def dma_read(mid: int, sid: int, addr: int, buf: bytearray, flags: int = 0,
             cpl: Optional[Callable[[Any, int], None]] = None, cplp: Any = None) -> int:
    """DMA read of len(buf) bytes at addr into buf (IOMMU mid, region sid; 0, 0 = direct).

    Blocking (GIL released) when cpl is None; otherwise returns at once and
    ``cpl(cplp, error)`` runs later from the loop (buf must not be resized until then).
    """
    return _default.dma_read(mid, sid, addr, buf, flags, cpl, cplp)


def dma_write(mid: int, sid: int, addr: int, buf: Any, flags: int = 0,
              cpl: Optional[Callable[[Any, int], None]] = None, cplp: Any = None) -> int:
    """DMA write of buf (bytes-like) at addr; blocking unless cpl is given (see dma_read)."""
    return _default.dma_write(mid, sid, addr, buf, flags, cpl, cplp)


def preparefds(readfds: Optional[list] = None, writefds: Optional[list] = None) -> tuple[int, list, list]:
    """Adds the library's sockets to the program's own: returns (nfds, readable, writable).

    Pass the lists to ``select.select`` and what it returns to ``processfds``.
    nfds is negative (an errno) when not connected.
    """
    return _default.preparefds(readfds, writefds)


def processfds(readable: Sequence, writable: Sequence) -> int:
    """Handles the library's sockets among those select found ready. Returns 0 or a negative errno."""
    return _default.processfds(readable, writable)


# ---- the Pythonic layer ------------------------------------------------------


class CoreioError(OSError):
    """A coreio call failed; ``errno`` holds the error number."""


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise CoreioError(-rc, f"{what}: {os.strerror(-rc)}")


class Device:
    """Base class of a device model for ``Client.add_device`` (duck typing works too).

    Override ``read`` (return the value as an int, or bytes of the access size)
    and ``write``; raise ``BusError`` for a bus error (any other exception is
    printed and answered with a bus error too). ``reset`` runs when the VM resets the device.
    """

    def read(self, addr: int, size: int, flags: int) -> int:
        raise BusError(_errno.EIO, f"no register at {addr:#x}")

    def write(self, addr: int, size: int, value: int, flags: int) -> None:
        raise BusError(_errno.EIO, f"no register at {addr:#x}")

    def reset(self) -> None:
        pass


class Client:
    """One connection to one VM; several may live in one process.

    >>> with coreio.Client(vm.endpoint) as c:      # doctest: +SKIP
    ...     c.add_device(0, MyDevice())
    ...     c.start()                              # loop in a background thread
    ...     c.irq(0, 0, True)

    Errors raise ``CoreioError`` (an ``OSError``) carrying the errno.
    """

    def __init__(self, target: Optional[str] = None, *, dma_timeout: Optional[float] = None) -> None:
        self.raw = _core.Client(dma_timeout)  #: the original-style client underneath
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._loop_error: Optional[int] = None
        self._asyncio: Optional[asyncio.AbstractEventLoop] = None
        if target is not None:
            self.connect(target)

    def connect(self, target: str) -> None:
        """Connects to "host[:port]"."""
        _check(self.raw.connect(target), f"connect to {target}")

    def close(self) -> None:
        """Stops the loop thread or asyncio watch, if any, and disconnects."""
        self.stop()
        self.detach()
        self.raw.disconnect()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self.raw.connected

    def add_device(self, rid: int, device: Any) -> None:
        """Claims range rid for ``device`` (see ``Device``); it is called from the loop's thread."""
        _check(self.raw.register_object(rid, device), f"claim range {rid}")

    def register(self, rid: int, read: Callable, write: Callable, readp: Optional[Callable] = None,
                 writep: Optional[Callable] = None, funcp: Any = None) -> None:
        """Claims range rid with original-style handlers (see ``coreio.register``)."""
        _check(self.raw.register(rid, read, write, readp, writep, funcp), f"claim range {rid}")

    def irq(self, rid: int, line: int, level: bool) -> None:
        """Sets an IRQ line's level (any thread)."""
        _check(self.raw.irq_update(rid, line, 1 if level else 0), f"IRQ {rid}:{line}")

    def dma_read(self, addr: int, size: int, *, mid: int = 0, sid: int = 0, flags: int = 0) -> bytes:
        """Blocking DMA read of size bytes at addr."""
        buf = bytearray(size)
        _check(self.raw.dma_read(mid, sid, addr, buf, flags), f"DMA read at {addr:#x}")
        return bytes(buf)

    def dma_write(self, addr: int, data: bytes, *, mid: int = 0, sid: int = 0, flags: int = 0) -> None:
        """Blocking DMA write of data at addr."""
        _check(self.raw.dma_write(mid, sid, addr, data, flags), f"DMA write at {addr:#x}")

    def run(self, seconds: Optional[float] = None) -> None:
        """Runs the loop in this thread for seconds (None: until the VM goes away, which raises)."""
        rc = self.raw.mainloop(-1 if seconds is None else int(seconds * 1e6))
        _check(rc, "loop")

    def start(self) -> None:
        """Runs the loop in a background thread until ``stop()`` or the connection ends."""
        if self._thread is not None:
            raise RuntimeError("the loop thread is already running")
        self._stop.clear()
        self._loop_error = None

        def loop() -> None:
            while not self._stop.is_set():
                rc = self.raw.mainloop(50_000)
                if rc != 0:
                    self._loop_error = rc
                    return

        self._thread = threading.Thread(target=loop, name="coreio-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the loop thread started by ``start()``."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    @property
    def loop_error(self) -> Optional[int]:
        """Why the background loop ended (a negative errno), or None."""
        return self._loop_error

    def attach(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        """Serves this client from an asyncio event loop (add_reader on its sockets)."""
        self._asyncio = loop or asyncio.get_event_loop()
        nfds, readable, _ = self.raw.preparefds()
        _check(nfds, "attach")
        self._fds = [fd for fd in readable if isinstance(fd, int)]
        for fd in self._fds:
            self._asyncio.add_reader(fd, self._on_readable, fd)

    def _on_readable(self, fd: int) -> None:
        rc = self.raw.processfds([fd], [])
        _, _, writable = self.raw.preparefds()
        if writable:  # output the kernel could not take at once: finish it now
            self.raw.processfds([], writable)
        if rc != 0:
            self.detach()

    def detach(self) -> None:
        """Stops serving from asyncio."""
        if self._asyncio is None:
            return
        for fd in self._fds:
            self._asyncio.remove_reader(fd)
        self._asyncio = None
