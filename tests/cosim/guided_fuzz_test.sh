#!/bin/sh
# coreio-fuzz --guided against an RTL device built with COVERAGE
# (coreio-cosim-lock-apb, its counters shared through COREIO_COVERAGE_MAP):
#  1. the committed reproducer of its seeded bug replays against the RTL 10 of 10 times;
#  2. a fixed seed finds the bug within a bounded number of execs, at the same exec
#     and minimised alike twice, and its reproducer replays;
#  3. --guided against a device that shares no coverage is a clear error.
# Usage: guided_fuzz_test.sh <coreio-fuzz> <coreio-replay> <coreio-cosim-lock-apb>
#        <coreio-cosim-apb-zero-wait> <committed reproducer> <work dir>
set -eu
fuzz=$1 replay=$2 lock=$3 nocov=$4 repro=$5 work=$6
rm -rf "$work" && mkdir -p "$work"
cd "$work"
dev="'$lock' \"\$COREHDL_VM\" --deterministic"
regs="--register 0:0x0:4 --register 0:0x4:4 --register 0:0x8:4 --register 0:0xc:4 --register 0:0x10:4"

# Runs a reproducer; it must fail with the stuck IRQ.
replays() {
    set +e
    "$replay" device "$1" --run "$dev" --timeout 10000 >replay.out 2>&1
    rc=$?
    set -e
    [ $rc -eq 1 ] && grep -q "irq-stuck-high irq.after-reset" replay.out
}

i=0
while [ $i -lt 10 ]; do
    replays "$repro" || { echo "guided_fuzz_test: replay $((i + 1)) of the committed reproducer did not show the bug" >&2; cat replay.out >&2; exit 1; }
    i=$((i + 1))
done

for run in 1 2; do
    set +e
    # shellcheck disable=SC2086
    "$fuzz" --run "$dev" --range 0:0x10000000:0x1000 $regs --guided --seed 2 --execs 30000 --max-findings 1 \
        --timeout 10000 --out "out$run" >"fuzz$run.out" 2>&1
    rc=$?
    set -e
    [ $rc -eq 1 ] || { echo "guided_fuzz_test: fuzz run $run: exit $rc, expected 1 (a finding)" >&2; cat "fuzz$run.out" >&2; exit 1; }
done
at1=$(grep -o 'irq-stuck-high:irq.after-reset at exec [0-9]*' fuzz1.out)
at2=$(grep -o 'irq-stuck-high:irq.after-reset at exec [0-9]*' fuzz2.out)
[ -n "$at1" ] && [ "$at1" = "$at2" ] ||
    { echo "guided_fuzz_test: the same seed gave different runs: '$at1' / '$at2'" >&2; cat fuzz1.out fuzz2.out >&2; exit 1; }
# The same minimised reproducer (its files differ only in timestamps).
[ "$(grep -o '[0-9]* of [0-9]* steps after minimising' fuzz1.out)" = "$(grep -o '[0-9]* of [0-9]* steps after minimising' fuzz2.out)" ] ||
    { echo "guided_fuzz_test: the two runs minimised differently" >&2; cat fuzz1.out fuzz2.out >&2; exit 1; }
replays out1/*.ctrace || { echo "guided_fuzz_test: the fuzzer's reproducer does not replay" >&2; cat replay.out >&2; exit 1; }

set +e
"$fuzz" --run "'$nocov' \"\$COREHDL_VM\"" --range 0:0x10000000:0x1000 --guided --execs 10 >nocov.out 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "the device shares no coverage (COREIO_COVERAGE_MAP)" nocov.out ||
    { echo "guided_fuzz_test: a device without coverage was not refused (exit $rc)" >&2; cat nocov.out >&2; exit 1; }
cd / && rm -rf "$work"
echo "guided_fuzz_test: ok"
