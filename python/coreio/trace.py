"""coreio.trace: CoreIO trace files (the recorder's format) as Python objects.

>>> t = coreio.trace.open("run.ctrace")                  # doctest: +SKIP
>>> for r in t:
...     if r.kind == "mmio": print(r.op, hex(r.addr), r.value)
>>> t.stats()["mmio"]
>>> pandas.DataFrame(t.to_records())

Writing (synthesise a trace in a test)::

    with coreio.trace.Writer("t.ctrace", ranges=[(0, 0x10000000, 0x1000)]) as w:
        w.claim(0)
        w.mmio("WRITE", 0x10000000, 4, value=5)
        w.mmio("READ", 0x10000000, 4, value=5)
        w.irq(0, 0, 1)
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Iterator, Optional, Sequence

from coreio import _core

__all__ = ["Record", "Trace", "Writer", "open"]


@dataclasses.dataclass
class Record:
    """One trace record; fields not used by ``kind`` are zero/empty.

    kind: "mmio", "dma", "irq", "claim", "ping", "reset", "connection", "protocol-error", "unknown".
    rid is the range id (mmio, irq, claim); mid the IOMMU id (dma). data holds
    the write data or the read result (``value`` is it as a little-endian int).
    """
    index: int
    kind: str
    time_ns: int
    client: int
    channel: str            #: "main" or "dma"
    towards: str            #: "client" (to the device) or "vm"
    id: int
    op: str                 #: "READ", "WRITE", "READP", "WRITEP", "WRITEA", "WRITEAP"
    size: int
    sid: int
    flags: int
    error: bool             #: the reply carried the bus-error bit
    status: str             #: "complete", "no-reply", "reply-only"
    tag: int
    mask: int
    address: int
    reply_after_ns: int
    cause: Optional[int]    #: dma: index of the MMIO record in flight
    data: bytes
    data2: bytes
    line: int
    level: int
    up: bool
    code: int
    message: str
    raw: bytes
    raw_reply: bytes

    @property
    def rid(self) -> int:
        return self.id

    @property
    def mid(self) -> int:
        return self.id

    @property
    def addr(self) -> int:
        return self.address

    @property
    def reply(self) -> Optional[bytes]:
        """What the device answered: the data of a read (element 2 appended for pairs),
        b"" for an acknowledged write, None for posted writes and unanswered requests."""
        if self.kind not in ("mmio", "dma") or self.status == "no-reply" or self.op in ("WRITE", "WRITEP"):
            return None
        return self.data + self.data2 if self.op in ("READ", "READP") else b""

    @property
    def time(self) -> float:
        """Seconds since the trace start."""
        return self.time_ns * 1e-9

    @property
    def value(self) -> int:
        """data as a little-endian integer."""
        return int.from_bytes(self.data, "little")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["value"] = self.value
        return d


class Trace:
    """An open trace file: ``header`` (a dict), iteration over ``Record``s."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self.header: dict[str, Any] = _core.TraceReader(self.path).header()
        self.warning = ""  #: set when the file's tail was cut off (records before it are good)

    def __iter__(self) -> Iterator[Record]:
        reader = _core.TraceReader(self.path)
        while True:
            d = reader.next()  # raises ValueError naming the byte offset on corruption
            if d is None:
                self.warning = reader.warning
                return
            yield Record(**d)

    def records(self) -> list[Record]:
        return list(self)

    def to_records(self) -> list[dict[str, Any]]:
        """Every record as a plain dict (``pandas.DataFrame(trace.to_records())``)."""
        return [r.to_dict() for r in self]

    def stats(self) -> dict[str, Any]:
        """Counts: records, per kind, MMIO per op, bus errors, IRQ rising edges, DMA bytes, duration."""
        kinds: Counter[str] = Counter()
        ops: Counter[str] = Counter()
        errors = irq_rises = dma_bytes = last = 0
        for r in self:
            kinds[r.kind] += 1
            last = max(last, r.time_ns)
            if r.kind == "mmio":
                ops[r.op] += 1
                errors += r.error
            elif r.kind == "dma":
                dma_bytes += r.size
                errors += r.error
            elif r.kind == "irq" and r.level:
                irq_rises += 1
        return {"records": sum(kinds.values()), **{k: kinds[k] for k in sorted(kinds)},
                "mmio_ops": dict(ops), "errors": errors, "irq_rises": irq_rises,
                "dma_bytes": dma_bytes, "duration_ns": last}


def open(path: str) -> Trace:  # noqa: A001 - the natural name in this namespace
    """Opens a trace file (OSError naming the path if it is not one)."""
    return Trace(path)


class Writer:
    """Writes a trace (observer "vm"): records appended in order, time from the trace start.

    ranges: (rid, base, size) of the MMIO ranges; memory: (base, size) guest memory.
    """

    def __init__(self, path: str, *, ranges: Sequence[tuple[int, int, int]] = (),
                 memory: Sequence[tuple[int, int]] = (), labels: Optional[dict[str, str]] = None,
                 tool: str = "coreio-python") -> None:
        header = {"tool": tool, "observer": "vm",
                  "ranges": [{"rid": r, "base": b, "size": s} for r, b, s in ranges],
                  "memory": [{"base": b, "size": s} for b, s in memory],
                  "labels": dict(labels or {})}
        self._w = _core.TraceWriter(str(path), header)
        self._time = 0

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_time(self, time_ns: Optional[int]) -> int:
        self._time = self._time + 1000 if time_ns is None else time_ns
        return self._time

    def append(self, record: dict[str, Any]) -> int:
        """Appends a record given as a dict (the keys of ``Record``; missing ones default). Returns its index."""
        return self._w.append(record)

    def mmio(self, op: str, addr: int, size: int, *, rid: int = 0, value: int = 0, data: Optional[bytes] = None,
             data2: bytes = b"", error: bool = False, tag: Optional[int] = None, time_ns: Optional[int] = None,
             reply_after_ns: int = 500) -> int:
        """An MMIO access folded with its reply (reads: value/data is what the device returned)."""
        payload = data if data is not None else (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return self.append({"kind": "mmio", "op": op, "address": addr, "size": size, "id": rid,
                            "data": payload, "data2": data2, "error": error,
                            "tag": self._w.records if tag is None else tag, "towards": "client",
                            "time_ns": self._next_time(time_ns),
                            "reply_after_ns": 0 if op in ("WRITE", "WRITEP") else reply_after_ns})

    def irq(self, rid: int, line: int, level: int, *, time_ns: Optional[int] = None) -> int:
        """An IRQ level change by the device."""
        return self.append({"kind": "irq", "id": rid, "line": line, "level": level, "towards": "vm",
                            "time_ns": self._next_time(time_ns)})

    def claim(self, rid: int, *, time_ns: Optional[int] = None) -> int:
        """A range claim by the device."""
        return self.append({"kind": "claim", "id": rid, "towards": "vm", "time_ns": self._next_time(time_ns)})

    def reset(self, *, time_ns: Optional[int] = None) -> int:
        """A RESET sent by the VM."""
        return self.append({"kind": "reset", "towards": "client", "time_ns": self._next_time(time_ns)})

    def close(self) -> None:
        self._w.close()

