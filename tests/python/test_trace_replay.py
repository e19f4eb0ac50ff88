"""coreio.trace (read, stats, write) and coreio.replay (in process and as a command)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import coreio
import coreio.replay
import coreio.trace
from coreio.mockvm import Vm

BASE = 0x10000000
SOURCE = Path(os.environ.get("COREIO_SOURCE_DIR", Path(__file__).parents[2]))
REGFILE_PY = SOURCE / "examples/python/regfile.py"
REGFILE_C = os.environ.get("COREIO_EXAMPLE_REGFILE", "")


class Timerish(coreio.Device):
    """Registers; writing 1 to 0x10 raises IRQ line 0, writing 0 lowers it."""

    def __init__(self, host=None, bug: bool = False) -> None:
        self.host = host  # a coreio.Client or a replay host: both have irq_update-like calls
        self.regs = bytearray(0x1000)
        self.bug = bug

    def _irq(self, level: bool) -> None:
        if isinstance(self.host, coreio.Client):
            self.host.irq(0, 0, level)
        else:
            self.host.irq_update(0, 0, level)

    def read(self, addr, size, flags):
        off = addr & 0xFFF
        v = int.from_bytes(self.regs[off:off + size], "little")
        return v + 1 if self.bug and off == 0x8 else v

    def write(self, addr, size, value, flags):
        off = addr & 0xFFF
        self.regs[off:off + size] = value.to_bytes(size, "little")
        if off == 0x10:
            self._irq(bool(value & 1))


def record_session(path: Path) -> None:
    """A Python device driven by the mock VM, recorded by the VM."""
    with Vm() as vm, coreio.Client(vm.endpoint) as c:
        dev = Timerish(c)
        with vm.record(path):
            c.add_device(0, dev)
            c.start()
            vm.wait_claim()
            for width in (1, 2, 4, 8):
                vm.write_value(BASE + 0x8, width, 0x1122334455667788 & ((1 << 8 * width) - 1), ack=True)
                assert vm.read_value(BASE + 0x8, width) == 0x1122334455667788 & ((1 << 8 * width) - 1)
            vm.write32(BASE + 0x10, 1, ack=True)
            assert vm.wait_irq(0, 0)
            vm.write32(BASE + 0x10, 0, ack=True)
            assert vm.wait_irq(0, 0, False)
            vm.ping()


def test_read_a_recorded_python_device(tmp_path):
    path = tmp_path / "run.ctrace"
    record_session(path)
    t = coreio.trace.open(path)
    assert t.header["observer"] == "vm" and t.header["ranges"][0]["base"] == BASE
    recs = t.records()
    mmio = [r for r in recs if r.kind == "mmio"]
    assert [(r.op, r.size) for r in mmio[:2]] == [("WRITEA", 1), ("READ", 1)]
    reads = [r for r in mmio if r.op == "READ"]
    assert [r.value for r in reads] == [0x88, 0x7788, 0x55667788, 0x1122334455667788]
    assert all(r.addr == BASE + 8 and r.rid == 0 and not r.error for r in reads)
    assert reads[1].reply == b"\x88\x77" and mmio[0].reply == b""
    irqs = [(r.line, r.level) for r in recs if r.kind == "irq"]
    assert irqs == [(0, 1), (0, 0)]
    assert any(r.kind == "claim" and r.rid == 0 for r in recs)
    s = t.stats()
    assert s["mmio"] == 10 and s["mmio_ops"] == {"WRITEA": 6, "READ": 4} and s["irq_rises"] == 1
    assert s["records"] == len(recs) and s["errors"] == 0
    rows = t.to_records()
    assert rows[0].keys() >= {"kind", "time_ns", "op", "address", "size", "data", "value"}
    assert [r["value"] for r in rows if r["kind"] == "mmio" and r["op"] == "READ"][-1] == 0x1122334455667788


def test_replay_python_device_in_process(tmp_path):
    path = tmp_path / "run.ctrace"
    record_session(path)
    good = coreio.replay.replay(path, device=lambda host: Timerish(host))
    assert good.passed, good.summary
    assert good.counts["accesses"] == 10 and good.counts["irqs"] == 2
    bad = coreio.replay.replay(path, device=lambda host: Timerish(host, bug=True))
    assert not bad.passed
    d = bad.divergence
    first_read = next(r.index for r in coreio.trace.open(path) if r.kind == "mmio" and r.op == "READ")
    assert d.kind == "mismatch" and d.field == "mmio.data" and d.record == first_read
    assert "0x89" in d.got and "0x88" in d.expected and str(d) == d.description


def test_replay_device_without_irq(tmp_path):
    path = tmp_path / "run.ctrace"
    record_session(path)

    class NoIrq(Timerish):
        def _irq(self, level):
            pass

    r = coreio.replay.replay(path, device=lambda host: NoIrq(host), keep_going=True)
    assert not r.passed and {d.kind for d in r.divergences} == {"missing"}
    assert all(d.field.startswith("irq") for d in r.divergences)


def test_replay_device_that_raises(tmp_path, capfd):
    path = tmp_path / "run.ctrace"
    record_session(path)

    class Broken(Timerish):
        def read(self, addr, size, flags):
            raise RuntimeError("model bug")

    r = coreio.replay.replay(path, device=lambda host: Broken(host))
    assert not r.passed and r.divergence.field.startswith("mmio")
    assert "RuntimeError: model bug" in capfd.readouterr().err


def test_replay_as_a_command(tmp_path):
    """Recorded from the C regfile, replayed against the Python port of it."""
    if not REGFILE_C:
        pytest.skip("COREIO_EXAMPLE_REGFILE not set (run through ctest)")
    import subprocess
    path = tmp_path / "c.ctrace"
    with Vm() as vm:
        vm.record(path)
        p = subprocess.Popen([REGFILE_C, vm.endpoint], stdout=subprocess.DEVNULL)
        try:
            vm.wait_claim(0, 10)
            for width in (1, 2, 4, 8):
                vm.write_value(BASE + 0x30, width, 0xA1B2C3D4E5F60718 & ((1 << 8 * width) - 1), ack=True)
                vm.read_value(BASE + 0x30, width)
            vm.write8(BASE + 0xF00, 3, ack=True)
            assert vm.wait_irq(0, 1)
            vm.stop_recording()
        finally:
            p.kill()
            p.wait()
    r = coreio.replay.replay(path, command=f"{sys.executable} {REGFILE_PY}")
    assert r.passed, r.summary
    assert r.counts["accesses"] == 9 and r.counts["irqs"] == 2
    r = coreio.replay.replay(path, command="exit 3", timeout=1.0)
    assert not r.passed and "no device connected" in r.error


def test_writer_synthesises_a_trace_the_replayer_checks(tmp_path):
    path = tmp_path / "synth.ctrace"
    with coreio.trace.Writer(path, ranges=[(0, BASE, 0x1000)], labels={"who": "test"}) as w:
        w.claim(0)
        w.mmio("WRITEA", BASE + 0x8, 4, value=7)
        w.mmio("READ", BASE + 0x8, 4, value=7)
        w.mmio("WRITEA", BASE + 0x10, 4, value=1)
        w.irq(0, 0, 1)
    t = coreio.trace.open(path)
    assert t.header["labels"] == {"who": "test"} and t.header["tool"] == "coreio-python"
    assert [r.kind for r in t] == ["claim", "mmio", "mmio", "mmio", "irq"]
    assert coreio.replay.replay(path, device=lambda host: Timerish(host)).passed
    # The recording says the read returned 7: a device returning 8 diverges there.
    assert coreio.replay.replay(path, device=lambda host: Timerish(host, bug=True)).divergence.record == 2


def test_trace_errors(tmp_path):
    with pytest.raises(OSError):
        coreio.trace.open(tmp_path / "missing.ctrace")
    junk = tmp_path / "junk.ctrace"
    junk.write_bytes(b"not a trace at all" * 10)
    with pytest.raises(OSError):
        coreio.trace.open(junk)
    path = tmp_path / "w.ctrace"
    w = coreio.trace.Writer(path)
    with pytest.raises(ValueError, match="unknown kind"):
        w.append({"kind": "bogus"})
    with pytest.raises(ValueError, match="unknown op"):
        w.mmio("JUMP", 0, 4)
    with pytest.raises(ValueError, match="longer than 32"):
        w.append({"kind": "mmio", "op": "READ", "data": bytes(33)})
    w.mmio("READ", BASE, 4, value=1)
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.mmio("READ", BASE, 4)
    # Cut the file inside its last record: earlier records are good, a warning says so.
    data = path.read_bytes()
    cut = tmp_path / "cut.ctrace"
    cut.write_bytes(data[:-3])
    t = coreio.trace.open(cut)
    assert t.records() == [] and t.warning
    with pytest.raises(ValueError):
        coreio.replay.replay(path)
    with pytest.raises(OSError):
        coreio.replay.replay(tmp_path / "missing.ctrace", device=lambda h: Timerish(h))


def test_replay_factory_errors_and_stale_host(tmp_path):
    path = tmp_path / "t.ctrace"
    with coreio.trace.Writer(path, ranges=[(0, BASE, 0x1000)]) as w:
        w.claim(0)
        w.mmio("READ", BASE, 4, value=0)

    def raising(host):
        raise RuntimeError("factory bug")

    with pytest.raises(RuntimeError, match="factory bug"):
        coreio.replay.replay(path, device=raising)
    with pytest.raises(ValueError, match="0..7"):
        coreio.replay.replay(path, device=lambda host: {9: Timerish(host)})
    with pytest.raises(ValueError, match="exactly one"):
        coreio.replay.replay(path, device=lambda h: Timerish(h), command="true")
    kept = []
    assert coreio.replay.replay(path, device=lambda host: kept.append(host) or {0: Timerish(host)}).passed
    with pytest.raises(ValueError, match="over"):
        kept[0].irq_update(0, 0, True)
