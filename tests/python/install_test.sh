#!/bin/sh
# Installs the Python package into a temp prefix with `cmake --install`, imports
# it from there with the system python3 (nothing from the build tree), runs a
# device against the mock VM, and checks that the default prefix (/usr/local)
# puts it on that python3's sys.path.
# Usage: install_test.sh <python build dir> <work dir> <python3> <install dir, relative to the prefix>
set -eu
build=$1 work=$2 python=$3 dir=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cd "$work"
env -u PYTHONPATH PYTHONPATH="$work/prefix/$dir" PYTHONDONTWRITEBYTECODE=1 "$python" - "$work/prefix" <<'PY'
import sys
import coreio, coreio.mockvm, coreio.trace, coreio.replay
assert coreio.__file__.startswith(sys.argv[1]), coreio.__file__
with coreio.mockvm.Vm() as vm, coreio.Client(vm.endpoint) as c:
    class Dev(coreio.Device):
        def read(self, addr, size, flags): return 0x1234
    c.add_device(0, Dev())
    c.start()
    vm.wait_claim()
    assert vm.read32(vm.base) == 0x1234
print("installed package works:", coreio.__file__)
PY
"$python" -c "import sys; d='/usr/local/$dir'; assert d in sys.path, d + ' not on sys.path'"
echo "install_test: ok"
