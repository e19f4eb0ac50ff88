#!/bin/sh
# coreio-cosim-NAME --coverage FILE writes Verilator coverage data that
# verilator_coverage reads: after a mock VM script ends the connection, and
# when the device is stopped by SIGTERM. The script's unlock sequence must
# show as hits on the lines it reaches (and the line it never reaches none).
# Usage: coverage_test.sh <coreio-mockvm> <coreio-cosim-lock-apb> <verilator_coverage> <script> <work dir>
set -eu
vm=$1 dev=$2 vcov=$3 script=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
cd "$work"

# Starts the mock VM (script or none) and sets PORT and VM_PID.
start_vm() {
    "$vm" --port 0 --wait-ms 20000 "$@" >vm.out 2>&1 &
    VM_PID=$!
    i=0
    until PORT=$(grep -o '127\.0\.0\.1:[0-9]*' vm.out 2>/dev/null | head -n 1) && [ -n "$PORT" ]; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "coverage_test: the mock VM did not start" >&2; cat vm.out >&2; exit 1; }
        sleep 0.05
    done
}

# 1. A script: the device ends when the VM closes the connection.
start_vm --script "$script"
timeout 60 "$dev" "$PORT" --deterministic --coverage script.dat
wait "$VM_PID"
"$vcov" --annotate ann script.dat >summary.txt
cat summary.txt
hits=$(sed -n 's/^Total coverage (\([0-9]*\)\/[0-9]*).*/\1/p' summary.txt)
[ "${hits:-0}" -gt 0 ] || { echo "coverage_test: no hits in script.dat" >&2; exit 1; }
# The third key's branch ran (a hit count before it), the 'stage == 3' re-write never did (%000000).
grep -E "^[ %]0*[1-9][0-9]*[[:space:]]+else if \(stage == 2'd2 && PWDATA == 32'h0000_000a\)" ann/lock_apb.sv >/dev/null ||
    { echo "coverage_test: the unlock branch shows no hit" >&2; cat ann/lock_apb.sv >&2; exit 1; }
grep -E "^%000000[[:space:]]+else if \(stage == 2'd3\) stage <= 2'd3;" ann/lock_apb.sv >/dev/null ||
    { echo "coverage_test: a line the script never reaches shows hits" >&2; cat ann/lock_apb.sv >&2; exit 1; }

# 2. SIGTERM while connected (a VM that serves until interrupted): the data is still written.
start_vm --serve
"$dev" "$PORT" --coverage signal.dat &
DEV_PID=$!
sleep 1
kill -0 "$DEV_PID" || { echo "coverage_test: the device ended before SIGTERM" >&2; exit 1; }
kill -TERM "$DEV_PID"
wait "$DEV_PID"
kill "$VM_PID" 2>/dev/null || true
wait "$VM_PID" 2>/dev/null || true
"$vcov" --annotate ann2 signal.dat | grep -q "^Total coverage ([1-9]" || { echo "coverage_test: no data after SIGTERM" >&2; exit 1; }

# 3. A model built without COVERAGE, or a file that cannot be written: a clear error, exit 2.
set +e
"$dev" 127.0.0.1:1 --coverage /nonexistent-dir/x.dat 2>err.txt
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "cannot write coverage file '/nonexistent-dir/x.dat'" err.txt ||
    { echo "coverage_test: an unwritable --coverage file was not reported (rc $rc)" >&2; cat err.txt >&2; exit 1; }
cd / && rm -rf "$work"
echo "coverage_test: ok"
