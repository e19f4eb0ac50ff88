"""coreio.Client: several devices per process, exceptions instead of errno, loop thread, asyncio."""
from __future__ import annotations

import asyncio
import errno
import socket

import pytest

import coreio
from coreio.mockvm import Vm

BASE = 0x10000000
MEM = 0x80000000


class Counter(coreio.Device):
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def read(self, addr, size, flags):
        if addr & 0xFFF == 0:
            self.count += 1
            return self.count
        return self.name.encode().ljust(size, b"\0")[:size]  # bytes work too

    def write(self, addr, size, value, flags):
        self.count = value


def test_connect_error_raises():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(coreio.CoreioError) as e:
        coreio.Client(f"127.0.0.1:{port}")
    assert e.value.errno == errno.ECONNREFUSED


def test_two_devices_on_two_vms_in_one_process():
    with Vm() as vm1, Vm() as vm2, coreio.Client(vm1.endpoint) as c1, coreio.Client(vm2.endpoint) as c2:
        c1.add_device(0, Counter("one"))
        c2.add_device(0, Counter("two"))
        c1.start()
        c2.start()
        vm1.wait_claim()
        vm2.wait_claim()
        assert vm1.read(BASE + 8, 4) == b"one\0" and vm2.read(BASE + 8, 4) == b"two\0"
        assert [vm1.read32(BASE) for _ in range(3)] == [1, 2, 3]
        vm2.write32(BASE, 41, ack=True)
        assert vm2.read32(BASE) == 42
        with pytest.raises(coreio.CoreioError) as e:
            c1.add_device(0, Counter("again"))
        assert e.value.errno == errno.EBUSY
        with pytest.raises(RuntimeError):
            c1.start()


def test_device_without_read_is_rejected(coreio_vm):
    with coreio.Client(coreio_vm.endpoint) as c:
        with pytest.raises(AttributeError):
            c.add_device(0, object())


def test_bad_read_return_is_a_bus_error(coreio_vm, capfd):
    class Bad(coreio.Device):
        def read(self, addr, size, flags):
            return b"\x01" if addr & 0xFFF == 0 else "str"

    with coreio.Client(coreio_vm.endpoint) as c:
        c.add_device(0, Bad())
        c.start()
        coreio_vm.wait_claim()
        with pytest.raises(coreio.BusError):
            coreio_vm.read32(BASE)  # 1 byte for a 4-byte read
        with pytest.raises(coreio.BusError):
            coreio_vm.read32(BASE + 4)
        with pytest.raises(coreio.BusError):  # the base class has no registers
            coreio_vm.write32(BASE, 1, ack=True)
    err = capfd.readouterr().err
    assert "returned 1 bytes for a 4-byte access" in err and "must return an int or bytes" in err


def test_dma_and_irq_methods(coreio_vm):
    coreio_vm.mem[MEM:MEM + 4] = b"dmaa"
    with coreio.Client(coreio_vm.endpoint, dma_timeout=5.0) as c:
        c.start()
        assert c.dma_read(MEM, 4) == b"dmaa"
        c.dma_write(MEM + 4, b"bbbb")
        assert coreio_vm.mem[MEM + 4:MEM + 8] == b"bbbb"
        with pytest.raises(coreio.CoreioError) as e:
            c.dma_read(0x1000, 4)
        assert e.value.errno == errno.EFAULT
        c.irq(0, 2, True)
        assert coreio_vm.wait_irq(0, 2)
        with pytest.raises(coreio.CoreioError):
            c.irq(9, 0, True)


def test_loop_thread_reports_the_vm_going_away(coreio_vm):
    c = coreio.Client(coreio_vm.endpoint)
    c.add_device(0, Counter("x"))
    c.start()
    coreio_vm.wait_claim()
    coreio_vm.drop_clients()
    c._thread.join(10)
    assert c.loop_error in (-errno.ECONNRESET, -errno.ENOTCONN)
    c.close()


def test_asyncio_attach(coreio_vm):
    dev = Counter("aio")

    async def main():
        c = coreio.Client(coreio_vm.endpoint)
        c.add_device(0, dev)
        c.attach(asyncio.get_running_loop())
        await asyncio.to_thread(coreio_vm.wait_claim)
        values = await asyncio.gather(*(asyncio.to_thread(coreio_vm.read32, BASE) for _ in range(5)))
        c.close()
        return sorted(values)

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]


def test_run_in_this_thread(coreio_vm):
    with coreio.Client(coreio_vm.endpoint) as c:
        c.add_device(0, Counter("run"))
        c.run(0.05)  # no traffic: returns after the time
        coreio_vm.drop_clients()
        with pytest.raises(coreio.CoreioError):
            c.run(5.0)
