#!/usr/bin/env python3
"""regfile: examples/regfile/regfile.c in Python, on the original `coreio` module.

Range 0 is backed by 4 KiB of registers: an access of any width at guest
address A touches the bytes at offset A & 0xfff. The byte at 0xf00 is the IRQ
register: bit i drives IRQ line i of range 0 (an update per changed line).
No pair handlers: the library splits pairs, as for the C version.

Usage: regfile.py [HOST:PORT]   (default: $COREHDL_VM)
"""
import errno
import sys

import coreio

SIZE = 4096
REG_IRQ = 0xF00


class RegFile:
    def __init__(self):
        self.regs = bytearray(SIZE)
        self.irq_lines = 0  # levels last sent to the VM


def rf_read(rf, addr, buf, flags):
    off = addr & (SIZE - 1)
    n = len(buf)
    if n > SIZE - off:
        return 1  # bus error
    buf[:] = rf.regs[off:off + n]
    return 0


def rf_write(rf, addr, buf, flags):
    off = addr & (SIZE - 1)
    n = len(buf)
    if n > SIZE - off:
        return 1
    rf.regs[off:off + n] = buf
    if off <= REG_IRQ < off + n:
        want = rf.regs[REG_IRQ]
        for line in range(8):
            bit = 1 << line
            if (want ^ rf.irq_lines) & bit:
                coreio.irq_update(0, line, 1 if want & bit else 0)
        rf.irq_lines = want
    return 0


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else None
    rc = coreio.connect(target)
    if rc:
        print(f"regfile.py: cannot connect to {target or '$COREHDL_VM'} (error {rc})", file=sys.stderr)
        return 1
    rc = coreio.register(0, rf_read, rf_write, funcp=RegFile())
    if rc:
        print(f"regfile.py: cannot claim range 0 (error {rc})", file=sys.stderr)
        return 1
    print(f"regfile.py: serving range 0 (4 KiB of registers, IRQ register at {REG_IRQ:#x})", flush=True)
    rc = coreio.mainloop(-1)  # returns when the VM goes away
    coreio.disconnect()
    return 0 if rc in (0, -errno.ECONNRESET) else 1


if __name__ == "__main__":
    sys.exit(main())
