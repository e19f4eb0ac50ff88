"""examples/python/slider.py, unchanged, driven by the mock VM as a guest driver would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import coreio
from coreio.mockvm import Vm

EXAMPLE = Path(os.environ.get("COREIO_SOURCE_DIR", Path(__file__).parents[2])) / "examples/python/slider.py"
BASE = 0x10000000


def test_slider_irq_and_value():
    steps = 15
    with Vm() as vm:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE), vm.endpoint, "--steps", str(steps), "--period", "0.02"],
                                stdout=subprocess.PIPE, text=True)
        try:
            vm.wait_claim(0, 10)
            seen = []
            while not seen or seen[-1] != steps:
                assert vm.wait_irq(0, 0, True, 10), f"no IRQ after values {seen}"
                seen.append(vm.read32(BASE + 0x004))
                vm.write32(BASE + 0x000, 1, ack=True)  # clears the IRQ
            # Non-decreasing: a raise that lands after an ack shows the same value again.
            assert seen == sorted(seen) and 1 <= seen[0] and seen[-1] == steps
            assert vm.irq_count(0, 0) >= len(seen)
            # The last value may be read before the slider thread raised its IRQ;
            # once it says it is done, the clear is the last word on the line.
            assert proc.stdout.readline() == f"slider: all {steps} steps done\n"
            vm.write32(BASE + 0x000, 1, ack=True)
            assert vm.irq_level(0, 0) is False
            with pytest.raises(coreio.BusError):  # no register at 0x008
                vm.read32(BASE + 0x008)
            vm.drop_clients()
            assert proc.wait(10) == 0  # the VM went away: the program exits cleanly
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
