#!/bin/sh
# Installs coreio (with the cosim component) into a temp prefix and builds a
# user's own RTL device against it with find_package(coreio COMPONENTS cosim)
# and coreio_add_cosim(), then runs it. Only the user's design is verilated.
# Usage: install_test.sh <build dir> <tests/cosim source dir> <work dir> <generator>
set -eu
build=$1 src=$2 work=$3 gen=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
find "$work/prefix" -name coreioCosimConfig.cmake | grep -q .
cmake -S "$src/find-package" -B "$work/user" -G "$gen" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/user" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/user/user_check"
"$work/user/coreio-cosim-user-regs" --help >/dev/null
# The user's configure verilated their design and nothing of coreio's.
if find "$work/user" -name 'V*timer*' -o -name 'V*dma_copy*' | grep -q .; then
    echo "install_test: coreio's example designs were verilated in the user's build" >&2
    exit 1
fi
test "$(grep -c 'Executing Verilator' "$work/configure.log")" -eq 1
rm -rf "$work"
echo "install_test: ok"
