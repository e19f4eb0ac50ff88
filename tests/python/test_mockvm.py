"""coreio.mockvm.Vm and the pytest fixtures, against devices written in C and in Python."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
import time

import pytest

import coreio
from coreio.mockvm import Vm

BASE = 0x10000000
MEM = 0x80000000
REGFILE = os.environ.get("COREIO_EXAMPLE_REGFILE", "")
REGFILE_PY = Path(os.environ.get("COREIO_SOURCE_DIR", Path(__file__).parents[2])) / "examples/python/regfile.py"


class Registers(coreio.Device):
    """A Python register file with a bus error at 0xFFC and a reset counter."""

    def __init__(self) -> None:
        self.regs = bytearray(0x1000)
        self.resets = 0

    def read(self, addr, size, flags):
        off = addr & 0xFFF
        if off == 0xFFC:
            raise coreio.BusError()
        return int.from_bytes(self.regs[off:off + size], "little")

    def write(self, addr, size, value, flags):
        off = addr & 0xFFF
        self.regs[off:off + size] = value.to_bytes(size, "little")

    def reset(self):
        self.resets += 1


def test_vm_listens_on_loopback_with_a_free_port(coreio_vm):
    assert coreio_vm.endpoint == f"127.0.0.1:{coreio_vm.port}" and coreio_vm.port > 0
    assert coreio_vm.client_count == 0 and not coreio_vm.claimed(0)


def test_unclaimed_range_and_bad_addresses(coreio_vm):
    assert coreio_vm.read32(BASE) == 0xAAAAAAAA  # as a real VM answers an unclaimed range
    coreio_vm.write32(BASE, 1)                     # dropped
    with pytest.raises(ValueError):
        coreio_vm.read32(0x20000000)               # outside every range
    with pytest.raises(ValueError):
        coreio_vm.read(BASE, 33)
    with pytest.raises(ValueError):
        coreio_vm.write(BASE, b"")
    with pytest.raises(ValueError):
        coreio_vm.irq_level(8, 0)
    with pytest.raises(ValueError):
        Vm(ranges=[(0x123, 0x1000)])               # not 4 KiB aligned


def test_wait_claim_times_out(coreio_vm):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        coreio_vm.wait_claim(0, timeout=0.1)
    assert time.monotonic() - t0 >= 0.09  # waited about the timeout, not less


@pytest.mark.parametrize("lang", ["c", "python"])
def test_regfile_process(coreio_device_command, lang):
    """The C example and its Python port (original module, unchanged style) behave alike."""
    if lang == "c" and not REGFILE:
        pytest.skip("COREIO_EXAMPLE_REGFILE not set (run through ctest)")
    vm = coreio_device_command([REGFILE] if lang == "c" else [sys.executable, str(REGFILE_PY), "{endpoint}"])
    for width in (1, 2, 4, 8):
        value = 0x8877665544332211 & ((1 << (8 * width)) - 1)
        vm.write_value(BASE + 0x20, width, value)
        assert vm.read_value(BASE + 0x20, width) == value
    vm.write(BASE + 0x40, bytes(range(32)))
    assert vm.read(BASE + 0x40, 32) == bytes(range(32))
    vm.write_pair(BASE + 0x80, b"ab", b"cd")
    assert vm.read_pair(BASE + 0x80, 2) == (b"ab", b"cd")
    vm.write8(BASE + 0xF00, 0b101)                 # the regfile's IRQ register
    assert vm.wait_irq(0, 0) and vm.wait_irq(0, 2)
    assert vm.irq_lines(0) == 0b101
    vm.write8(BASE + 0xF00, 0)
    assert vm.wait_irq(0, 0, level=False)
    assert vm.irq_count(0, 0) == 1 and vm.irq_count(0, 1) == 0
    vm.ping()
    assert vm.counters()["clients_accepted"] == 1


def test_python_device_fixture(coreio_python_device):
    dev = Registers()
    vm = coreio_python_device(dev)
    for width in (1, 2, 4, 8, 16, 32):
        value = int.from_bytes(bytes(range(1, width + 1)), "little")
        vm.write(BASE + 0x100, value.to_bytes(width, "little"), ack=True)
        assert vm.read(BASE + 0x100, width) == value.to_bytes(width, "little")
    with pytest.raises(coreio.BusError):
        vm.read32(BASE + 0xFFC)
    vm.write_pair(BASE + 0x200, b"\x01" * 8, b"\x02" * 8)
    assert vm.read64(BASE + 0x208) == 0x0202020202020202
    vm.reset()
    vm.ping()  # the reset was handled before the ping's echo
    assert dev.resets == 1


def test_read_many_and_write_many(coreio_python_device):
    vm = coreio_python_device(Registers())
    addrs = [BASE + 4 * i for i in range(200)]
    vm.write_many(addrs, [i * 3 for i in range(200)], size=4, ack=True)
    assert vm.read_many(addrs, size=4, window=32) == [i * 3 for i in range(200)]


def test_guest_memory_slices(coreio_vm):
    mem = coreio_vm.mem
    assert mem[MEM:MEM + 4] == b"\0\0\0\0"
    mem[MEM + 10:MEM + 13] = b"xyz"
    assert mem[MEM + 10:MEM + 13] == b"xyz" and mem[MEM + 11] == ord("y")
    mem[MEM] = 0x41
    assert mem.read(MEM, 1) == b"A"
    assert mem.regions() == [(MEM, 16 << 20)]
    with pytest.raises(IndexError, match="outside every memory region"):
        mem[0:4]
    with pytest.raises(IndexError):
        mem[MEM + (16 << 20) - 2:MEM + (16 << 20) + 2] = b"abcd"
    with pytest.raises(ValueError):
        mem[MEM:MEM + 4] = b"ab"
    with pytest.raises(ValueError):
        mem[MEM:]


def test_slow_device_times_out():
    class Slow(coreio.Device):
        def read(self, addr, size, flags):
            time.sleep(0.5)
            return 0

    with Vm(timeout=0.1) as vm, coreio.Client(vm.endpoint) as c:
        c.add_device(0, Slow())
        c.start()
        vm.wait_claim(0, 5)
        with pytest.raises(TimeoutError):
            vm.read32(BASE)


def test_drop_clients_and_closed_vm(coreio_python_device):
    vm = coreio_python_device(Registers())
    assert vm.client_count == 1
    vm.drop_clients()
    assert vm.client_count == 0
    vm.close()
    with pytest.raises(ValueError, match="closed"):
        vm.read32(BASE)


def test_irq_count_and_wait_irq_from_python_device(coreio_vm):
    with coreio.Client(coreio_vm.endpoint) as c:
        c.add_device(0, Registers())
        c.start()
        coreio_vm.wait_claim()
        assert not coreio_vm.wait_irq(0, 1, True, timeout=0.05)

        def pulses():
            for _ in range(5):
                c.irq(0, 1, True)
                c.irq(0, 1, False)

        t = threading.Thread(target=pulses)
        t.start()
        t.join()
        coreio_vm.ping()
        assert coreio_vm.irq_count(0, 1) == 5 and not coreio_vm.irq_level(0, 1)
