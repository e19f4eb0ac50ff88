#!/usr/bin/env python3
"""slider: the original slider peripheral, without its Tk window.

Written against the original `coreio` module only, the way the original
example was: the loop runs in the main thread (coreio.mainloop), and another
thread -- the GUI's slider callback in the original, a timer here -- changes the
value and raises the IRQ.

Registers of range 0:
  0x000  W   any write clears the IRQ (line 0); a value that came after the
             last read of 0x004 raises it again at once, so none goes unseen
  0x004  R   the slider's current value (32 bits)

Usage: slider.py [HOST:PORT] [--steps N] [--period SECONDS]
  HOST:PORT defaults to $COREHDL_VM. The value goes 1, 2, ..., N, one step per
  period, each step raising the IRQ; after the last step the device keeps
  serving until the VM goes away.
"""
import argparse
import sys
import threading
import time

import coreio

REG_ACK = 0x000
REG_VALUE = 0x004

value = 0
unread = False  # a value came that the guest has not read yet
value_lock = threading.Lock()  # never held while calling into coreio (the loop holds its lock in handlers)


def slider_read(priv, addr, buf, flags):
    global unread
    if addr & 0xFFF != REG_VALUE:
        return 1  # bus error: no such register
    with value_lock:
        v = value
        unread = False
    buf[:] = (v & 0xFFFFFFFF).to_bytes(4, "little")[:len(buf)].ljust(len(buf), b"\0")
    return 0


def slider_write(priv, addr, buf, flags):
    if addr & 0xFFF != REG_ACK:
        return 1
    coreio.irq_update(0, 0, 0)
    with value_lock:
        pending = unread
    if pending:
        coreio.irq_update(0, 0, 1)
    return 0


def move_slider(steps, period):
    """Stands in for the GUI: a new value every period, each one signalled by the IRQ."""
    global value, unread
    for v in range(1, steps + 1):
        time.sleep(period)
        with value_lock:
            value = v
            unread = True
        coreio.irq_update(0, 0, 1)
    print(f"slider: all {steps} steps done", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", default=None, help="VM address (default: $COREHDL_VM)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--period", type=float, default=0.05)
    args = ap.parse_args()

    if coreio.connect(args.target) != 0:
        print("slider: cannot connect to the VM", file=sys.stderr)
        return 1
    if coreio.register(0, slider_read, slider_write) != 0:
        print("slider: cannot claim range 0", file=sys.stderr)
        return 1
    threading.Thread(target=move_slider, args=(args.steps, args.period), daemon=True).start()
    rc = coreio.mainloop(-1)  # returns when the VM goes away
    coreio.disconnect()
    print(f"slider: VM gone ({rc}), exiting", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
