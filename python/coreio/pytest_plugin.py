"""pytest fixtures for device models against the in-process mock VM.

Enable with ``-p coreio.pytest_plugin`` or, in a conftest.py,
``pytest_plugins = ["coreio.pytest_plugin"]``.

- ``coreio_vm``: a fresh ``coreio.mockvm.Vm`` (range 0 at 0x10000000, 16 MiB memory at 0x80000000).
- ``coreio_device_command``: ``start(command, rid=0) -> Vm``: runs a device program
  (COREHDL_VM set to the VM, ``{endpoint}`` in the command replaced too) and waits for its claim;
  the process is killed at the end of the test.
- ``coreio_python_device``: ``start(device, rid=0) -> Vm``: serves a Python device object
  (see ``coreio.Device``) from a ``coreio.Client`` loop thread in this process.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from typing import Any, Callable, Iterator, Sequence, Union

import pytest

import coreio
from coreio.mockvm import Vm


@pytest.fixture
def coreio_vm() -> Iterator[Vm]:
    """A mock VM for one test."""
    with Vm() as vm:
        yield vm


@pytest.fixture
def coreio_device_command(coreio_vm: Vm) -> Iterator[Callable[..., Vm]]:
    """Starts a device process against ``coreio_vm``; returns the Vm once the device claimed rid."""
    procs: list[subprocess.Popen] = []

    def start(command: Union[str, Sequence[str]], rid: int = 0, timeout: float = 10.0) -> Vm:
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        argv = [a.replace("{endpoint}", coreio_vm.endpoint) for a in argv]
        env = dict(os.environ, COREHDL_VM=coreio_vm.endpoint)
        p = subprocess.Popen(argv, env=env)
        procs.append(p)
        try:
            coreio_vm.wait_claim(rid, timeout)
        except TimeoutError:
            raise TimeoutError(f"{argv[0]} did not claim range {rid} (exit status {p.poll()})") from None
        return coreio_vm

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.fixture
def coreio_python_device(coreio_vm: Vm) -> Iterator[Callable[..., Vm]]:
    """Serves a Python device object on ``coreio_vm`` from a loop thread in this process."""
    clients: list[coreio.Client] = []

    def start(device: Any, rid: int = 0) -> Vm:
        c = coreio.Client(coreio_vm.endpoint)
        clients.append(c)
        c.add_device(rid, device)
        c.start()
        coreio_vm.wait_claim(rid)
        return coreio_vm

    yield start
    for c in clients:
        c.close()
