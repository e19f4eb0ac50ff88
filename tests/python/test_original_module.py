"""The original module's functions, as unchanged programs call them, against the mock VM."""
from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

import pytest

import coreio
from coreio.mockvm import Vm
from conftest import BASE, MEM, LoopThread, RegFile


# ---- connect / disconnect --------------------------------------------------------

def test_connect_errors(vm, default_client, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert coreio.connect(f"127.0.0.1:{free}") == -errno.ECONNREFUSED
    assert coreio.connect("127.0.0.1:notaport") == -errno.EINVAL
    monkeypatch.delenv("COREHDL_VM", raising=False)
    assert coreio.connect() == -errno.EINVAL
    assert coreio.connect(None) == -errno.EINVAL
    with pytest.raises(TypeError):
        coreio.connect(42)


def test_connect_from_corehdl_vm_and_twice(vm, default_client, monkeypatch):
    monkeypatch.setenv("COREHDL_VM", vm.endpoint)
    assert coreio.connect() == 0
    vm.wait_client(5)
    assert coreio.connect(vm.endpoint) == -errno.EISCONN
    coreio.disconnect()
    coreio.disconnect()  # twice is harmless
    assert coreio.connect(vm.endpoint) == 0


def test_disconnect_forgets_registrations(vm, default_client):
    rf = RegFile()
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, rf.read, rf.write) == 0
    coreio.disconnect()
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, rf.read, rf.write) == 0  # not -EBUSY


# ---- register --------------------------------------------------------------------

def test_register_errors(vm, default_client):
    rf = RegFile()
    assert coreio.register(0, rf.read, rf.write) == -errno.ENOTCONN
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(8, rf.read, rf.write) == -errno.EINVAL
    assert coreio.register(-1, rf.read, rf.write) == -errno.EINVAL
    with pytest.raises(TypeError, match="read must be callable"):
        coreio.register(0, None, rf.write)
    with pytest.raises(TypeError, match="write must be callable"):
        coreio.register(0, rf.read, 5)
    with pytest.raises(TypeError, match="readp must be callable or None"):
        coreio.register(0, rf.read, rf.write, readp="x")
    assert coreio.register(0, rf.read, rf.write) == 0
    assert coreio.register(0, rf.read, rf.write) == -errno.EBUSY


def test_not_connected_errors(default_client):
    assert coreio.mainloop(1000) == -errno.ENOTCONN
    assert coreio.irq_update(0, 0, 1) == -errno.ENOTCONN
    assert coreio.dma_read(0, 0, MEM, bytearray(4), 0) == -errno.ENOTCONN
    assert coreio.dma_write(0, 0, MEM, b"abcd", 0) == -errno.ENOTCONN
    nfds, r, w = coreio.preparefds([], [])
    assert nfds == -errno.ENOTCONN and r == [] and w == []
    assert coreio.processfds([], []) == -errno.ENOTCONN


# ---- MMIO ------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 2, 4, 8])
def test_write_then_read(regfile_device, width):
    vm, rf = regfile_device
    value = int.from_bytes(bytes(range(0x11, 0x11 + width)), "little")
    for off in (0x0, 0x10 * width, 0xFF8):
        vm.write(BASE + off, value.to_bytes(width, "little"))
        assert vm.read_value(BASE + off, width) == value
    assert rf.bytes[0:width] == value.to_bytes(width, "little")


def test_wide_accesses_and_flags(regfile_device):
    vm, rf = regfile_device
    data = bytes(range(32))
    vm.write(BASE + 0x100, data, ack=True, flags=coreio.FLAGS_PRIV)
    assert vm.read(BASE + 0x100, 32, flags=coreio.FLAGS_SECURE) == data
    assert vm.read(BASE + 0x108, 16) == data[8:24]
    writes = [c for c in rf.calls if c[0] == "write"]
    assert writes[-1] == ("write", "priv", BASE + 0x100, data, coreio.FLAGS_PRIV)
    assert rf.calls[-1] == ("read", "priv", BASE + 0x108, 16, 0)


def test_pair_without_pair_handlers_touches_both_elements(regfile_device):
    vm, rf = regfile_device
    vm.write_pair(BASE + 0x200, b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", ack=True)
    assert rf.bytes[0x200:0x208] == bytes(range(1, 9))
    assert vm.read_pair(BASE + 0x200, 4) == (b"\x01\x02\x03\x04", b"\x05\x06\x07\x08")


def test_pair_handlers(vm, default_client):
    seen = []

    def readp(priv, addr, b1, b2, flags):
        seen.append(("readp", priv, addr, len(b1), len(b2)))
        b1[:] = b"A" * len(b1)
        b2[:] = b"B" * len(b2)
        return 0

    def writep(priv, addr, b1, b2, flags):
        seen.append(("writep", priv, addr, bytes(b1), bytes(b2)))
        return 0

    rf = RegFile()
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, rf.read, rf.write, readp, writep, funcp=7) == 0
    loop = LoopThread()
    try:
        vm.wait_claim()
        assert vm.read_pair(BASE + 8, 8) == (b"A" * 8, b"B" * 8)
        vm.write_pair(BASE + 8, b"xy", b"zw", ack=True)
        assert seen == [("readp", 7, BASE + 8, 8, 8), ("writep", 7, BASE + 8, b"xy", b"zw")]
        assert rf.calls == []  # the single handlers were not used
    finally:
        loop.stop()


def test_handler_results_become_bus_errors(vm, default_client, capfd):
    def read(priv, addr, buf, flags):
        off = addr & 0xFFF
        if off == 0x0:
            return 1                    # the original's bus error
        if off == 0x4:
            raise RuntimeError("device model bug")
        if off == 0x8:
            return "not an int"
        if off == 0xC:
            buf.extend(b"12")           # resized: not the access size any more
            return 0
        if off == 0x10:
            return None                 # None counts as success
        buf[:] = b"\x99" * len(buf)
        return False

    def write(priv, addr, buf, flags):
        if addr & 0xFFF == 0x0:
            raise ValueError("bad write")
        return 0 if addr & 0xFFF == 0x4 else 3

    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, read, write) == 0
    loop = LoopThread()
    try:
        vm.wait_claim()
        for off in (0x0, 0x4, 0x8, 0xC):
            with pytest.raises(coreio.BusError):
                vm.read32(BASE + off)
        assert vm.read32(BASE + 0x10) == 0
        assert vm.read32(BASE + 0x14) == 0x99999999  # still serving after all of that
        with pytest.raises(coreio.BusError):
            vm.write32(BASE + 0x0, 1, ack=True)
        vm.write32(BASE + 0x4, 1, ack=True)
        with pytest.raises(coreio.BusError):
            vm.write32(BASE + 0x8, 1, ack=True)
    finally:
        loop.stop()
    assert loop.error is None
    err = capfd.readouterr().err
    assert "RuntimeError: device model bug" in err and "ValueError: bad write" in err
    assert "the read handler raised an exception at address 0x10000004" in err
    assert "returned a str, not an int" in err
    assert "resized its buffer from 4 to 6 bytes" in err


def test_keyboard_interrupt_in_handler_stops_mainloop(vm, default_client):
    def read(priv, addr, buf, flags):
        raise KeyboardInterrupt

    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, read, read) == 0
    vm.wait_claim()
    caught = []

    def run():
        try:
            coreio.mainloop(5_000_000)
        except KeyboardInterrupt:
            caught.append(True)

    t = threading.Thread(target=run)
    t.start()
    with pytest.raises(coreio.BusError):  # the access itself gets a bus error
        vm.read32(BASE)
    t.join(10)
    assert caught == [True]


def test_mainloop_returns_when_vm_drops_the_client(regfile_device):
    vm, _ = regfile_device
    vm.drop_clients()
    deadline = time.monotonic() + 20
    rc = 0
    while rc == 0 and time.monotonic() < deadline:
        rc = coreio.mainloop(10_000)
    assert rc in (-errno.ECONNRESET, -errno.ENOTCONN)


def test_mainloop_runs_for_the_time_asked(vm, default_client):
    assert coreio.connect(vm.endpoint) == 0
    t0 = time.monotonic()
    assert coreio.mainloop(50_000) == 0
    assert time.monotonic() - t0 >= 0.05


# ---- IRQ -------------------------------------------------------------------------

def test_irq_update_errors(vm, default_client):
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.irq_update(8, 0, 1) == -errno.EINVAL
    assert coreio.irq_update(0, 8, 1) == -errno.EINVAL
    assert coreio.irq_update(0, 0, 2) == -errno.EINVAL
    assert coreio.irq_update(-1, 0, 1) == -errno.EINVAL


def test_irq_from_another_thread_while_mainloop_runs(regfile_device):
    vm, _ = regfile_device
    errors = []

    def pulse(n):
        for _ in range(n):
            for state in (1, 0):
                rc = coreio.irq_update(0, 3, state)
                if rc:
                    errors.append(rc)
                if not vm.wait_irq(0, 3, bool(state)):
                    errors.append(f"line never went to {state}")

    t = threading.Thread(target=pulse, args=(20,))
    t.start()
    t.join(60)
    assert errors == []
    assert vm.irq_count(0, 3) == 20
    assert coreio.irq_update(0, 5, 1) == 0
    assert vm.wait_irq(0, 5, True)
    vm.ping()  # everything the device sent before has been seen
    assert vm.irq_lines(0) == 1 << 5


# ---- DMA -------------------------------------------------------------------------

def test_blocking_dma_from_another_thread(regfile_device):
    vm, _ = regfile_device
    vm.mem[MEM:MEM + 8] = b"guestmem"
    buf = bytearray(8)
    assert coreio.dma_read(0, 0, MEM, buf, 0) == 0
    assert buf == b"guestmem"
    assert coreio.dma_write(0, 0, MEM + 0x100, b"written!", 0) == 0
    assert vm.mem[MEM + 0x100:MEM + 0x108] == b"written!"
    big = bytes(range(256)) * 40  # several chunks
    assert coreio.dma_write(0, 0, MEM + 0x1000, big, 0) == 0
    back = bytearray(len(big))
    assert coreio.dma_read(0, 0, MEM + 0x1000, back, 0) == 0
    assert back == big


def test_blocking_dma_inside_a_handler(vm, default_client):
    """A write to 0x0 copies 16 bytes of guest memory (DMA read) back to guest memory + 0x40."""
    def write(priv, addr, buf, flags):
        src = int.from_bytes(buf, "little")
        data = bytearray(16)
        if coreio.dma_read(0, 0, src, data, 0) != 0:
            return 1
        return 1 if coreio.dma_write(0, 0, src + 0x40, data, 0) != 0 else 0

    def read(priv, addr, buf, flags):
        return 0

    vm.mem[MEM:MEM + 16] = b"0123456789abcdef"
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, read, write) == 0
    loop = LoopThread()
    try:
        vm.wait_claim()
        vm.write64(BASE, MEM, ack=True)
        assert vm.mem[MEM + 0x40:MEM + 0x50] == b"0123456789abcdef"
        with pytest.raises(coreio.BusError):  # DMA outside guest memory faults: the handler says so
            vm.write64(BASE, 0x1000, ack=True)
    finally:
        loop.stop()


def test_dma_errors(vm, default_client):
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.dma_read(0, 0, MEM, bytearray(0), 0) == -errno.EINVAL
    assert coreio.dma_read(256, 0, MEM, bytearray(4), 0) == -errno.EINVAL
    assert coreio.dma_read(0, 16, MEM, bytearray(4), 0) == -errno.EINVAL
    assert coreio.dma_read(-1, 0, MEM, bytearray(4), 0) == -errno.EINVAL
    with pytest.raises(TypeError, match="writable"):
        coreio.dma_read(0, 0, MEM, b"immutable", 0)
    with pytest.raises(TypeError, match="bytes-like"):
        coreio.dma_write(0, 0, MEM, "text", 0)
    with pytest.raises(TypeError, match="cpl must be callable"):
        coreio.dma_write(0, 0, MEM, b"x", 0, cpl=3)
    loop = LoopThread()
    try:
        assert coreio.dma_read(0, 0, 0x1000, bytearray(4), 0) == -errno.EFAULT  # no memory there
    finally:
        loop.stop()


def test_dma_with_completion(vm, default_client):
    vm.mem[MEM:MEM + 4] = b"\x01\x02\x03\x04"
    assert coreio.connect(vm.endpoint) == 0
    done = []
    cond = threading.Condition()

    def cpl(cplp, error):
        with cond:
            done.append((cplp, error, threading.current_thread().name))
            cond.notify_all()

    buf = bytearray(4)
    assert coreio.dma_read(0, 0, MEM, buf, 0, cpl, "read") == 0
    assert coreio.dma_write(0, 0, MEM + 8, b"wxyz", 0, cpl, "write") == 0
    assert coreio.dma_read(0, 0, 0x1000, bytearray(4), 0, cpl, "fault") == 0
    assert done == []  # completions run from the loop, not before
    def run():
        deadline = time.monotonic() + 20
        while len(done) < 3 and time.monotonic() < deadline:
            coreio.mainloop(20_000)

    loop = threading.Thread(target=run, name="loop")
    loop.start()
    with cond:
        assert cond.wait_for(lambda: len(done) == 3, timeout=20)
    loop.join()
    assert sorted((p, e) for p, e, _ in done) == [("fault", -errno.EFAULT), ("read", 0), ("write", 0)]
    assert all(name == "loop" for _, _, name in done)
    assert buf == b"\x01\x02\x03\x04"
    assert vm.mem[MEM + 8:MEM + 12] == b"wxyz"


def test_pending_dma_completes_with_connreset_on_disconnect(vm, default_client):
    assert coreio.connect(vm.endpoint) == 0
    done = []
    assert coreio.dma_read(0, 0, MEM, bytearray(64), 0, lambda p, e: done.append((p, e)), 1) == 0
    coreio.disconnect()
    assert done == [(1, -errno.ECONNRESET)]


def test_exception_in_completion_is_printed(vm, default_client, capfd):
    assert coreio.connect(vm.endpoint) == 0

    called = []

    def cpl(cplp, error):
        called.append(error)
        raise RuntimeError("completion bug")

    assert coreio.dma_write(0, 0, MEM, b"abcd", 0, cpl) == 0
    deadline = time.monotonic() + 20
    while not called and time.monotonic() < deadline:
        assert coreio.mainloop(20_000) == 0  # the exception does not end the loop
    assert called == [0]
    assert "RuntimeError: completion bug" in capfd.readouterr().err


# ---- preparefds / processfds -----------------------------------------------------

def test_select_loop_with_the_programs_own_fds(vm, default_client):
    """A program multiplexing its own pipe and the library's sockets in select.select."""
    rf = RegFile()
    assert coreio.connect(vm.endpoint) == 0
    assert coreio.register(0, rf.read, rf.write) == 0
    rpipe, wpipe = os.pipe()
    got_from_pipe = []
    stop = threading.Event()

    def program():
        while not stop.is_set():
            nfds, readable, writable = coreio.preparefds([rpipe], [])
            # the program's pipe plus the library's own fd(s) (one epoll fd today)
            assert nfds > rpipe and rpipe in readable and len(readable) >= 2
            r, w, _ = select.select(readable, writable, [], 0.05)
            if rpipe in r:
                got_from_pipe.append(os.read(rpipe, 100))
            assert coreio.processfds(r, w) == 0

    t = threading.Thread(target=program)
    t.start()
    try:
        vm.wait_claim()
        os.write(wpipe, b"hello")
        for width in (1, 2, 4, 8):
            vm.write_value(BASE + 0x40, width, 0x0102030405060708 & ((1 << (8 * width)) - 1))
            assert vm.read_value(BASE + 0x40, width) == 0x0102030405060708 & ((1 << (8 * width)) - 1)
        deadline = time.monotonic() + 5
        while not got_from_pipe and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got_from_pipe == [b"hello"]
    finally:
        stop.set()
        t.join(10)
        os.close(rpipe)
        os.close(wpipe)


def test_preparefds_accepts_objects_with_fileno(vm, default_client):
    assert coreio.connect(vm.endpoint) == 0
    with socket.socket() as s:
        nfds, readable, writable = coreio.preparefds([s], [s])
        assert readable[0] is s and writable == [s]
        assert nfds > s.fileno()
        with pytest.raises(TypeError):
            coreio.preparefds(["x"], [])
        with pytest.raises(ValueError, match="FD_SETSIZE"):
            coreio.processfds([5000], [])


def test_ctrl_c_interrupts_mainloop_forever(vm):
    """mainloop(-1) waits with the GIL released but still sees SIGINT within its 100 ms slice."""
    import signal
    import subprocess
    import sys
    code = ("import coreio, sys; assert coreio.connect(sys.argv[1]) == 0; print('ready', flush=True); "
            "coreio.mainloop(-1)")
    p = subprocess.Popen([sys.executable, "-c", code, vm.endpoint], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=10)
        assert p.returncode != 0 and "KeyboardInterrupt" in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("setting,expected", [("200", -errno.ETIMEDOUT), ("12x", -errno.ECONNRESET)])
def test_dma_timeout_from_the_environment(setting, expected):
    """COREIO_DMA_TIMEOUT_MS as the C API reads it: a blocking DMA the VM never answers gives up after it;
    a malformed value means no timeout (the DMA ends only when the VM closes, here after 3 s)."""
    import subprocess
    import sys
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(2)
    held = []

    def silent_vm():  # takes both connections, answers nothing, then closes
        server.settimeout(10)
        try:
            held.extend(server.accept()[0] for _ in range(2))
            time.sleep(3)
        finally:
            for s in held:
                s.close()

    t = threading.Thread(target=silent_vm, daemon=True)
    t.start()
    code = ("import coreio, sys; assert coreio.connect(sys.argv[1]) == 0; "
            "print(coreio.dma_read(0, 0, 0x1000, bytearray(4)))")
    env = dict(os.environ, COREIO_DMA_TIMEOUT_MS=setting)
    try:
        out = subprocess.run([sys.executable, "-c", code, f"127.0.0.1:{server.getsockname()[1]}"], env=env,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert int(out.stdout) == expected
    finally:
        t.join(timeout=15)
        server.close()
