"""Shared fixtures of the coreio Python tests (run by ctest, one process per file)."""
from __future__ import annotations

import threading
from typing import Callable, Iterator, Optional

import pytest

import coreio
from coreio.mockvm import Vm

pytest_plugins = ["coreio.pytest_plugin"]

BASE = 0x10000000  # range 0 of the default Vm
MEM = 0x80000000   # guest memory of the default Vm


class RegFile:
    """A register file written the way the original module's users wrote devices."""

    def __init__(self, size: int = 0x1000) -> None:
        self.bytes = bytearray(size)
        self.calls: list[tuple] = []

    def read(self, priv, addr, buf, flags):
        self.calls.append(("read", priv, addr, len(buf), flags))
        off = addr & 0xFFF
        buf[:] = self.bytes[off:off + len(buf)]
        return 0

    def write(self, priv, addr, buf, flags):
        self.calls.append(("write", priv, addr, bytes(buf), flags))
        off = addr & 0xFFF
        self.bytes[off:off + len(buf)] = buf
        return 0


class LoopThread:
    """Runs coreio.mainloop (or a client's) in slices in a background thread."""

    def __init__(self, mainloop: Callable[[int], int] = coreio.mainloop) -> None:
        self._mainloop = mainloop
        self._stop = threading.Event()
        self.result: Optional[int] = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                rc = self._mainloop(20_000)
                if rc != 0:
                    self.result = rc
                    return
        except BaseException as e:  # noqa: B902 - reported to the test
            self.error = e

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "loop thread did not stop"

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@pytest.fixture
def vm() -> Iterator[Vm]:
    with Vm(timeout=5.0) as v:
        yield v


@pytest.fixture
def default_client() -> Iterator[None]:
    """Makes sure the module's default client is disconnected after the test."""
    coreio.disconnect()
    yield
    coreio.disconnect()


@pytest.fixture
def regfile_device(vm: Vm, default_client: None) -> Iterator[tuple[Vm, RegFile]]:
    """A RegFile registered through the original module on range 0, loop running."""
    rf = RegFile()
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, rf.read, rf.write, funcp="priv") == 0
    loop = LoopThread()
    vm.wait_claim(0)
    yield vm, rf
    loop.stop()
    assert loop.error is None
