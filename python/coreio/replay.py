"""coreio.replay: replay a trace against a device model and get what diverged.

In process (the model is a Python object, as for ``Client.add_device``)::

    report = coreio.replay.replay("run.ctrace", device=lambda host: MyDevice(host))
    assert report.passed, report.summary

Or as a command (COREHDL_VM is set to the replayer's address)::

    report = coreio.replay.replay("run.ctrace", command="./my_device")
    if not report.passed:
        d = report.divergence          # the first one: kind, record, field, expected, got
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from coreio import _core

__all__ = ["replay", "Report", "Divergence", "ReplayHost"]

ReplayHost = _core.ReplayHost  #: irq_update(rid, line, level), dma_read(addr, size), dma_write(addr, data)


@dataclasses.dataclass
class Divergence:
    """Where the device did not do what the recording says.

    kind: "mismatch", "missing", "unexpected", "protocol", "crash", "hang",
    "irq-stuck-high", "dma-into-mmio", "assertion".
    """
    kind: str
    record: int             #: trace record index
    step: Optional[int]     #: step of the replay (None: before the first)
    field: str              #: e.g. "mmio.data", "irq.level"
    expected: str
    got: str
    context: str
    description: str        #: one line saying all of the above

    def __str__(self) -> str:
        return self.description


@dataclasses.dataclass
class Report:
    passed: bool
    divergences: list[Divergence]
    counts: dict[str, int]  #: steps, accesses, replies_checked, resets, irqs, dmas, fills
    seconds: float
    error: str              #: could not run at all (no device, bad trace), else ""
    summary: str            #: the replayer's text report
    warning: str            #: e.g. the trace's tail was cut off

    @property
    def divergence(self) -> Optional[Divergence]:
        """The first divergence, or None."""
        return self.divergences[0] if self.divergences else None


def replay(trace: str, *, device: Optional[Callable[[Any], Any]] = None, command: Optional[str] = None,
           keep_going: bool = False, timeout: float = 5.0, client: int = 0) -> Report:
    """Plays the VM side of ``trace`` to a device and checks its replies, IRQs and DMA.

    device: ``factory(host) -> model`` (a model object for range 0, or a dict
    {rid: model}); host is a ``ReplayHost`` for IRQs and DMA. A fresh model is
    built per run. command: a shell command started as the device instead.
    keep_going: report every divergence, not only the first.
    """
    if (device is None) == (command is None):
        raise ValueError("give exactly one of device= or command=")
    if device is not None:
        d = _core.replay_in_process(str(trace), device, keep_going, timeout, client)
    else:
        d = _core.replay_command(str(trace), command, keep_going, timeout, client)
    d["divergences"] = [Divergence(**x) for x in d["divergences"]]
    return Report(**d)
