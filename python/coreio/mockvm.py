"""coreio.mockvm: the mock VM in this process, for tests of device models.

>>> from coreio.mockvm import Vm                         # doctest: +SKIP
>>> with Vm() as vm:                                       # ranges and memory: see Vm()
...     proc = subprocess.Popen(["./my_device", vm.endpoint])
...     vm.wait_claim()
...     vm.write32(vm.base + 0x10, 5)
...     assert vm.read32(vm.base + 0x10) == 5
...     assert vm.wait_irq(0, 0)
...     vm.mem[0x80000000:0x80000004] = b"abcd"

Every access blocks until the device answered (or the timeout passed) with
the GIL released, so a device served by a thread of this process works.
Failures raise: ``coreio.BusError`` (the device answered with a bus error),
``TimeoutError``, ``ConnectionResetError``, ``ValueError`` (bad address or size).
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

from coreio import _core

__all__ = ["Vm", "GuestMemory", "DEFAULT_RANGE", "DEFAULT_MEMORY"]

DEFAULT_RANGE = (0x10000000, 0x1000)  #: one 4 KiB MMIO range (rid 0)
DEFAULT_MEMORY = (0x80000000, 16 << 20)  #: 16 MiB of guest memory for DMA


class GuestMemory:
    """Guest memory by address: ``mem[a:b]`` reads bytes, ``mem[a:b] = data`` writes, ``mem[a]`` one byte."""

    def __init__(self, vm: "_core.Vm") -> None:
        self._vm = vm

    def __getitem__(self, key: Union[int, slice]) -> Union[int, bytes]:
        if isinstance(key, int):
            return self._vm.mem_read(key, 1)[0]
        start, stop = self._bounds(key)
        return self._vm.mem_read(start, stop - start)

    def __setitem__(self, key: Union[int, slice], data: Union[int, bytes, bytearray]) -> None:
        if isinstance(key, int):
            self._vm.mem_write(key, bytes([data]))
            return
        start, stop = self._bounds(key)
        if len(data) != stop - start:
            raise ValueError(f"slice of {stop - start} bytes assigned {len(data)} bytes")
        self._vm.mem_write(start, bytes(data))

    def read(self, addr: int, size: int) -> bytes:
        return self._vm.mem_read(addr, size)

    def write(self, addr: int, data: bytes) -> None:
        self._vm.mem_write(addr, bytes(data))

    def regions(self) -> list[tuple[int, int]]:
        """(base, size) of each region."""
        return self._vm.mem_regions()

    @staticmethod
    def _bounds(s: slice) -> tuple[int, int]:
        if s.start is None or s.stop is None or s.step not in (None, 1) or s.stop < s.start:
            raise ValueError("guest memory slices need start and stop addresses and no step")
        return s.start, s.stop


class Vm:
    """A mock VM listening on 127.0.0.1 (port 0: a free one; see ``port``/``endpoint``).

    ranges: (base, size) MMIO ranges, rid = index; memory: (base, size) guest
    memory regions served to DMA; timeout: seconds any blocking call waits.
    """

    def __init__(self, ranges: Sequence[tuple[int, int]] = (DEFAULT_RANGE,),
                 memory: Sequence[tuple[int, int]] = (DEFAULT_MEMORY,), *, port: int = 0,
                 listen: str = "127.0.0.1", timeout: float = 5.0, verbose: bool = False) -> None:
        self._vm = _core.Vm(list(ranges), list(memory), port, listen, timeout, verbose)
        self.ranges = list(ranges)
        self.mem = GuestMemory(self._vm)  #: guest memory, sliceable by address

    # -- lifetime --
    def close(self) -> None:
        """Closes every connection and the listening socket (and an active recording)."""
        self._vm.close()

    def __enter__(self) -> "Vm":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._vm.port

    @property
    def endpoint(self) -> str:
        """"127.0.0.1:PORT": what a device connects to (its COREHDL_VM)."""
        return self._vm.endpoint

    @property
    def base(self) -> int:
        """Base address of range 0."""
        return self.ranges[0][0]

    # -- clients --
    def wait_claim(self, rid: int = 0, timeout: Optional[float] = None) -> None:
        """Waits until a device claimed range rid; raises TimeoutError."""
        if not self._vm.wait_claim(rid, timeout):
            raise TimeoutError(f"no device claimed range {rid}")

    def wait_client(self, timeout: Optional[float] = None) -> None:
        """Waits until a device connected; raises TimeoutError."""
        if not self._vm.wait_client(timeout):
            raise TimeoutError("no device connected")

    def claimed(self, rid: int = 0) -> bool:
        return self._vm.claimed(rid)

    @property
    def client_count(self) -> int:
        return self._vm.client_count

    def drop_clients(self) -> None:
        """Closes every device connection now."""
        self._vm.drop_clients()

    def ping(self) -> None:
        """Round trip to every device (raises when none answers)."""
        self._vm.ping()

    def reset(self) -> None:
        """Sends RESET to every device."""
        self._vm.reset()

    def counters(self) -> dict[str, int]:
        return self._vm.counters()

    # -- MMIO --
    def read(self, addr: int, size: int, flags: int = 0) -> bytes:
        """MMIO read of size (1..32) bytes."""
        return self._vm.read(addr, size, flags)

    def write(self, addr: int, data: bytes, *, ack: bool = False, flags: int = 0) -> None:
        """MMIO write of data (1..32 bytes); posted unless ack (then a bus error raises)."""
        self._vm.write(addr, bytes(data), ack, flags)

    def read_value(self, addr: int, size: int) -> int:
        """Little-endian read of size (1..8) bytes."""
        return self._vm.read_value(addr, size)

    def write_value(self, addr: int, size: int, value: int, *, ack: bool = False) -> None:
        """Little-endian write of size (1..8) bytes (value truncated to the width)."""
        self._vm.write_value(addr, size, value, ack)

    def read8(self, addr: int) -> int: return self._vm.read_value(addr, 1)
    def read16(self, addr: int) -> int: return self._vm.read_value(addr, 2)
    def read32(self, addr: int) -> int: return self._vm.read_value(addr, 4)
    def read64(self, addr: int) -> int: return self._vm.read_value(addr, 8)

    def write8(self, addr: int, value: int, *, ack: bool = False) -> None: self._vm.write_value(addr, 1, value, ack)
    def write16(self, addr: int, value: int, *, ack: bool = False) -> None: self._vm.write_value(addr, 2, value, ack)
    def write32(self, addr: int, value: int, *, ack: bool = False) -> None: self._vm.write_value(addr, 4, value, ack)
    def write64(self, addr: int, value: int, *, ack: bool = False) -> None: self._vm.write_value(addr, 8, value, ack)

    def read_pair(self, addr: int, size: int, flags: int = 0) -> tuple[bytes, bytes]:
        """Pair read: two elements of size (1..16) bytes at addr and addr + size."""
        return self._vm.read_pair(addr, size, flags)

    def write_pair(self, addr: int, data1: bytes, data2: bytes, *, ack: bool = False, flags: int = 0) -> None:
        """Pair write of two equal-size elements."""
        self._vm.write_pair(addr, bytes(data1), bytes(data2), ack, flags)

    def read_many(self, addrs: Iterable[int], size: int = 4, window: int = 64) -> list[int]:
        """Pipelined reads (window outstanding), one value per address."""
        return self._vm.read_many(list(addrs), size, window)

    def write_many(self, addrs: Iterable[int], values: Iterable[int], size: int = 4, *, ack: bool = False,
                   window: int = 64) -> None:
        """Pipelined writes."""
        self._vm.write_many(list(addrs), list(values), size, ack, window)

    # -- IRQ --
    def irq_level(self, rid: int = 0, line: int = 0) -> bool:
        return self._vm.irq_level(rid, line)

    def irq_lines(self, rid: int = 0) -> int:
        """All lines of range rid: bit i = line i."""
        return self._vm.irq_lines(rid)

    def irq_count(self, rid: int = 0, line: int = 0) -> int:
        """Rising edges (0 -> 1) seen on that line since the Vm started."""
        return self._vm.irq_count(rid, line)

    def wait_irq(self, rid: int = 0, line: int = 0, level: bool = True, timeout: Optional[float] = None) -> bool:
        """Waits until the line is at level; False on timeout."""
        return self._vm.wait_irq(rid, line, level, timeout)

    # -- recording --
    def record(self, path: str, *, raw_frames: bool = False) -> "_Recording":
        """Records every frame from now on into a trace file, until ``stop_recording()``
        or ``close()``; usable as a context manager (``with vm.record(p): ...``)."""
        self._vm.record(str(path), raw_frames)
        return _Recording(self)

    def stop_recording(self) -> None:
        """Finishes the trace file (raises OSError on a write error)."""
        err = self._vm.stop_recording()
        if err:
            raise OSError(err)


class _Recording:
    def __init__(self, vm: Vm) -> None:
        self._vm = vm

    def __enter__(self) -> Vm:
        return self._vm

    def __exit__(self, *exc: object) -> None:
        self._vm.stop_recording()
