#!/usr/bin/env python3
"""MMIO reads/s of a Python device beside the same device in C, in one run.

The mock VM runs in this process (coreio.mockvm.Vm; its I/O thread is C++ and
the driver calls release the GIL). Each device runs as its own process:
  - C:       examples/regfile/regfile.c (coreio.h)
  - Python:  examples/python/regfile.py (the original module's API)
  - Python, empty handler: the same loop with `return 0` handlers: the floor
             of the Python path (our trampoline + one Python call per access)
Pipelined: read_many with --window (64) reads in flight; sequential: one at a time.
Each figure is the best of --repeat runs.

Usage: bench_python_device.py --regfile build/examples/coreio-example-regfile [--reads N]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import timeit
from pathlib import Path

from coreio.mockvm import Vm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BASE = 0x10000000

EMPTY_DEVICE = """
import coreio, sys
def rd(priv, addr, buf, flags): return 0
coreio.connect(sys.argv[1]); coreio.register(0, rd, rd); coreio.mainloop(-1)
"""


def cpu_seconds(pid: int) -> float:
    """CPU time of a (single-threaded) process so far: /proc/PID/schedstat, in ns."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) * 1e-9


def measure(vm: Vm, pid: int, reads: int, window: int, repeat: int) -> tuple[float, float]:
    """Best wall-clock reads/s, and the device process's reads per CPU-second."""
    addrs = [BASE + (4 * i) % 0x800 for i in range(reads)]
    best = best_cpu = 0.0
    for _ in range(repeat):
        c0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        vm.read_many(addrs, 4, window)
        best = max(best, reads / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, reads / max(cpu_seconds(pid) - c0, 1e-9))
    return best, best_cpu


def run_device(argv: list[str], reads: int, repeat: int, window: int) -> tuple[float, float, float]:
    """(pipelined reads/s, sequential reads/s, pipelined reads per device CPU-second)."""
    with Vm() as vm:
        p = subprocess.Popen(argv + [vm.endpoint], stdout=subprocess.DEVNULL)
        try:
            vm.wait_claim(0, 10)
            vm.read_many([BASE] * 2000, 4, 64)  # warm up
            piped, piped_cpu = measure(vm, p.pid, reads, window, repeat)
            seq, _ = measure(vm, p.pid, max(reads // 10, 1000), 1, repeat)
        finally:
            p.kill()
            p.wait()
    return piped, seq, piped_cpu


def handler_call_ns() -> float:
    """CPU time of one call of the Python regfile's read handler on its own."""
    sys.path.insert(0, str(ROOT / "examples/python"))
    import regfile  # noqa: E402 - the example itself
    env = {"rd": regfile.rf_read, "rf": regfile.RegFile(), "buf": bytearray(4), "a": BASE + 8}
    n = 200_000
    t = timeit.Timer("rd(rf, a, buf, 0)", globals=env, timer=time.process_time)
    return min(t.repeat(number=n, repeat=3)) / n * 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regfile", required=True, help="path of coreio-example-regfile (the C device)")
    ap.add_argument("--reads", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--window", type=int, default=64, help="pipelined reads in flight")
    a = ap.parse_args()
    py = sys.executable
    devices = [
        ("C regfile (coreio.h)", [a.regfile]),
        ("Python regfile (original module)", [py, str(ROOT / "examples/python/regfile.py")]),
        ("Python empty handler", [py, "-c", EMPTY_DEVICE]),
    ]
    results = {}
    print(f"{'device':34} {'pipelined reads/s':>18} {'sequential reads/s':>19} {'pipelined reads/device-CPU-s':>29}")
    for name, argv in devices:
        results[name] = run_device(argv, a.reads, a.repeat, a.window)
        piped, seq, cpu = results[name]
        print(f"{name:34} {piped:18,.0f} {seq:19,.0f} {cpu:29,.0f}", flush=True)
    c, p, e = (results[n] for n, _ in devices)
    call = handler_call_ns()
    print(f"ratio Python/C: pipelined {p[0] / c[0]:.2f}, sequential {p[1] / c[1]:.2f}, "
          f"device CPU per read {c[2] / p[2]:.2f}")
    per_c, per_p, per_e = (1e9 / x[2] for x in (c, p, e))
    print(f"device CPU per pipelined read: C {per_c:.0f} ns, Python {per_p:.0f} ns, Python empty handler "
          f"{per_e:.0f} ns; of which the regfile handler's own Python code {call:.0f} ns (timeit); so coreio's "
          f"Python layer (GIL, bytearray, call, copy) adds ~{per_e - per_c:.0f} ns over C per access")
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
